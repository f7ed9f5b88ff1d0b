package evict

import (
	"math"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// dim is the head size of the test caches: scale 1/4, so a key of
// amplitude 6 and a query of amplitude 4 on the same axis give a logit of
// 6 against about 0 for noise.
const dim = 16

// pattern says what the model would write: the key of each token and the
// query of each position, per (layer, KV head). The g query heads of a
// group share the query.
type pattern struct {
	key   func(l, h, p int) []float32
	query func(l, h, p int) []float32
}

// rig drives a real cache exactly as the model does.
type rig struct {
	t     testing.TB
	c     *kv.Cache
	shape kv.Shape
	g     int
	pat   pattern
	next  int
	sc    *kv.Scratch
	out   []float32
}

func newRig(t testing.TB, layers, heads, g int, ev kv.Evictor, pat pattern) *rig {
	t.Helper()
	shape := kv.Shape{Layers: layers, KVHeads: heads, HeadDim: dim}
	cfg := kv.Config{K: kvquant.F32{}, V: kvquant.F32{}}
	if ev != nil {
		cfg.Evictor = ev
	}
	c, err := kv.New(shape, cfg, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, c: c, shape: shape, g: g, pat: pat, sc: kv.NewScratch(g), out: make([]float32, g*dim)}
}

// batch runs one batch of n tokens from r.next: Begin, then per layer
// Store and Attend of every token in position order, then End.
func (r *rig) batch(n int) {
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(r.next + i)
	}
	if err := r.c.Begin(pos); err != nil {
		r.t.Fatal(err)
	}
	H := r.shape.KVHeads
	for l := 0; l < r.shape.Layers; l++ {
		k := make([]float32, 0, n*H*dim)
		v := make([]float32, 0, n*H*dim)
		for _, p := range pos {
			for h := 0; h < H; h++ {
				k = append(k, r.pat.key(l, h, int(p))...)
				v = append(v, noise(uint64(p)*7919+uint64(h)*31+uint64(l), 1)...)
			}
		}
		r.c.Store(l, k, v)
		for _, p := range pos {
			for h := 0; h < H; h++ {
				q := r.pat.query(l, h, int(p))
				qs := make([]float32, 0, r.g*dim)
				for j := 0; j < r.g; j++ {
					qs = append(qs, q...)
				}
				r.c.Attend(l, h, qs, r.g, p, r.out, r.sc)
			}
		}
	}
	r.c.End()
	r.next += n
}

// stage prefills n tokens of a prompt announced one token longer, so the
// cache keeps it staged (the evictor has not chosen yet) for a test to
// inspect; EndPrefill then ends the prompt early.
func (r *rig) stage(n int) {
	r.c.BeginPrefill(n + 1)
	r.batch(n)
}

// prefill prefills n tokens and lets the evictor select.
func (r *rig) prefill(n int) {
	r.c.BeginPrefill(n)
	r.batch(n)
}

// step decodes one token.
func (r *rig) step() { r.batch(1) }

func (r *rig) positions(l, h int) []int {
	var p []int
	for _, x := range r.c.Stream(l, h).Positions() {
		p = append(p, int(x))
	}
	return p
}

// probs is the naive attention (float64) of the query at qpos of (l, h)
// over tokens at positions pos, times the group size g: what the cache
// adds to Observed for that query.
func (r *rig) probs(l, h, qpos int, pos []int) []float64 {
	q := r.pat.query(l, h, qpos)
	logit := make([]float64, len(pos))
	m := math.Inf(-1)
	for i, p := range pos {
		k := r.pat.key(l, h, p)
		var d float64
		for c := range k {
			d += float64(q[c]) * float64(k[c])
		}
		logit[i] = d / math.Sqrt(dim)
		m = max(m, logit[i])
	}
	var sum float64
	for i := range logit {
		logit[i] = math.Exp(logit[i] - m)
		sum += logit[i]
	}
	for i := range logit {
		logit[i] *= float64(r.g) / sum
	}
	return logit
}

// splitmix64 for deterministic noise.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// noise is a deterministic vector of dim values in [-a/10, a/10].
func noise(seed uint64, a float32) []float32 {
	v := make([]float32, dim)
	for i := range v {
		u := float32(mix(seed*dim+uint64(i))>>40) / float32(1<<24)
		v[i] = (2*u - 1) * a / 10
	}
	return v
}

// spike is noise plus amplitude a on axis.
func spike(seed uint64, axis int, a float32) []float32 {
	v := noise(seed, 1)
	v[axis] += a
	return v
}

func seed(l, h, p int) uint64 { return uint64(l)<<40 | uint64(h)<<24 | uint64(p) }

func rangeInts(lo, hi int) []int {
	var x []int
	for i := lo; i < hi; i++ {
		x = append(x, i)
	}
	return x
}

func union(sets ...[]int) []int {
	var u []int
	for _, s := range sets {
		u = append(u, s...)
	}
	slices.Sort(u)
	return slices.Compact(u)
}

func contains(set []int, xs ...int) bool {
	for _, x := range xs {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return true
}

// checkAligned fails unless every stream of every layer holds the same
// positions as the layer's first stream, and returns those per layer.
func (r *rig) checkAligned() [][]int {
	r.t.Helper()
	var per [][]int
	for l := 0; l < r.shape.Layers; l++ {
		p0 := r.positions(l, 0)
		for h := 1; h < r.shape.KVHeads; h++ {
			if p := r.positions(l, h); !slices.Equal(p, p0) {
				r.t.Fatalf("layer %d: stream %d holds %v, stream 0 %v", l, h, p, p0)
			}
		}
		per = append(per, p0)
	}
	return per
}

// noisePattern has no structure: noise keys and queries.
var noisePattern = pattern{
	key:   func(l, h, p int) []float32 { return noise(seed(l, h, p), 1) },
	query: func(l, h, p int) []float32 { return noise(seed(l, h, p)+1<<50, 1) },
}
