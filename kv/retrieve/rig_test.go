package retrieve

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// rig drives a one-layer-or-more cache as the model does: a prompt in one
// batch, then decode steps of one token, with random keys, values and
// queries unless a test plants its own.
type rig struct {
	t     testing.TB
	c     *kv.Cache
	shape kv.Shape
	g     int
	rng   *rand.Rand
	next  int32
	sc    *kv.Scratch
	out   []float32
}

func newRig(t testing.TB, shape kv.Shape, g int, cfg kv.Config) *rig {
	t.Helper()
	c, err := kv.New(shape, cfg, 1<<15)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, c: c, shape: shape, g: g, rng: rand.New(rand.NewPCG(7, 11)), sc: kv.NewScratch(g), out: make([]float32, g*shape.HeadDim)}
}

// normal fills x with standard normal values from rng and returns it.
func normal(rng *rand.Rand, x []float32) []float32 {
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func (r *rig) randv(n int, amp float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.rng.NormFloat64() * amp)
	}
	return x
}

// prompt stores n tokens in one batch and attends every query (random, or
// from query when set) of every layer and head; key, when set, gives the
// key of (layer, head, position).
func (r *rig) prompt(n int, key func(l, h int, p int32) []float32, query func(l, h int, p int32) []float32) {
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = r.next + int32(i)
	}
	r.c.BeginPrefill(n)
	r.batch(pos, key, query)
}

func (r *rig) batch(pos []int32, key func(l, h int, p int32) []float32, query func(l, h int, p int32) []float32) {
	if err := r.c.Begin(pos); err != nil {
		r.t.Fatal(err)
	}
	d, H := r.shape.HeadDim, r.shape.KVHeads
	for l := 0; l < r.shape.Layers; l++ {
		var k []float32
		for _, p := range pos {
			for h := 0; h < H; h++ {
				if key != nil {
					k = append(k, key(l, h, p)...)
				} else {
					k = append(k, r.randv(d, 1)...)
				}
			}
		}
		r.c.Store(l, k, r.randv(len(pos)*H*d, 1))
		for _, p := range pos {
			for h := 0; h < H; h++ {
				var q []float32
				if query != nil {
					q = query(l, h, p)
				} else {
					q = r.randv(r.g*d, 1)
				}
				r.c.Attend(l, h, q, r.g, p, r.out, r.sc)
			}
		}
	}
	r.c.End()
	r.next = pos[len(pos)-1] + 1
}

// naiveMasked is attention of the g heads q over the tokens of s whose
// mask entry is set, decoding every key and value.
func naiveMasked(s *kv.Stream, q []float32, g int, mask []bool) []float32 {
	d := s.Dim()
	out := make([]float32, g*s.ValueDim())
	k, v := make([]float32, d), make([]float32, s.ValueDim())
	scale := 1 / math.Sqrt(float64(d))
	for j := 0; j < g; j++ {
		w := make([]float64, s.Len())
		m := math.Inf(-1)
		for i := range s.Len() {
			if !mask[i] {
				continue
			}
			s.Vector(i, k, v)
			var dot float64
			for c := range k {
				dot += float64(q[j*d+c]) * float64(k[c])
			}
			w[i] = dot * scale
			m = max(m, w[i])
		}
		var sum float64
		for i := range w {
			if mask[i] {
				w[i] = math.Exp(w[i] - m)
				sum += w[i]
			}
		}
		for i := range s.Len() {
			if !mask[i] {
				continue
			}
			s.Vector(i, k, v)
			for c := range v {
				out[j*len(v)+c] += float32(w[i] / sum * float64(v[c]))
			}
		}
	}
	return out
}

// tokenMask expands a page mask to tokens (the tail always read).
func tokenMask(s *kv.Stream, read []bool) []bool {
	mask := make([]bool, s.Len())
	i := 0
	for p := range s.Pages() {
		for range s.PageLen(p) {
			mask[i] = read == nil || read[p]
			i++
		}
	}
	for ; i < len(mask); i++ {
		mask[i] = true
	}
	return mask
}

// recorder wraps a selector and keeps its last page mask per stream.
type recorder struct {
	kv.Selector
	last map[[2]int][]bool
}

func (r *recorder) Select(v *kv.SelectView, q []float32, g int, qpos int32, read []bool) {
	r.Selector.Select(v, q, g, qpos, read)
	r.last[[2]int{v.Layer, v.KVHead}] = append([]bool(nil), read...)
}

// pagesTokens counts the tokens of the sealed pages one page at a time and
// checks kv.Stream.PagedLen, which the selectors use instead, against it.
func pagesTokens(t *testing.T, s *kv.Stream) int {
	t.Helper()
	n := 0
	for i := range s.Pages() {
		n += s.PageLen(i)
	}
	if got := s.PagedLen(); got != n {
		t.Fatalf("PagedLen = %d, the pages hold %d tokens", got, n)
	}
	return n
}
