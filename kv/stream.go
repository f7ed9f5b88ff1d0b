package kv

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/kvgo/kvgo/kernel"
)

// Stream is the cache of one (layer, KV head): its tokens' keys and values
// in order, as encoded pages followed by a full-precision tail, and each
// token's absolute position. Policies see a stream as a list of tokens
// indexed 0..Len()-1 in that order.
type Stream struct {
	d        int
	kc, vc   Codec
	residual int // tokens kept in F32 at the end (max of the codecs' Residual)
	group    int // tokens per sealed page

	pos   []int32 // every token, in stream order
	pages []pagePair
	// The tail: tokens not yet encoded, in F32.
	tk, tv []float32

	// obs accumulates the attention probabilities a policy asked for
	// (observation window after prefill, or the last decode step), summed
	// over the query heads that share this KV head. acc is the policy's own
	// per-token state (e.g. H2O's accumulated attention). Both stay aligned
	// with pos when tokens are deleted.
	// They exist only when the cache has an evictor (track).
	obs   []float32
	acc   []float32
	track bool
	mu    sync.Mutex // guards obs while attention runs in parallel
}

type pagePair struct {
	k, v Page
	// ref counts the streams that share this page after Cache.Fork; nil
	// means the page belongs to one stream only.
	ref *atomic.Int32
}

func newStream(d int, kc, vc Codec) *Stream {
	s := &Stream{d: d, kc: kc, vc: vc, residual: max(kc.Residual(), vc.Residual())}
	s.group = max(kc.Group(), vc.Group())
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

// tailLen is the number of tokens in the F32 tail.
func (s *Stream) tailLen() int { return len(s.tk) / s.d }

// Bytes is the memory of the stream's keys, values and positions: pages
// and the tail by their allocated capacity, and per token 4 bytes of
// position (plus 8 bytes of attention statistics when an evictor runs).
func (s *Stream) Bytes() int64 {
	b := int64(cap(s.tk)+cap(s.tv))*4 + s.tokenStateBytes()
	for _, p := range s.pages {
		b += p.k.Bytes() + p.v.Bytes()
	}
	return b
}

// append adds one token. When seal is false the token stays in the F32
// tail (prefill before an eviction policy has chosen what to keep).
func (s *Stream) append(k, v []float32, pos int32, seal bool) {
	s.pos = append(s.pos, pos)
	if s.track {
		s.obs = append(s.obs, 0)
		s.acc = append(s.acc, 0)
	}
	if seal && s.group == 0 {
		// Per-token codecs: encode now, into the last page if it has room.
		n := len(s.pages)
		if n == 0 || s.pages[n-1].k.Len() >= PageTokens {
			s.pages = append(s.pages, pagePair{k: s.kc.NewPage(s.d, PageTokens), v: s.vc.NewPage(s.d, PageTokens)})
			n++
		}
		s.own(n - 1)
		s.pages[n-1].k.Append(k, 1)
		s.pages[n-1].v.Append(v, 1)
		return
	}
	s.tk = append(s.tk, k...)
	s.tv = append(s.tv, v...)
	if seal {
		s.seal(s.residual)
	}
}

// seal encodes the oldest tail tokens into pages while more than keep
// tokens (plus a whole group) remain in the tail.
func (s *Stream) seal(keep int) {
	if s.group == 0 {
		// Flush a staged tail into per-token pages.
		n := s.tailLen()
		for i := 0; i < n; i++ {
			last := len(s.pages)
			if last == 0 || s.pages[last-1].k.Len() >= PageTokens {
				s.pages = append(s.pages, pagePair{k: s.kc.NewPage(s.d, PageTokens), v: s.vc.NewPage(s.d, PageTokens)})
				last++
			}
			s.own(last - 1)
			s.pages[last-1].k.Append(s.tk[i*s.d:(i+1)*s.d], 1)
			s.pages[last-1].v.Append(s.tv[i*s.d:(i+1)*s.d], 1)
		}
		s.tk, s.tv = s.tk[:0], s.tv[:0]
		s.shrinkTail()
		return
	}
	g := s.group
	sealed := 0
	for s.tailLen()-sealed >= keep+g {
		k, v := s.kc.NewPage(s.d, g), s.vc.NewPage(s.d, g)
		k.Append(s.tk[sealed*s.d:(sealed+g)*s.d], g)
		v.Append(s.tv[sealed*s.d:(sealed+g)*s.d], g)
		s.pages = append(s.pages, pagePair{k: k, v: v})
		sealed += g
	}
	if sealed > 0 {
		s.tk = append(s.tk[:0], s.tk[sealed*s.d:]...)
		s.tv = append(s.tv[:0], s.tv[sealed*s.d:]...)
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
	slack := s.group * s.d
	if cap(s.tk) <= 2*len(s.tk)+slack {
		return
	}
	if len(s.tk)+slack == 0 {
		s.tk, s.tv = nil, nil
		return
	}
	s.tk = append(make([]float32, 0, len(s.tk)+slack), s.tk...)
	s.tv = append(make([]float32, 0, len(s.tv)+slack), s.tv...)
}

// Keep deletes every token whose keep[i] is false. It frees the memory of
// the deleted tokens: the tail and the positions are compacted, pages lose
// the tokens' codes, and pages left sparse are re-encoded densely.
func (s *Stream) Keep(keep []bool) {
	if len(keep) != len(s.pos) {
		panic("kv: Keep mask length differs from stream length")
	}
	// Pages first, from the back so indices stay valid within a page.
	base := 0
	out := s.pages[:0]
	for pi := range s.pages {
		n := s.pages[pi].k.Len()
		for i := n - 1; i >= 0; i-- {
			if !keep[base+i] {
				s.own(pi)
				s.pages[pi].k.Delete(i)
				s.pages[pi].v.Delete(i)
			}
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
	d := s.d
	w := 0
	for i := 0; i < s.tailLen(); i++ {
		if keep[base+i] {
			copy(s.tk[w*d:(w+1)*d], s.tk[i*d:(i+1)*d])
			copy(s.tv[w*d:(w+1)*d], s.tv[i*d:(i+1)*d])
			w++
		}
	}
	s.tk, s.tv = s.tk[:w*d], s.tv[:w*d]
	s.shrinkTail()
	// Per-token arrays.
	w = 0
	for i := range s.pos {
		if keep[i] {
			s.pos[w] = s.pos[i]
			if s.track {
				s.obs[w], s.acc[w] = s.obs[i], s.acc[i]
			}
			w++
		}
	}
	s.pos = s.pos[:w]
	if s.track {
		s.obs, s.acc = s.obs[:w], s.acc[:w]
	}
	if cap(s.pos) > 2*len(s.pos)+64 {
		s.pos = append([]int32(nil), s.pos...)
		s.obs = append([]float32(nil), s.obs...)
		s.acc = append([]float32(nil), s.acc...)
	}
	s.compact()
}

// compact re-encodes the pages when deletions left many of them sparse,
// so that memory follows the number of live tokens. For per-token codecs
// this is exact; for per-channel key groups (KIVI) the regrouped tokens are
// quantized again from their decoded values.
func (s *Stream) compact() {
	live := 0
	for _, p := range s.pages {
		live += p.k.Len()
	}
	per := s.group
	if per == 0 {
		per = PageTokens
	}
	dense := (live + per - 1) / per
	// Re-encode once a quarter of the pages (plus two) are wasted: often
	// enough that memory follows the live tokens under per-step eviction
	// (TOVA, H2O delete from the middle), rarely enough to cost little.
	if len(s.pages) <= dense+dense/4+2 {
		return
	}
	k := make([]float32, live*s.d)
	v := make([]float32, live*s.d)
	i := 0
	for _, p := range s.pages {
		for j := 0; j < p.k.Len(); j++ {
			p.k.Decode(j, k[i*s.d:(i+1)*s.d])
			p.v.Decode(j, v[i*s.d:(i+1)*s.d])
			i++
		}
	}
	s.release()
	s.pages = nil
	// Re-encode through the tail so group codecs get whole groups; a
	// partial group stays in F32 in front of the existing tail.
	s.tk = append(k, s.tk...)
	s.tv = append(v, s.tv...)
	if s.group == 0 {
		s.seal(0)
	} else {
		s.seal(s.residual)
	}
}

// truncate keeps the first n tokens.
func (s *Stream) truncate(n int) {
	if n >= len(s.pos) {
		return
	}
	keep := make([]bool, len(s.pos))
	for i := 0; i < n; i++ {
		keep[i] = true
	}
	s.Keep(keep)
}

// attend runs attention of g query heads q (g*d values) at position qpos
// over the stream, with an online softmax across pages so that no page is
// ever decoded to F32 as a whole. out receives g*d values. When collect is
// set, the probabilities each token received, summed over the g heads,
// are added to s.obs.
func (s *Stream) attend(q []float32, g int, qpos int32, scale float32, out []float32, sc *Scratch, collect bool) {
	d := s.d
	T := len(s.pos)
	m, l := sc.m[:g], sc.l[:g]
	for j := range m {
		m[j] = float32(math.Inf(-1))
		l[j] = 0
	}
	clear(out[:g*d])
	var all []float32
	if collect {
		all = sc.all(g * T)
	}
	base := 0
	for _, p := range s.pages {
		s.block(p.k, p.v, q, g, qpos, scale, out, sc, all, base)
		base += p.k.Len()
	}
	if s.tailLen() > 0 {
		// The views live in the worker's scratch: no allocation, no race.
		sc.tailK, sc.tailV = f32View{s.tk, d}, f32View{s.tv, d}
		s.block(&sc.tailK, &sc.tailV, q, g, qpos, scale, out, sc, all, base)
	}
	for j := 0; j < g; j++ {
		if l[j] > 0 {
			inv := 1 / l[j]
			oj := out[j*d : (j+1)*d]
			for c := range oj {
				oj[c] *= inv
			}
		}
	}
	if collect {
		s.mu.Lock()
		for j := 0; j < g; j++ {
			if l[j] == 0 {
				continue
			}
			inv := 1 / l[j]
			for i := 0; i < T; i++ {
				s.obs[i] += float32(math.Exp(float64(all[j*T+i]-m[j]))) * inv
			}
		}
		s.mu.Unlock()
	}
}

// block folds one page (or the tail) into the running online softmax:
// m and l in sc hold each head's running maximum and normalizer, out the
// unnormalized weighted sum of values.
func (s *Stream) block(k, v attendable, q []float32, g int, qpos int32, scale float32, out []float32, sc *Scratch, all []float32, base int) {
	d, T := s.d, len(s.pos)
	n := k.Len()
	m, l := sc.m, sc.l
	w := sc.scoreBuf(g * n)
	k.Dot(q, g, w, &sc.page)
	// Tokens after the query exist only while a prompt is prefilled; a
	// decode step sees none, and then a row is scaled and its maximum
	// taken by the vector kernels instead of a masking loop per head.
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
				x := row[i] * scale
				if pos[i] > qpos {
					x = float32(math.Inf(-1))
				}
				row[i] = x
				bm = max(bm, x)
			}
		} else {
			kernel.Scale(row, scale)
			bm = kernel.Max(row)
		}
		if all != nil {
			copy(all[j*T+base:j*T+base+n], row)
		}
		if bm > m[j] {
			f := float32(math.Exp(float64(m[j] - bm)))
			kernel.Scale(out[j*d:(j+1)*d], f)
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

// f32View lets attention read the F32 tail like a page.
type f32View struct {
	x []float32
	d int
}

func (t *f32View) Len() int { return len(t.x) / t.d }

func (t *f32View) Dot(q []float32, g int, out []float32, _ *PageScratch) {
	if n := t.Len(); n > 0 {
		kernel.DotsGroup(out[:g*n], q[:g*t.d], g, t.x, t.d)
	}
}

func (t *f32View) AddWeighted(w []float32, g int, out []float32, _ *PageScratch) {
	d, n := t.d, t.Len()
	if n == 0 {
		return
	}
	kernel.WeightedSumHeads(out, w, n, g, t.x[:n*d], d)
}

// Scratch is per-worker memory for attention, reused across calls so the
// decode loop does not allocate.
type Scratch struct {
	scores       []float32
	allBuf       []float32
	m, l         []float32
	tailK, tailV f32View
	page         PageScratch
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

func (sc *Scratch) all(n int) []float32 {
	if cap(sc.allBuf) < n {
		sc.allBuf = make([]float32, n+n/2)
	}
	return sc.allBuf[:n]
}

// Vector decodes token i's key and value into k and v (HeadDim values
// each). It is for tests, re-rotation and re-encoding, never for attention.
func (s *Stream) Vector(i int, k, v []float32) {
	for _, p := range s.pages {
		if n := p.k.Len(); i >= n {
			i -= n
			continue
		}
		p.k.Decode(i, k)
		p.v.Decode(i, v)
		return
	}
	d := s.d
	copy(k, s.tk[i*d:(i+1)*d])
	copy(v, s.tv[i*d:(i+1)*d])
}

// Dim is the head size of the stream's vectors.
func (s *Stream) Dim() int { return s.d }

// own makes page i private to this stream before it is modified: a page
// shared with a forked cache is copied first (copy-on-write).
func (s *Stream) own(i int) {
	p := &s.pages[i]
	if p.ref == nil {
		return
	}
	if p.ref.Load() > 1 {
		p.k, p.v = clonePage(p.k, s.kc, s.d), clonePage(p.v, s.vc, s.d)
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
	f := &Stream{d: s.d, kc: s.kc, vc: s.vc, residual: s.residual, group: s.group, track: s.track}
	f.pos = append([]int32(nil), s.pos...)
	f.obs = append([]float32(nil), s.obs...)
	f.acc = append([]float32(nil), s.acc...)
	f.tk = append([]float32(nil), s.tk...)
	f.tv = append([]float32(nil), s.tv...)
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
	b := int64(cap(s.tk)+cap(s.tv))*4 + s.tokenStateBytes()
	for _, p := range s.pages {
		pb := p.k.Bytes() + p.v.Bytes()
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

// tokenStateBytes is the per-token bookkeeping: positions, and the
// evictor's statistics when tracked.
func (s *Stream) tokenStateBytes() int64 {
	b := int64(len(s.pos)) * 4
	if s.track {
		b += int64(len(s.pos)) * 8
	}
	return b
}
