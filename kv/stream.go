package kv

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/kvgo/kvgo/kernel"
	ggml "github.com/kvgo/kvgo/quant"
)

// Stream is the cache of one (layer, KV head): its tokens' keys and values
// in order, as encoded pages followed by a tail of tokens not yet sealed
// into a page, and each token's absolute position. Policies see a stream as
// a list of tokens indexed 0..Len()-1 in that order; positions increase
// along it.
//
// Per-token codecs (f32, f16, q8, q4) encode each token into the last page
// as it arrives, during a prompt too: an evictor then deletes from the
// pages and the stream packs them again, so a prompt is never held at more
// than the codec's own size. Group codecs (KIVI) quantize G tokens at once;
// their tokens wait in the tail, in F16, until a whole group is older than
// the residual window R (or, while an evictor's prompt is staged, until it
// has chosen). F16 is the "full precision" of KIVI's paper (its residual is
// kept in fp16 on the GPU), and holding the tail in F16 rather than F32 is
// what keeps a stack of an evictor and KIVI smaller than the evictor alone.
type Stream struct {
	dk, dv int // key and value widths
	kc, vc Codec
	// shared: each token's value is the first dv values of its key,
	// stored once (Shape.ValueInKey, a latent cache): there are no value
	// pages (pagePair.v is nil) and no value tail, and attention sums the
	// key pages' vectors.
	shared   bool
	residual int // tokens kept in the tail at the end (max of the codecs' Residual)
	group    int // tokens per sealed page; 0 for per-token codecs

	pos   []int32 // every token, in stream order
	pages []pagePair
	// The tail: tokens not yet sealed into a page, in F16.
	tk, tv []uint16

	// obs accumulates the attention probabilities a policy asked for
	// (observation window after prefill, or the last decode step), summed
	// over the query heads that share this KV head. acc is the policy's own
	// per-token state (e.g. H2O's accumulated attention). Both stay aligned
	// with pos when tokens are deleted.
	// They exist only when the cache has an evictor (track).
	obs   []float32
	acc   []float32
	track bool
	sums  bool // keep per-page key summaries for a selector
	// sumFree is the unused rest of the block that page summaries are cut
	// from (newSum).
	sumFree []uint16
	mu      sync.Mutex // guards obs and loc while attention runs in parallel
	// loc sums, per token and query head of the group (locG of them), the
	// attention the token received from prompt queries at most a
	// selector's LocalWindow positions after it (local), aligned with pos
	// like obs. locG is learned from the first query that asks.
	loc   []float32
	locG  int
	local bool
}

type pagePair struct {
	k, v Page
	// ref counts the streams that share this page after Cache.Fork; nil
	// means the page belongs to one stream only.
	ref *atomic.Int32
	// sum is the page's key summary when the stream keeps them: per
	// channel the minimum (first dk values) and maximum (next dk) of the
	// stored keys, as attention reads them (decoded), in half precision
	// rounded outward (PageBounds).
	sum []uint16
}

func newStream(dk, dv int, kc, vc Codec, shared bool) *Stream {
	s := &Stream{dk: dk, dv: dv, kc: kc, vc: vc, shared: shared, residual: max(kc.Residual(), vc.Residual())}
	s.group = max(kc.Group(), vc.Group())
	if shared {
		// Only the key codec stores anything.
		s.residual, s.group = kc.Residual(), kc.Group()
	}
	if s.group == 0 && s.residual > 0 {
		s.group = PageTokens
	}
	return s
}

// Len is the number of tokens in the stream.
func (s *Stream) Len() int { return len(s.pos) }

// Positions are the tokens' absolute positions, in stream order. The slice
// is the stream's own; do not modify it.
func (s *Stream) Positions() []int32 { return s.pos }

// Observed returns the attention probabilities collected for the policy,
// one per token (read-only).
func (s *Stream) Observed() []float32 { return s.obs }

// Acc is per-token state that a policy may read and write; it is compacted
// along with the tokens.
func (s *Stream) Acc() []float32 { return s.acc }

// Dim is the width of the stream's keys.
func (s *Stream) Dim() int { return s.dk }

// ValueDim is the width of the stream's values.
func (s *Stream) ValueDim() int { return s.dv }

// tailLen is the number of tokens in the tail.
func (s *Stream) tailLen() int { return len(s.tk) / s.dk }

// Pages is the number of sealed pages (the tail is not a page).
func (s *Stream) Pages() int { return len(s.pages) }

// PagedLen is the number of tokens held in sealed pages (the rest are in
// the unsealed tail), without visiting the pages.
func (s *Stream) PagedLen() int { return len(s.pos) - s.tailLen() }

// PageLen is the number of tokens of page i.
func (s *Stream) PageLen(i int) int { return s.pages[i].k.Len() }

// PageBounds returns page i's key summary (Quest's bounds) as one vector
// of 2·Dim() half-precision values: the per-channel minimum of the page's
// keys, then the per-channel maximum. Adjacent, so a selector scores a
// page's bound with one inner product of that length against
// [min(q, 0); max(q, 0)] rather than two (BenchmarkSelect;
// docs/PERFORMANCE.md).
//
// The bounds are rounded outward (the minimum down, the maximum up:
// package quant's F32ToF16Down and F32ToF16Up), so they still bound every
// key, as tightly as F16 allows; keys an F16 codec stores are halves
// already, and their bounds are exact. Half precision halves what a
// selector reads to score every page and the summaries' memory (3% of an
// f16 page rather than 6% at head width 64; BenchmarkSelectModel).
//
// Nil when the stream keeps no summaries (Config.Summaries, or a selector
// that asks). The slice is the stream's own; do not modify it.
func (s *Stream) PageBounds(i int) []uint16 { return s.pages[i].sum }

// LocalAttention returns, per token in stream order and per query head of
// the group (g values a token, head j of token i at loc[i*g+j]), the
// attention the token received from prompt queries at most the selector's
// LocalWindow positions after it (kept only for a PromptReader that asks;
// nil otherwise). The slice is the stream's own; do not modify it.
func (s *Stream) LocalAttention() (loc []float32, g int) { return s.loc, s.locG }

// PageKey decodes the key of token j of page i into dst (Dim values).
func (s *Stream) PageKey(i, j int, dst []float32) { s.pages[i].k.Decode(j, dst[:s.dk]) }

// Bytes is the memory of the stream's keys, values and positions: pages
// and the tail by their allocated capacity, and per token 4 bytes of
// position (plus 8 bytes of attention statistics when an evictor runs) and
// page summaries when kept (with the unused rest of their block).
func (s *Stream) Bytes() int64 {
	b := s.unpagedBytes()
	for _, p := range s.pages {
		b += p.bytes()
	}
	return b
}

// unpagedBytes is the stream's own memory outside its pages: the tail, the
// per-token state and the unused rest of the block of page summaries.
func (s *Stream) unpagedBytes() int64 {
	return int64(cap(s.tk)+cap(s.tv)+cap(s.sumFree))*2 + s.tokenStateBytes()
}

// bytes is the memory of a page pair: its key and value pages (a shared
// stream has none of the latter) and its key summary.
func (p *pagePair) bytes() int64 {
	b := p.k.Bytes() + int64(cap(p.sum))*2
	if p.v != nil {
		b += p.v.Bytes()
	}
	return b
}

// newPair returns an empty page pair for per-token codecs.
func (s *Stream) newPair() pagePair {
	if s.shared {
		return pagePair{k: s.kc.NewPage(s.dk, PageTokens)}
	}
	return pagePair{k: s.kc.NewPage(s.dk, PageTokens), v: s.vc.NewPage(s.dv, PageTokens)}
}

// append adds one token after the others. Per-token codecs encode it now;
// group codecs put it in the tail, and when seal is set (no staged prompt)
// seal the groups that have left the residual window. buf is conversion
// scratch lent by the cache.
func (s *Stream) append(k, v []float32, pos int32, seal bool, buf *[]float32) {
	s.pos = append(s.pos, pos)
	if s.track {
		s.obs = append(s.obs, 0)
		s.acc = append(s.acc, 0)
	}
	if s.local && s.locG > 0 {
		for range s.locG {
			s.loc = append(s.loc, 0)
		}
	}
	if s.group == 0 {
		n := len(s.pages)
		if n == 0 || s.pages[n-1].k.Len() >= PageTokens {
			s.pages = append(s.pages, s.newPair())
			n++
		}
		s.own(n - 1)
		p := &s.pages[n-1]
		p.k.Append(k, 1)
		if p.v != nil {
			p.v.Append(v, 1)
		}
		if s.sums {
			s.extendSummary(p, p.k.Len()-1, grow(buf, 3*s.dk))
		}
		return
	}
	s.tk = appendF16(s.tk, k)
	if !s.shared {
		s.tv = appendF16(s.tv, v)
	}
	if seal {
		s.seal(s.residual, buf)
	}
}

func appendF16(dst []uint16, x []float32) []uint16 {
	for _, v := range x {
		dst = append(dst, ggml.F32ToF16(v))
	}
	return dst
}

func decodeF16(dst []float32, x []uint16) {
	for i, h := range x {
		dst[i] = ggml.F16ToF32(h)
	}
}

// grow returns (*buf)[:n], growing it when needed.
func grow(buf *[]float32, n int) []float32 {
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	return (*buf)[:n]
}

// seal encodes the oldest tail tokens of a group codec into pages, a whole
// group at a time, while more than keep tokens (plus a group) remain.
func (s *Stream) seal(keep int, buf *[]float32) {
	g := s.group
	if g == 0 {
		return
	}
	sealed := 0
	for s.tailLen()-sealed >= keep+g {
		x := grow(buf, g*max(s.dk, s.dv))
		k := s.kc.NewPage(s.dk, g)
		decodeF16(x[:g*s.dk], s.tk[sealed*s.dk:(sealed+g)*s.dk])
		k.Append(x, g)
		var v Page
		if !s.shared {
			v = s.vc.NewPage(s.dv, g)
			decodeF16(x[:g*s.dv], s.tv[sealed*s.dv:(sealed+g)*s.dv])
			v.Append(x, g)
		}
		s.pages = append(s.pages, pagePair{k: k, v: v})
		if s.sums {
			s.summarize(len(s.pages)-1, buf)
		}
		sealed += g
	}
	if sealed > 0 {
		s.tk = append(s.tk[:0], s.tk[sealed*s.dk:]...)
		if !s.shared {
			s.tv = append(s.tv[:0], s.tv[sealed*s.dv:]...)
		}
		s.shrinkTail()
	}
}

// shrinkTail gives back tail memory once the tail holds much less than
// its allocation (after a staged prefill was selected and encoded, or
// after deletions), so the bytes a recipe saves are really freed. The
// tail of a group codec keeps room for one more group, and shrinking only
// happens when the allocation is over twice what is needed, so a tail that
// breathes between R and R+G tokens while decoding never reallocates.
func (s *Stream) shrinkTail() {
	if cap(s.tk) <= 2*len(s.tk)+s.group*s.dk {
		return
	}
	if len(s.tk)+s.group == 0 {
		s.tk, s.tv = nil, nil
		return
	}
	n := s.tailLen()
	s.tk = append(make([]uint16, 0, (n+s.group)*s.dk), s.tk...)
	if !s.shared {
		s.tv = append(make([]uint16, 0, (n+s.group)*s.dv), s.tv...)
	}
}

// extendSummary widens page p's key summary by its token j; x is scratch
// of 3·dk values.
func (s *Stream) extendSummary(p *pagePair, j int, x []float32) {
	d := s.dk
	key, cur := x[:d], x[d:3*d]
	p.k.Decode(j, key)
	if p.sum == nil || j == 0 {
		if p.sum == nil {
			p.sum = s.newSum()
		}
		setBounds(p.sum, key, key)
		return
	}
	// The bounds as they stand, widened in one vector pass; a channel is
	// rounded and stored again only when the key passes its bound.
	kernel.FromF16(cur, p.sum)
	lo, hi := cur[:d], cur[d:]
	for c, v := range key {
		if v < lo[c] {
			p.sum[c] = ggml.F32ToF16Down(v)
		}
		if v > hi[c] {
			p.sum[d+c] = ggml.F32ToF16Up(v)
		}
	}
}

// setBounds stores the per-channel minima lo and maxima hi in sum as
// halves rounded outward (PageBounds).
func setBounds(sum []uint16, lo, hi []float32) {
	d := len(lo)
	for c := range lo {
		sum[c], sum[d+c] = ggml.F32ToF16Down(lo[c]), ggml.F32ToF16Up(hi[c])
	}
}

// newSum returns memory for one page summary (2·dk values), cut from a
// block shared with the summaries made before and after it, so that the
// summaries of consecutive pages lie one after the other: a selector that
// scores every page then streams through memory rather than hopping
// between allocations. Blocks grow with the stream, to 64 summaries.
func (s *Stream) newSum() []uint16 {
	n := 2 * s.dk
	if len(s.sumFree) < n {
		s.sumFree = make([]uint16, n*min(max(len(s.pages), 4), 64))
	}
	sum := s.sumFree[:n:n]
	s.sumFree = s.sumFree[n:]
	return sum
}

// summarize recomputes page i's key summary from its stored keys.
//
// The bounds are taken in float32 over all the keys and rounded to halves
// once: rounding outward is monotone, so this equals widening token by
// token, without a rounding per token.
func (s *Stream) summarize(i int, buf *[]float32) {
	p := &s.pages[i]
	n := p.k.Len()
	if n == 0 {
		p.sum = nil
		return
	}
	if p.sum != nil && p.ref != nil {
		p.sum = nil // shared with a fork: never write through
	}
	if p.sum == nil {
		p.sum = s.newSum()
	}
	d := s.dk
	x := grow(buf, 3*d)
	key, lo, hi := x[:d], x[d:2*d], x[2*d:]
	p.k.Decode(0, lo)
	copy(hi, lo)
	for j := 1; j < n; j++ {
		p.k.Decode(j, key)
		for c, v := range key {
			lo[c] = min(lo[c], v)
			hi[c] = max(hi[c], v)
		}
	}
	setBounds(p.sum, lo, hi)
}

// Keep deletes every token whose keep[i] is false. It frees the memory of
// the deleted tokens: the tail and the positions are compacted, pages lose
// the tokens' codes, and pages left sparse are packed again.
func (s *Stream) Keep(keep []bool) {
	if len(keep) != len(s.pos) {
		panic("kv: Keep mask length differs from stream length")
	}
	var buf []float32
	// Pages first, from the back so indices stay valid within a page.
	base := 0
	out := s.pages[:0]
	for pi := range s.pages {
		n := s.pages[pi].k.Len()
		changed := false
		for i := n - 1; i >= 0; i-- {
			if !keep[base+i] {
				s.own(pi)
				s.pages[pi].k.Delete(i)
				if s.pages[pi].v != nil {
					s.pages[pi].v.Delete(i)
				}
				changed = true
			}
		}
		if changed && s.sums {
			s.summarize(pi, &buf)
		}
		p := s.pages[pi]
		if p.k.Len() == 0 && p.ref != nil {
			p.ref.Add(-1)
		}
		base += n
		if p.k.Len() > 0 {
			out = append(out, p)
		}
	}
	clear(s.pages[len(out):])
	s.pages = out
	// Tail.
	dk, dv := s.dk, s.dv
	w := 0
	for i := 0; i < s.tailLen(); i++ {
		if keep[base+i] {
			copy(s.tk[w*dk:(w+1)*dk], s.tk[i*dk:(i+1)*dk])
			if !s.shared {
				copy(s.tv[w*dv:(w+1)*dv], s.tv[i*dv:(i+1)*dv])
			}
			w++
		}
	}
	s.tk = s.tk[:w*dk]
	if !s.shared {
		s.tv = s.tv[:w*dv]
	}
	s.shrinkTail()
	// Per-token arrays.
	w = 0
	for i := range s.pos {
		if keep[i] {
			s.pos[w] = s.pos[i]
			if s.track {
				s.obs[w], s.acc[w] = s.obs[i], s.acc[i]
			}
			if s.locG > 0 {
				copy(s.loc[w*s.locG:(w+1)*s.locG], s.loc[i*s.locG:(i+1)*s.locG])
			}
			w++
		}
	}
	s.pos = s.pos[:w]
	if s.track {
		s.obs, s.acc = s.obs[:w], s.acc[:w]
	}
	if s.locG > 0 {
		s.loc = s.loc[:w*s.locG]
	}
	if cap(s.pos) > 2*len(s.pos)+64 {
		s.pos = append([]int32(nil), s.pos...)
		s.obs = append([]float32(nil), s.obs...)
		s.acc = append([]float32(nil), s.acc...)
		s.loc = append([]float32(nil), s.loc...)
	}
	s.compact(&buf)
}

// tokenCopier is implemented by per-token pages that can append another
// page's token by copying its codes (kv/quant's f32, f16 and block pages):
// packing sparse pages is then exact for every per-token codec.
type tokenCopier interface {
	AppendFrom(src Page, i int) bool
}

// compact packs the pages when deletions left many of them sparse, so that
// memory follows the number of live tokens. Per-token pages move their
// tokens' codes (exact); per-channel key groups (KIVI) are quantized again
// from their decoded values, and a last partial group goes back to the
// tail.
func (s *Stream) compact(buf *[]float32) { s.pack(buf, false) }

// pack re-packs the pages densely: always when dense is set (after an
// evictor's choice over a whole prompt, which the old F32 staging encoded
// densely too), else once deletions wasted enough of them (compact).
func (s *Stream) pack(buf *[]float32, dense bool) {
	live := 0
	for _, p := range s.pages {
		live += p.k.Len()
	}
	per := s.group
	if per == 0 {
		per = PageTokens
	}
	need := (live + per - 1) / per
	// Pack once a quarter of the pages (plus two) are wasted: often
	// enough that memory follows the live tokens under per-step eviction
	// (TOVA, H2O delete from the middle), rarely enough to cost little.
	if len(s.pages) <= need || (!dense && len(s.pages) <= need+need/4+2) {
		return
	}
	old := s.pages
	s.pages = make([]pagePair, 0, need)
	if s.group == 0 {
		for _, p := range old {
			for j := 0; j < p.k.Len(); j++ {
				n := len(s.pages)
				if n == 0 || s.pages[n-1].k.Len() >= PageTokens {
					s.pages = append(s.pages, s.newPair())
					n++
				}
				q := &s.pages[n-1]
				copyToken(q.k, p.k, j, s.dk, buf)
				if q.v != nil {
					copyToken(q.v, p.v, j, s.dv, buf)
				}
			}
			if p.ref != nil {
				p.ref.Add(-1)
			}
		}
		if s.sums {
			for i := range s.pages {
				s.summarize(i, buf)
			}
		}
		return
	}
	// Group codecs: decode every paged token into the front of the tail
	// and seal again.
	tk := make([]uint16, 0, live*s.dk+len(s.tk))
	var tv []uint16
	if !s.shared {
		tv = make([]uint16, 0, live*s.dv+len(s.tv))
	}
	for _, p := range old {
		for j := 0; j < p.k.Len(); j++ {
			x := grow(buf, max(s.dk, s.dv))
			p.k.Decode(j, x[:s.dk])
			tk = appendF16(tk, x[:s.dk])
			if p.v != nil {
				p.v.Decode(j, x[:s.dv])
				tv = appendF16(tv, x[:s.dv])
			}
		}
		if p.ref != nil {
			p.ref.Add(-1)
		}
	}
	s.tk = append(tk, s.tk...)
	if !s.shared {
		s.tv = append(tv, s.tv...)
	}
	s.seal(s.residual, buf)
}

// copyToken appends token j of src to dst: by its codes when the page can,
// else decoded and encoded again.
func copyToken(dst, src Page, j, d int, buf *[]float32) {
	if c, ok := dst.(tokenCopier); ok && c.AppendFrom(src, j) {
		return
	}
	x := grow(buf, d)
	src.Decode(j, x)
	dst.Append(x, 1)
}

// index returns the stream index of the token at position p, or -1.
func (s *Stream) index(p int32) int {
	i := sort.Search(len(s.pos), func(i int) bool { return s.pos[i] >= p })
	if i < len(s.pos) && s.pos[i] == p {
		return i
	}
	return -1
}

// locate returns the page holding token i and the token's index in it, or
// page -1 and the index in the tail.
func (s *Stream) locate(i int) (page, j int) {
	for pi, p := range s.pages {
		if n := p.k.Len(); i < n {
			return pi, i
		}
		i -= p.k.Len()
	}
	return -1, i
}

// overwrite replaces the key and value of token i. A per-token page is
// rebuilt with the other tokens' codes copied; a group page (KIVI keys)
// is quantized again from its decoded values with the new token.
func (s *Stream) overwrite(i int, k, v []float32, buf *[]float32) {
	pi, j := s.locate(i)
	if pi < 0 {
		copy(s.tk[j*s.dk:(j+1)*s.dk], appendF16(nil, k))
		if !s.shared {
			copy(s.tv[j*s.dv:(j+1)*s.dv], appendF16(nil, v))
		}
		return
	}
	p := &s.pages[pi]
	p.k = s.rebuild(p.k, s.kc, s.dk, j, k, buf)
	if p.v != nil {
		p.v = s.rebuild(p.v, s.vc, s.dv, j, v, buf)
	}
	if p.ref != nil {
		p.ref.Add(-1)
		p.ref = nil
		p.sum = nil
	}
	if s.sums {
		s.summarize(pi, buf)
	}
}

// rebuild returns a new page of codec c with page old's tokens, token j
// replaced by x.
func (s *Stream) rebuild(old Page, c Codec, d, j int, x []float32, buf *[]float32) Page {
	n := old.Len()
	if s.group == 0 {
		q := c.NewPage(d, PageTokens)
		for t := 0; t < n; t++ {
			if t == j {
				q.Append(x, 1)
				continue
			}
			copyToken(q, old, t, d, buf)
		}
		return q
	}
	all := make([]float32, n*d)
	for t := 0; t < n; t++ {
		old.Decode(t, all[t*d:(t+1)*d])
	}
	copy(all[j*d:(j+1)*d], x)
	q := c.NewPage(d, n)
	q.Append(all, n)
	return q
}

// rotate turns the keys of tokens from index i0 on by delta positions with
// the model's rotary encoding, and moves their positions. Pages are
// encoded again from their decoded, rotated keys.
func (s *Stream) rotate(i0 int, delta int32, rot func(k []float32), buf *[]float32) {
	base := 0
	for pi := range s.pages {
		p := &s.pages[pi]
		n := p.k.Len()
		if base+n <= i0 {
			base += n
			continue
		}
		var q Page
		if s.group == 0 {
			// Per-token pages: tokens before i0 keep their codes.
			q = s.kc.NewPage(s.dk, PageTokens)
			for t := 0; t < n; t++ {
				if base+t < i0 {
					copyToken(q, p.k, t, s.dk, buf)
					continue
				}
				x := grow(buf, s.dk)
				p.k.Decode(t, x)
				rot(x)
				q.Append(x, 1)
			}
		} else {
			all := make([]float32, n*s.dk)
			for t := 0; t < n; t++ {
				x := all[t*s.dk : (t+1)*s.dk]
				p.k.Decode(t, x)
				if base+t >= i0 {
					rot(x)
				}
			}
			q = s.kc.NewPage(s.dk, n)
			q.Append(all, n)
		}
		if p.ref != nil {
			// The pair is now this stream's: the value page is copied
			// too (copy-on-write), the shared one stays with the others.
			if p.v != nil {
				p.v = clonePage(p.v, s.vc, s.dv)
			}
			p.ref.Add(-1)
			p.ref = nil
			p.sum = nil
		}
		p.k = q
		if s.sums {
			s.summarize(pi, buf)
		}
		base += n
	}
	x := grow(buf, s.dk)
	for t := max(0, i0-base); t < s.tailLen(); t++ {
		row := s.tk[t*s.dk : (t+1)*s.dk]
		decodeF16(x, row)
		rot(x)
		for c, v := range x {
			row[c] = ggml.F32ToF16(v)
		}
	}
	for i := i0; i < len(s.pos); i++ {
		s.pos[i] += delta
	}
}

// attend runs attention of g query heads q (g*dk values) at position qpos
// over the stream, with an online softmax across pages so that no page is
// ever decoded to F32 as a whole. out receives g*dv values. When collect is
// set, the probabilities each token received, summed over the g heads,
// are added to s.obs; with local >= 0, those of the tokens at most local
// positions before qpos are added to s.loc. read, when not nil, says which
// pages to read (a selector's choice); the tail is always read.
func (s *Stream) attend(q []float32, g int, qpos int32, scale float32, out []float32, sc *Scratch, collect bool, read []bool, local int32) {
	dv := s.dv
	final := out
	if s.shared {
		// Values are whole keys here; each head's first s.dv sums are
		// copied out at the end.
		dv = s.dk
		out = sc.wideBuf(g * dv)
	}
	T := len(s.pos)
	// The softmax scale goes into the queries once, not into every
	// head's row of scores of every page.
	qs := grow(&sc.qs, g*s.dk)
	for c, x := range q[:g*s.dk] {
		qs[c] = x * scale
	}
	q = qs
	m, l := sc.m[:g], sc.l[:g]
	for j := range m {
		m[j] = float32(math.Inf(-1))
		l[j] = 0
	}
	clear(out[:g*dv])
	// all keeps the logits of the tokens from index from on, for the
	// statistics.
	var all []float32
	from, lfrom := T, T
	if local >= 0 {
		lfrom = sort.Search(T, func(i int) bool { return s.pos[i] >= qpos-local })
		from = lfrom
	}
	if collect {
		from = 0
	}
	if from < T {
		all = sc.all(g * T)
	}
	base := 0
	// Positions increase along the stream: once a page starts after the
	// query, nothing after it is visible. A batch that recomputes tokens
	// among held ones (chunk repair: kv.Cache.Begin's overwrites) would
	// otherwise score and mask every later page, doubling its attention.
	end := T
	for i, p := range s.pages {
		if base < T && s.pos[base] > qpos {
			end = base
			break
		}
		if read != nil && !read[i] {
			n := p.k.Len()
			if all != nil {
				for j := 0; j < g; j++ {
					row := all[j*T+base : j*T+base+n]
					for t := range row {
						row[t] = float32(math.Inf(-1))
					}
				}
			}
			base += n
			continue
		}
		vp := p.v
		if vp == nil {
			vp = p.k
		}
		s.block(p.k, vp, dv, q, g, qpos, out, sc, all, from, base)
		base += p.k.Len()
	}
	if end < T && all != nil {
		for j := 0; j < g; j++ {
			row := all[j*T+max(end, from) : j*T+T]
			for t := range row {
				row[t] = float32(math.Inf(-1))
			}
		}
	}
	if s.tailLen() > 0 && end == T {
		// The views live in the worker's scratch: no allocation, no race.
		sc.tailK, sc.tailV = f16View{s.tk, s.dk}, f16View{s.tv, dv}
		if s.shared {
			sc.tailV = sc.tailK
		}
		s.block(&sc.tailK, &sc.tailV, dv, q, g, qpos, out, sc, all, from, base)
	}
	for j := 0; j < g; j++ {
		if l[j] > 0 {
			inv := 1 / l[j]
			oj := out[j*dv : (j+1)*dv]
			for c := range oj {
				oj[c] *= inv
			}
		}
	}
	if s.shared {
		for j := 0; j < g; j++ {
			copy(final[j*s.dv:(j+1)*s.dv], out[j*dv:j*dv+s.dv])
		}
	}
	if all != nil {
		s.mu.Lock()
		if lfrom < T && s.locG != g {
			// The first query that asks sets the group size.
			s.locG = g
			s.loc = make([]float32, T*g)
		}
		for j := 0; j < g; j++ {
			if l[j] == 0 {
				continue
			}
			inv := 1 / l[j]
			for i := from; i < T; i++ {
				p := float32(math.Exp(float64(all[j*T+i]-m[j]))) * inv
				if collect {
					s.obs[i] += p
				}
				if i >= lfrom {
					s.loc[i*g+j] += p
				}
			}
		}
		s.mu.Unlock()
	}
}

// block folds one page (or the tail) into the running online softmax:
// m and l in sc hold each head's running maximum and normalizer, out the
// unnormalized weighted sum of values. q carries the softmax scale.
func (s *Stream) block(k, v attendable, dv int, q []float32, g int, qpos int32, out []float32, sc *Scratch, all []float32, from, base int) {
	T := len(s.pos)
	n := k.Len()
	m, l := sc.m, sc.l
	w := sc.scoreBuf(g * n)
	k.Dot(q, g, w, &sc.page)
	// Tokens after the query exist only while a prompt is prefilled; a
	// decode step sees none, and then a row's maximum is taken by the
	// vector kernel instead of a masking loop per head.
	pos := s.pos[base : base+n]
	masked := false
	for _, p := range pos {
		if p > qpos {
			masked = true
			break
		}
	}
	for j := 0; j < g; j++ {
		row := w[j*n : (j+1)*n]
		var bm float32
		if masked {
			bm = float32(math.Inf(-1))
			for i := range row {
				if pos[i] > qpos {
					row[i] = float32(math.Inf(-1))
				}
				bm = max(bm, row[i])
			}
		} else {
			bm = kernel.Max(row)
		}
		if all != nil && base+n > from {
			copy(all[j*T+base:j*T+base+n], row)
		}
		if bm > m[j] {
			f := float32(math.Exp(float64(m[j] - bm)))
			kernel.Scale(out[j*dv:(j+1)*dv], f)
			l[j] *= f
			m[j] = bm
		}
		if math.IsInf(float64(m[j]), -1) {
			clear(row)
			continue
		}
		l[j] += kernel.ExpShift(row, m[j])
	}
	v.AddWeighted(w, g, out, &sc.page)
}

// attendable is the part of a Page attention uses.
type attendable interface {
	Len() int
	Dot(q []float32, g int, out []float32, sc *PageScratch)
	AddWeighted(w []float32, g int, out []float32, sc *PageScratch)
}

// f16View lets attention read the F16 tail like a page, with the kernels
// of f16 pages.
type f16View struct {
	x []uint16
	d int
}

func (t *f16View) Len() int { return len(t.x) / t.d }

func (t *f16View) Dot(q []float32, g int, out []float32, _ *PageScratch) {
	if n := t.Len(); n > 0 {
		kernel.DotsF16Group(out[:g*n], q[:g*t.d], g, t.x, t.d)
	}
}

func (t *f16View) AddWeighted(w []float32, g int, out []float32, _ *PageScratch) {
	d, n := t.d, t.Len()
	if n == 0 {
		return
	}
	kernel.WeightedSumHeadsF16(out, w, n, g, t.x[:n*d], d)
}

// Scratch is per-worker memory for attention, reused across calls so the
// decode loop does not allocate.
type Scratch struct {
	scores       []float32
	wide         []float32 // a shared stream's sums of whole keys
	allBuf       []float32
	m, l         []float32
	tailK, tailV f16View
	page         PageScratch
	read         []bool
	view         SelectView
	blk          blockScratch // AttendBlock's query block
	qs           []float32    // the queries times the softmax scale
}

// NewScratch returns scratch for up to maxHeads query heads per KV head.
func NewScratch(maxHeads int) *Scratch {
	return &Scratch{m: make([]float32, maxHeads), l: make([]float32, maxHeads)}
}

func (sc *Scratch) scoreBuf(n int) []float32 {
	if cap(sc.scores) < n {
		sc.scores = make([]float32, n+n/2)
	}
	return sc.scores[:n]
}

func (sc *Scratch) wideBuf(n int) []float32 {
	if cap(sc.wide) < n {
		sc.wide = make([]float32, n)
	}
	return sc.wide[:n]
}

func (sc *Scratch) all(n int) []float32 {
	if cap(sc.allBuf) < n {
		sc.allBuf = make([]float32, n+n/2)
	}
	return sc.allBuf[:n]
}

// readMask returns n page flags, all true.
func (sc *Scratch) readMask(n int) []bool {
	if cap(sc.read) < n {
		sc.read = make([]bool, n+n/2)
	}
	r := sc.read[:n]
	for i := range r {
		r[i] = true
	}
	return r
}

// Vector decodes token i's key and value into k (Dim values) and v
// (ValueDim values). It is for tests, re-rotation and re-encoding, never
// for attention.
func (s *Stream) Vector(i int, k, v []float32) {
	pi, j := s.locate(i)
	switch {
	case pi >= 0:
		s.pages[pi].k.Decode(j, k)
		if s.pages[pi].v != nil {
			s.pages[pi].v.Decode(j, v)
		}
	default:
		decodeF16(k[:s.dk], s.tk[j*s.dk:(j+1)*s.dk])
		if !s.shared {
			decodeF16(v[:s.dv], s.tv[j*s.dv:(j+1)*s.dv])
		}
	}
	if s.shared {
		copy(v[:s.dv], k[:s.dv])
	}
}

// Keys decodes every key of the stream, in stream order, into dst (which
// grows to Len()*Dim() values) and returns it: one pass over the pages,
// for scorers that read keys (KNorm). Never for attention.
func (s *Stream) Keys(dst []float32) []float32 {
	d := s.dk
	n := len(s.pos)
	if cap(dst) < n*d {
		dst = make([]float32, n*d)
	}
	dst = dst[:n*d]
	i := 0
	for _, p := range s.pages {
		for j := 0; j < p.k.Len(); j++ {
			p.k.Decode(j, dst[i*d:(i+1)*d])
			i++
		}
	}
	decodeF16(dst[i*d:], s.tk)
	return dst
}

// own makes page i private to this stream before it is modified: a page
// shared with a forked cache is copied first (copy-on-write).
func (s *Stream) own(i int) {
	p := &s.pages[i]
	if p.ref == nil {
		return
	}
	if p.ref.Load() > 1 {
		p.k = clonePage(p.k, s.kc, s.dk)
		if p.v != nil {
			p.v = clonePage(p.v, s.vc, s.dv)
		}
		if p.sum != nil {
			sum := s.newSum()
			copy(sum, p.sum)
			p.sum = sum
		}
		p.ref.Add(-1)
	}
	p.ref = nil
}

// release drops this stream's claim on shared pages.
func (s *Stream) release() {
	for i := range s.pages {
		if r := s.pages[i].ref; r != nil {
			r.Add(-1)
			s.pages[i].ref = nil
		}
	}
}

// fork returns a stream that shares s's pages (counted in ref) and copies
// the small per-token state and the tail.
func (s *Stream) fork() *Stream {
	f := &Stream{dk: s.dk, dv: s.dv, kc: s.kc, vc: s.vc, shared: s.shared, residual: s.residual, group: s.group, track: s.track, sums: s.sums, local: s.local, locG: s.locG}
	f.pos = append([]int32(nil), s.pos...)
	f.loc = append([]float32(nil), s.loc...)
	f.obs = append([]float32(nil), s.obs...)
	f.acc = append([]float32(nil), s.acc...)
	f.tk = append([]uint16(nil), s.tk...)
	f.tv = append([]uint16(nil), s.tv...)
	f.pages = make([]pagePair, len(s.pages))
	for i := range s.pages {
		p := &s.pages[i]
		if p.ref == nil {
			p.ref = new(atomic.Int32)
			p.ref.Store(1)
		}
		p.ref.Add(1)
		f.pages[i] = *p
	}
	return f
}

// ownedBytes is this stream's share of its memory: each shared page counts
// 1/n for the n streams holding it, so summing over all live caches gives
// the memory really in use.
func (s *Stream) ownedBytes() int64 {
	b := s.unpagedBytes()
	for _, p := range s.pages {
		pb := p.bytes()
		if p.ref != nil {
			if n := int64(p.ref.Load()); n > 1 {
				pb /= n
			}
		}
		b += pb
	}
	return b
}

// cloner is implemented by pages that can copy themselves exactly.
type cloner interface{ Clone() Page }

// clonePage copies a page exactly when it can clone itself, and otherwise
// re-encodes its decoded vectors (exact for per-token codecs).
func clonePage(p Page, c Codec, d int) Page {
	if cl, ok := p.(cloner); ok {
		return cl.Clone()
	}
	n := p.Len()
	q := c.NewPage(d, max(n, PageTokens))
	x := make([]float32, d)
	for i := 0; i < n; i++ {
		p.Decode(i, x)
		q.Append(x, 1)
	}
	return q
}

// tokenStateBytes is the per-token bookkeeping: positions, the evictor's
// statistics when tracked, and the local attention a selector asked for.
func (s *Stream) tokenStateBytes() int64 {
	b := int64(len(s.pos)) * 4
	if s.track {
		b += int64(len(s.pos)) * 8
	}
	b += int64(len(s.loc)) * 4
	return b
}
