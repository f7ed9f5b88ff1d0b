package evict

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/kvgo/kvgo/kv"
)

// KVCrush (Jha et al. 2025, arXiv:2503.00022) is an add-on to an
// importance-based eviction method. Importance alone keeps the tokens the
// heads agree on and throws away whole kinds of tokens at once; KVCrush
// gives part of the budget to representatives of the tokens the base
// method drops, grouped by how the heads treat them: each token gets a
// binary head-behaviour vector (one bit per head: is the token among those
// this head attends to?), the candidates are bucketed by the Hamming
// distance of their vector to an anchor vector, and each bucket keeps a
// representative. Grouping by distance to one anchor is a single pass, not
// a clustering, so its cost stays negligible next to attention.
//
// In kvgo it is a wrapper (kv.WrapperMethod): the base method is the
// recipe's evictor, any Ranked evictor of this package ("snapkv(budget=
// 0.25)+kvcrush"), and KVCrush takes from it the budget, the scores, the
// protected tokens and whether it evicts at every step; its own
// parameters are Split, Anchor, Scope and Threshold.
//
// How kvgo reads it (choices the paper leaves open or that differ):
//   - Scope "head" (default): each stream (KV head) keeps exactly what the
//     base method alone would keep in its part of the budget, by its own
//     scores, and all streams of the layer keep the same representatives,
//     chosen among the tokens that every stream holds and no stream's base
//     keeps. A representative stands for a head-behaviour pattern across
//     heads, so it is kept for all of them. This is how the KVCrush vLLM
//     integration combines them (per-KV-head base selection, shared
//     representatives). Scope "layer": every stream keeps the same tokens,
//     the base selecting by the layer's importance, the sum over the
//     layer's streams of their base scores (it ranks as the layer average
//     does; TOVA aggregates the same way), as OpenVINO GenAI's block-wise
//     KVCrush does. On kvgo's test models the layer-wide base costs more
//     KL divergence than the per-head base (figures in
//     docs/PERFORMANCE.md), which is why head is the default. The scope
//     replaces the base's own (TOVA ranks per layer on its own, per head
//     under KVCrush's default).
//   - Base scores: the base's scores over the tokens between its protected
//     ones, as it ranks them: the pooled observation-window attention of
//     SnapKV and PyramidKV, the accumulated attention of H2O, the current
//     attention of TOVA, minus the key norms of KNorm, recency for
//     StreamingLLM (which makes every head behave alike: KVCrush over it
//     runs but adds little).
//   - Budget split: the base's protected tokens are kept first, as the base
//     alone keeps them (SnapKV's observation window, H2O's recent window of
//     Recent × budget, StreamingLLM's sinks); of the rest (the layer's
//     share with PyramidKV), round(Split × rest) tokens are the base's top
//     tokens and the others are representatives. Split 1 is the base
//     method exactly. Default 0.75: the vLLM integration keeps its start
//     and recent windows outside the split and gives 25% of the rest
//     (kvcrush_ratio 0.25) to representatives.
//   - Head-behaviour vector: one bit per stream of the layer (KV head h;
//     the cache sums the query heads of a GQA group). With Threshold
//     "median" (default) bit h is 1 when the token is in the top half of
//     stream h's base scores over its scored tokens (everything but the
//     protected ones), as both reference implementations (OpenVINO GenAI,
//     vLLM) build their indicators. With "mean" it is 1 above the stream's
//     mean score, the rule METHODS.md states; attention is heavy-tailed, so
//     the mean sits above almost every token the base drops, their vectors
//     are nearly all zero and fall into one bucket, and KVCrush then
//     degenerates into the base ranking continued. The median keeps half
//     of the bits set whatever the tail, which is what lets the buckets
//     separate behaviours.
//   - Anchors: ones, zeros, alternate (0,1,0,1,... by head) and mean (the
//     bitwise majority of the candidates' vectors; over all scored tokens
//     a median bit is set for exactly half of them, which would make the
//     majority void). Default alternate, as in the vLLM integration;
//     OpenVINO GenAI defaults to a random anchor, which kvgo leaves out to
//     stay deterministic. No anchor was consistently better on kvgo's test
//     models. The paper's full text was not available here to check which
//     anchor it prefers; only its abstract was.
//   - Buckets are the Hamming distances 0..H. Each non-empty bucket first
//     gives its most important candidate (by the summed base scores), then,
//     while slots remain, the buckets give their next most important ones
//     in round robin, in increasing distance. The reference code sorts
//     candidates by distance and takes evenly spaced ones; bucketing with
//     round robin guarantees every distance class one representative
//     before any gets two.
//   - When: KVCrush compresses the prompt after prefill, as in the paper.
//     A base that compresses the prompt only (SnapKV, PyramidKV, KNorm)
//     then keeps every generated token. A base that evicts at every step
//     (H2O, TOVA, StreamingLLM) goes on doing so during decoding (the
//     lowest score outside its protected tokens) but never evicts a
//     representative: they are held like attention sinks. Re-running the
//     whole selection every step instead churns through the
//     representatives (they are the low-importance tokens) and measured
//     worse over H2O (KL divergence on kvgo-tiny at a quarter of the
//     prompt; figures in docs/PERFORMANCE.md). A layer whose prompt fit
//     the budget gets its selection at the first step over budget.
type KVCrush struct {
	Split  float64
	Anchor string // "alternate", "ones", "zeros" or "mean"
	// Threshold sets a head-behaviour bit: "median" (the token is in the
	// top half of the head's scores) or "mean" (above the head's mean).
	Threshold string
	// Scope is "head" (each stream keeps its own base selection, the
	// representatives are shared) or "layer" (every stream keeps the same
	// tokens, the base selecting by the layer's summed scores).
	Scope string

	base   *Ranked // the wrapped evictor
	sc     scratch
	per    []float32 // per-stream base scores, H rows of the scored tokens
	vec    []uint64  // head-behaviour vectors, words per token
	anchor []uint64
	dist   []uint16
	half   []int32
	rr     roundRobin
	held   [][]int32 // per layer, the sorted positions of its representatives
	// Head scope.
	masks []bool    // one keep mask per stream
	beh   []bool    // head-behaviour bit per (stream, scored token)
	hidx  []int32   // per-stream selection order
	ptr   []int32   // per-stream cursor of the candidate walk
	cidx  []int32   // per candidate, its index in each stream's scored tokens
	cimp  []float32 // per candidate, its importance
}

// errNotRanked is Wrap's error for an evictor KVCrush cannot read scores
// from.
var errNotRanked = errors.New("kvcrush needs an evictor that ranks tokens")

// NewKVCrush wraps inner, a Ranked evictor of this package, with KVCrush.
func NewKVCrush(inner kv.Evictor, split float64, anchor, scope, threshold string) (*KVCrush, error) {
	base, ok := ranked(inner)
	if !ok {
		return nil, errNotRanked
	}
	e := &KVCrush{base: base, Split: split, Anchor: anchor, Scope: scope, Threshold: threshold}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

// Name is the base's name and kvcrush, as the recipe's family spells it.
func (e *KVCrush) Name() string    { return e.base.Name() + "+kvcrush" }
func (e *KVCrush) Window() int     { return e.base.Window() }
func (e *KVCrush) StepStats() bool { return e.base.StepStats() }

// Bound is the base's: its budget, at every step if it evicts at every
// step.
func (e *KVCrush) Bound() kv.Bound {
	b := e.base.Bound()
	// KVCrush chooses its representatives from the whole prompt, after
	// prefill: it stages the prompt even over a rolling base.
	b.Rolling = false
	return b
}

// Protected (kv.Protector) is the sinks and tail the wrapped evictor's
// rules protect: KVCrush keeps them first; the rest of the budget, its
// top tokens and its representatives, is chosen by scores.
func (e *KVCrush) Protected(n int) (first, last int) {
	head, tail, _ := e.base.ruled(n)
	return head, tail
}

func (e *KVCrush) check() error {
	switch e.Anchor {
	case "alternate", "ones", "zeros", "mean":
	default:
		return fmt.Errorf("anchor=%s is not one of [alternate ones zeros mean]", e.Anchor)
	}
	switch e.Threshold {
	case "median", "mean":
	default:
		return fmt.Errorf("threshold=%s is not one of [median mean]", e.Threshold)
	}
	switch e.Scope {
	case "head", "layer":
	default:
		return fmt.Errorf("scope=%s is not one of [head layer]", e.Scope)
	}
	return nil
}

func (e *KVCrush) AfterPrefill(l *kv.LayerView, _ int) {
	e.base.observe(l)
	e.apply(l)
}

// AfterStep (a base that evicts at every step) evicts, while the layer is
// over budget, the lowest-scoring tokens that are neither protected by the
// base nor held representatives; a layer that has not been through a
// KVCrush selection yet (its prompt fit the budget) gets one first.
func (e *KVCrush) AfterStep(l *kv.LayerView) {
	if !e.base.Steady {
		return
	}
	e.base.observe(l)
	if l.Layer >= len(e.held) || e.held[l.Layer] == nil {
		e.apply(l)
		return
	}
	b, ok := resolve(e.base.Budget, l.Prompt)
	if !ok {
		return
	}
	held := e.held[l.Layer]
	if e.Scope == "layer" {
		n := sameLength(l)
		if n <= b {
			return
		}
		head, tail, sel := e.base.plan(b, n, l.Layer, l.Layers)
		m := n - head - tail
		sum := e.sc.scores(m)
		row := grown(&e.sc.row, m)
		for _, s := range l.Streams {
			e.base.score(s, head, n-tail, row)
			for i, v := range row {
				sum[i] += v
			}
		}
		mask := e.evictFree(l.Streams[0].Positions(), sum, head+tail+sel, head, tail, held)
		for _, s := range l.Streams {
			s.Keep(mask)
		}
		return
	}
	// Head scope: the streams hold different tokens (and, after a
	// rollback, possibly different counts); each evicts on its own.
	for _, s := range l.Streams {
		n := s.Len()
		if n <= b {
			continue
		}
		head, tail, sel := e.base.plan(b, n, l.Layer, l.Layers)
		row := grown(&e.sc.row, n-head-tail)
		e.base.score(s, head, n-tail, row)
		s.Keep(e.evictFree(s.Positions(), row, head+tail+sel, head, tail, held))
	}
}

// evictFree returns the keep mask of a stream of len(pos) tokens that
// keeps b: it drops the len(pos)-b lowest by score among the tokens
// between the first head and the last tail whose positions are not held
// (held is sorted). score holds the scores of those middle tokens, from
// index head on.
func (e *KVCrush) evictFree(pos []int32, score []float32, b, head, tail int, held []int32) []bool {
	n := len(pos)
	mask := e.sc.maskOf(n, true)
	idx := e.sc.iota(n)[:0]
	j := 0
	for i := head; i < n-tail; i++ {
		for j < len(held) && held[j] < pos[i] {
			j++
		}
		if j < len(held) && held[j] == pos[i] {
			continue
		}
		idx = append(idx, int32(i-head))
	}
	keep := max(0, len(idx)-(n-b))
	selectTop(idx, score, keep)
	for _, i := range idx[keep:] {
		mask[head+int(i)] = false
	}
	return mask
}

// apply runs the KVCrush selection on a layer and records the positions
// of the representatives it keeps.
func (e *KVCrush) apply(l *kv.LayerView) {
	b, ok := resolve(e.base.Budget, l.Prompt)
	if !ok {
		return
	}
	n := sameLength(l)
	if n <= b {
		return
	}
	H := len(l.Streams)
	// The base's protected tokens come first, as the base alone would
	// keep them; Split divides the rest.
	head, tail, kept := e.base.plan(b, n, l.Layer, l.Layers)
	m := n - head - tail // the scored tokens
	if kept >= m {
		return
	}
	sel := part(e.Split, kept, 0)
	reps := kept - sel
	if cap(e.per) < H*m {
		e.per = make([]float32, H*m, H*m+H*m/4+16)
	}
	per := e.per[:H*m]
	for h, s := range l.Streams {
		e.base.score(s, head, n-tail, per[h*m:(h+1)*m])
	}
	for len(e.held) < l.Layers {
		e.held = append(e.held, nil)
	}
	held := e.held[l.Layer][:0]
	if e.Scope == "layer" {
		mask := e.sc.maskOf(n, true)
		pos := l.Streams[0].Positions()
		for _, i := range e.crush(mask[head:head+m], per, H, sel, reps) {
			held = append(held, pos[head+int(i)])
		}
		e.held[l.Layer] = sortHeld(held)
		for _, s := range l.Streams {
			s.Keep(mask)
		}
		return
	}
	e.held[l.Layer] = sortHeld(e.crushHeads(l.Streams, per, n, head, m, sel, reps, held))
}

// sortHeld sorts representative positions, never returning nil so that a
// layer that went through a selection is marked as such.
func sortHeld(p []int32) []int32 {
	slices.Sort(p)
	if p == nil {
		p = []int32{}
	}
	return p
}

// crushHeads is the head scope: each stream keeps its own base selection
// (its top sel scored tokens by its own score, as the base method alone
// would) and its protected tokens, and all streams keep the same reps
// representatives, chosen among the tokens that every stream still holds
// and no stream's base keeps. The streams hold n tokens each, m scored
// from index lo on; per has their scores (H rows of m). If there are fewer
// such tokens than reps, each stream fills the rest with its own next best
// tokens.
func (e *KVCrush) crushHeads(streams []*kv.Stream, per []float32, n, lo, m, sel, reps int, held []int32) []int32 {
	H := len(streams)
	e.masks = growBool(e.masks, H*n)
	e.beh = growBool(e.beh, H*m)
	e.hidx = growInt32(e.hidx, H*m)
	e.half = growInt32(e.half, m)
	mean := e.Threshold == "mean"
	// scored is stream h's mask of its scored tokens.
	scored := func(h int) []bool { return e.masks[h*n+lo : h*n+lo+m] }
	for h := range streams {
		row := per[h*m : (h+1)*m]
		mask := e.masks[h*n : (h+1)*n]
		for i := range mask {
			mask[i] = i < lo || i >= lo+m
		}
		idx := e.hidx[h*m : (h+1)*m]
		for i := range idx {
			idx[i] = int32(i)
		}
		selectTop(idx, row, sel)
		sm := scored(h)
		for _, i := range idx[:sel] {
			sm[i] = true
		}
		behaviour(e.beh[h*m:(h+1)*m], row, mean, e.half[:m])
	}
	// Candidates: positions held by every stream among its scored tokens
	// and kept by no stream's base. Streams are in position order, so one
	// merge-like walk finds them.
	e.ptr = growInt32(e.ptr, H)
	clear(e.ptr)
	e.cidx = e.cidx[:0]
	e.cimp = e.cimp[:0]
	pos0 := streams[0].Positions()[lo : lo+m]
	for i := 0; i < m; i++ {
		p := pos0[i]
		ok := !scored(0)[i]
		for h := 1; h < H && ok; h++ {
			pos := streams[h].Positions()[lo : lo+m]
			j := e.ptr[h]
			for int(j) < m && pos[j] < p {
				j++
			}
			e.ptr[h] = j
			ok = int(j) < m && pos[j] == p && !scored(h)[j]
		}
		if !ok {
			continue
		}
		e.ptr[0] = int32(i)
		var imp float32
		for h := 0; h < H; h++ {
			j := e.ptr[h]
			e.cidx = append(e.cidx, j)
			imp += per[h*m+int(j)]
		}
		e.cimp = append(e.cimp, imp)
	}
	C := len(e.cimp)
	if C > 0 && reps > 0 {
		words := (H + 63) / 64
		e.vec = grow(e.vec, C*words)
		clear(e.vec)
		e.anchor = grow(e.anchor, words)
		if cap(e.dist) < C {
			e.dist = make([]uint16, C, C+C/4+16)
		}
		dist := e.dist[:C]
		cands := e.sc.iota(C)
		for c := 0; c < C; c++ {
			for h := 0; h < H; h++ {
				if e.beh[h*m+int(e.cidx[c*H+h])] {
					e.vec[c*words+h/64] |= 1 << (h % 64)
				}
			}
		}
		anchorBits(e.anchor, e.Anchor, e.vec, H, cands)
		for c := 0; c < C; c++ {
			dist[c] = hamming(e.vec[c*words:(c+1)*words], e.anchor)
		}
		for _, c := range e.rr.pick(cands, dist, e.cimp, reps, H) {
			held = append(held, pos0[e.cidx[int(c)*H]])
			for h := 0; h < H; h++ {
				scored(h)[e.cidx[int(c)*H+h]] = true
			}
		}
	}
	for h, s := range streams {
		if short := reps - C; short > 0 {
			// Too few shared candidates: the stream's own next best.
			sm := scored(h)
			idx := e.hidx[h*m : (h+1)*m]
			rest := idx[sel:sel]
			for _, i := range idx[sel:] {
				if !sm[i] {
					rest = append(rest, i)
				}
			}
			selectTop(rest, per[h*m:(h+1)*m], short)
			for _, i := range rest[:min(short, len(rest))] {
				sm[i] = true
			}
		}
		s.Keep(e.masks[h*n : (h+1)*n])
	}
	return held
}

func growBool(x []bool, n int) []bool {
	if cap(x) < n {
		return make([]bool, n, n+n/4+16)
	}
	return x[:n]
}

func growInt32(x []int32, n int) []int32 {
	if cap(x) < n {
		return make([]int32, n, n+n/4+16)
	}
	return x[:n]
}

// crush marks in mask (one entry per scored token, m = len(mask)) the
// sel tokens with the highest importance (the sum of the H rows of
// per-stream scores per) and reps representatives of the others, clears
// the rest, and returns the representatives.
func (e *KVCrush) crush(mask []bool, per []float32, H, sel, reps int) []int32 {
	m := len(mask)
	imp := e.sc.scores(m)
	for h := 0; h < H; h++ {
		for i, v := range per[h*m : (h+1)*m] {
			imp[i] += v
		}
	}
	clear(mask)
	idx := e.sc.iota(m)
	selectTop(idx, imp, sel)
	for _, i := range idx[:sel] {
		mask[i] = true
	}
	if reps <= 0 {
		return nil
	}
	cands := idx[sel:]
	words := (H + 63) / 64
	e.vec = grow(e.vec, m*words)
	e.anchor = grow(e.anchor, words)
	e.half = growInt32(e.half, m)
	e.beh = growBool(e.beh, m)
	headBits(e.vec, per, H, m, e.Threshold == "mean", e.half, e.beh)
	anchorBits(e.anchor, e.Anchor, e.vec, H, cands)
	if cap(e.dist) < m {
		e.dist = make([]uint16, m, m+m/4+16)
	}
	dist := e.dist[:m]
	for _, i := range cands {
		dist[i] = hamming(e.vec[int(i)*words:(int(i)+1)*words], e.anchor)
	}
	picks := e.rr.pick(cands, dist, imp, reps, H)
	for _, i := range picks {
		mask[i] = true
	}
	return picks
}

func grow(x []uint64, n int) []uint64 {
	if cap(x) < n {
		return make([]uint64, n, n+n/4+4)
	}
	return x[:n]
}

// behaviour marks in dst the tokens of one stream (scores row) whose
// head-behaviour bit is set: the top half (floor(len/2)) by score, or with
// mean those above the row's mean. buf holds len(row) indices of scratch.
func behaviour(dst []bool, row []float32, mean bool, buf []int32) {
	m := len(row)
	clear(dst[:m])
	if mean {
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mu := float32(sum / float64(m))
		for i, v := range row {
			dst[i] = v > mu
		}
		return
	}
	idx := buf[:m]
	for i := range idx {
		idx[i] = int32(i)
	}
	selectTop(idx, row, m/2)
	for _, i := range idx[:m/2] {
		dst[i] = true
	}
}

// headBits writes the head-behaviour vectors of m tokens into vec
// (ceil(H/64) words per token) from the per-stream scores per (H rows of
// m), by the rule of behaviour. buf and tmp hold m entries of scratch.
func headBits(vec []uint64, per []float32, H, m int, mean bool, buf []int32, tmp []bool) {
	words := (H + 63) / 64
	clear(vec[:m*words])
	for h := 0; h < H; h++ {
		behaviour(tmp, per[h*m:(h+1)*m], mean, buf)
		w, bit := h/64, uint64(1)<<(h%64)
		for i, on := range tmp[:m] {
			if on {
				vec[i*words+w] |= bit
			}
		}
	}
}

// anchorBits writes the anchor vector of the given kind for H heads; mean
// is the bitwise majority of the vectors of the candidates.
func anchorBits(dst []uint64, kind string, vec []uint64, H int, cands []int32) {
	words := (H + 63) / 64
	clear(dst[:words])
	for h := 0; h < H; h++ {
		w, bit := h/64, uint64(1)<<(h%64)
		var on bool
		switch kind {
		case "ones":
			on = true
		case "zeros":
			on = false
		case "alternate":
			on = h%2 == 1
		case "mean":
			c := 0
			for _, i := range cands {
				if vec[int(i)*words+w]&bit != 0 {
					c++
				}
			}
			on = 2*c > len(cands)
		default:
			panic("evict: unknown KVCrush anchor " + kind)
		}
		if on {
			dst[w] |= bit
		}
	}
}

func hamming(a, b []uint64) uint16 {
	d := 0
	for i := range a {
		d += bits.OnesCount64(a[i] ^ b[i])
	}
	return uint16(d)
}

// roundRobin picks representatives; it keeps its buffers between calls.
type roundRobin struct {
	count []int32
	order []int32
	out   []int32
}

// pick returns r of the candidates (token indices): the most important
// candidate (by imp) of each Hamming-distance bucket 0..H, then the next
// most important of each bucket, and so on, buckets in increasing
// distance. It runs in expected O(len(cands) + H·log(len(cands))).
func (rr *roundRobin) pick(cands []int32, dist []uint16, imp []float32, r, H int) []int32 {
	if r >= len(cands) {
		return cands
	}
	if r <= 0 {
		return nil
	}
	nb := H + 1
	if cap(rr.count) < nb+1 {
		rr.count = make([]int32, nb+1)
	}
	start := rr.count[:nb+1]
	clear(start)
	for _, i := range cands {
		start[dist[i]+1]++
	}
	maxSize := int32(0)
	for d := 1; d <= nb; d++ {
		maxSize = max(maxSize, start[d])
		start[d] += start[d-1]
	}
	// Counting sort of the candidates by bucket.
	if cap(rr.order) < len(cands) {
		rr.order = make([]int32, len(cands), len(cands)+len(cands)/4+16)
	}
	order := rr.order[:len(cands)]
	for _, i := range cands {
		d := dist[i]
		order[start[d]] = i
		start[d]++
	}
	// start[d] is now the end of bucket d; bucket d is [end(d-1), end(d)).
	bucket := func(d int) []int32 {
		lo := int32(0)
		if d > 0 {
			lo = start[d-1]
		}
		return order[lo:start[d]]
	}
	// The number of rounds: the smallest k with sum_d min(size_d, k) >= r.
	taken := func(k int32) int {
		t := 0
		for d := 0; d < nb; d++ {
			t += int(min(int32(len(bucket(d))), k))
		}
		return t
	}
	lo, hi := int32(1), maxSize
	for lo < hi {
		mid := lo + (hi-lo)/2
		if taken(mid) >= r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	k := int(lo)
	if cap(rr.out) < r {
		rr.out = make([]int32, 0, r+r/4+16)
	}
	out := rr.out[:0]
	// Whole rounds 1..k-1 take each bucket's k-1 best; round k takes the
	// k-th best of the first buckets that have one.
	for d := 0; d < nb; d++ {
		seg := bucket(d)
		if len(seg) >= k {
			rankTo(seg, imp, k)
		}
		out = append(out, seg[:min(len(seg), k-1)]...)
	}
	for d := 0; d < nb && len(out) < r; d++ {
		if seg := bucket(d); len(seg) >= k {
			out = append(out, seg[k-1])
		}
	}
	rr.out = out
	return out
}

// rankTo reorders seg (len(seg) >= k) so that seg[:k-1] are its k-1 best
// tokens by s and seg[k-1] is the k-th best.
func rankTo(seg []int32, s []float32, k int) {
	if k < len(seg) {
		selectTop(seg, s, k)
		return
	}
	w := 0
	for i := 1; i < len(seg); i++ {
		if better(s, seg[w], seg[i]) {
			w = i
		}
	}
	last := len(seg) - 1
	seg[w], seg[last] = seg[last], seg[w]
}
