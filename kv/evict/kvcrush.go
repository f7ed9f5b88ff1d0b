package evict

import (
	"fmt"
	"math/bits"

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
// How kvgo reads it (choices the paper leaves open or that differ):
//   - Layer-wise: KVCrush keeps the same tokens in every stream of a layer
//     (a representative stands for a head-behaviour pattern across heads,
//     so it is kept for all of them). The layer's streams thus stay aligned
//     token for token.
//   - Base importance for the layer is the sum over the layer's streams of
//     each stream's base score: the pooled observation-window attention
//     for base snapkv (SnapKV's score, window and pooling parameters), the
//     accumulated attention in Stream.Acc for base h2o. The sum ranks as
//     the layer average does (TOVA aggregates the same way).
//   - Budget split: round(Split·budget) tokens (at least 1) go to the base
//     method, its protected tail included (SnapKV's observation window, or
//     H2O's recent window as Recent of the base part); the other tokens are
//     representatives. Default Split 0.75, the split of the KVCrush vLLM
//     integration (kvcrush_ratio 0.25 of the budget for representatives),
//     which keeps most of the budget with the base so that KVCrush is an
//     addition to it rather than a replacement.
//   - Head-behaviour vector: one bit per stream of the layer (KV head h;
//     the cache sums the query heads of a GQA group). With Threshold
//     "median" (default) bit h is 1 when the token is in the top half of
//     stream h's base scores over the scored tokens (everything but the
//     protected tail), as both reference implementations (OpenVINO GenAI,
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
//     stay deterministic. The paper's full text was not available here to
//     check which anchor it prefers; only its abstract was.
//   - Buckets are the Hamming distances 0..H. Each non-empty bucket first
//     gives its most important candidate (by base importance), then, while
//     slots remain, the buckets give their next most important ones in
//     round robin, in increasing distance. The reference code sorts
//     candidates by distance and takes evenly spaced ones; bucketing with
//     round robin guarantees every distance class one representative
//     before any gets two.
//   - Base snapkv acts after prefill only, like SnapKV; base h2o also runs
//     the whole selection after every decode step on the accumulated
//     scores, which evicts the token (one, in steady state) that is neither
//     among the base's top nor a representative.
type KVCrush struct {
	Budget kv.Budget
	Base   string // "snapkv" or "h2o"
	Split  float64
	Anchor string // "alternate", "ones", "zeros" or "mean"
	// Threshold sets a head-behaviour bit: "median" (the token is in the
	// top half of the head's scores) or "mean" (above the head's mean).
	Threshold string
	// SnapKV base parameters.
	Win    int
	Kernel int
	Pool   string
	// H2O base parameter.
	Recent float64

	sc     scratch
	per    []float32 // per-stream base scores, H rows of the scored tokens
	vec    []uint64  // head-behaviour vectors, words per token
	anchor []uint64
	dist   []uint16
	half   []int32
	rr     roundRobin
}

func (*KVCrush) Name() string { return "kvcrush" }

func (e *KVCrush) Window() int {
	if e.Base == "h2o" {
		return -1
	}
	return e.Win
}

func (e *KVCrush) StepStats() bool { return e.Base == "h2o" }

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
	switch e.Base {
	case "snapkv":
		return checkKernel(e.Kernel)
	case "h2o":
		return nil
	}
	return fmt.Errorf("base=%s is not one of [snapkv h2o]", e.Base)
}

func (e *KVCrush) AfterPrefill(l *kv.LayerView, _ int) { e.apply(l) }

func (e *KVCrush) AfterStep(l *kv.LayerView) {
	if e.Base == "h2o" {
		e.apply(l)
	}
}

func (e *KVCrush) apply(l *kv.LayerView) {
	h2o := e.Base == "h2o"
	if h2o {
		for _, s := range l.Streams {
			accumulate(s)
		}
	}
	b, ok := resolve(e.Budget, l.Prompt)
	if !ok {
		return
	}
	n := sameLength(l)
	if n <= b {
		return
	}
	H := len(l.Streams)
	bb := part(e.Split, b, 1)
	var tail int
	if h2o {
		tail = part(e.Recent, bb, 0)
	} else {
		tail = snapWindow(e.Win, n, bb)
	}
	m := n - tail // the scored tokens; the tail is kept
	if cap(e.per) < H*m {
		e.per = make([]float32, H*m, H*m+H*m/4+16)
	}
	per := e.per[:H*m]
	for h, s := range l.Streams {
		row := per[h*m : (h+1)*m]
		if h2o {
			copy(row, s.Acc()[:m])
		} else {
			pool(row, s.Observed()[:m], e.Kernel, e.Pool == "avg")
		}
	}
	mask := e.sc.maskOf(n, true)
	e.crush(mask[:m], per, H, bb-tail, b-bb)
	for _, s := range l.Streams {
		s.Keep(mask)
	}
}

// crush marks in mask (one entry per scored token, m = len(mask)) the
// sel tokens with the highest importance (the sum of the H rows of
// per-stream scores per) and reps representatives of the others, and
// clears the rest.
func (e *KVCrush) crush(mask []bool, per []float32, H, sel, reps int) {
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
		return
	}
	cands := idx[sel:]
	words := (H + 63) / 64
	e.vec = grow(e.vec, m*words)
	e.anchor = grow(e.anchor, words)
	if cap(e.half) < m {
		e.half = make([]int32, m, m+m/4+16)
	}
	headBits(e.vec, per, H, m, e.Threshold == "mean", e.half[:m])
	anchorBits(e.anchor, e.Anchor, e.vec, H, cands)
	if cap(e.dist) < m {
		e.dist = make([]uint16, m, m+m/4+16)
	}
	dist := e.dist[:m]
	for _, i := range cands {
		dist[i] = hamming(e.vec[int(i)*words:(int(i)+1)*words], e.anchor)
	}
	for _, i := range e.rr.pick(cands, dist, imp, reps, H) {
		mask[i] = true
	}
}

func grow(x []uint64, n int) []uint64 {
	if cap(x) < n {
		return make([]uint64, n, n+n/4+4)
	}
	return x[:n]
}

// headBits writes the head-behaviour vectors of m tokens into vec
// (ceil(H/64) words per token) from the per-stream scores per (H rows of
// m). Bit h is set for the top half (floor(m/2)) of stream h's tokens by
// score, or with mean for the tokens scoring above stream h's mean. buf
// holds m indices of scratch.
func headBits(vec []uint64, per []float32, H, m int, mean bool, buf []int32) {
	words := (H + 63) / 64
	clear(vec[:m*words])
	for h := 0; h < H; h++ {
		row := per[h*m : (h+1)*m]
		w, bit := h/64, uint64(1)<<(h%64)
		if mean {
			var sum float64
			for _, v := range row {
				sum += float64(v)
			}
			mu := float32(sum / float64(m))
			for i, v := range row {
				if v > mu {
					vec[i*words+w] |= bit
				}
			}
			continue
		}
		idx := buf[:m]
		for i := range idx {
			idx[i] = int32(i)
		}
		selectTop(idx, row, m/2)
		for _, i := range idx[:m/2] {
			vec[int(i)*words+w] |= bit
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
