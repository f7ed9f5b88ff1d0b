package retrieve

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// TestWindowReadsOnlyRecentPages checks the selector seam: with the window
// selector, a decode step's attention equals attention computed naively
// over the tokens of the last Pages pages and the unsealed tail only, the
// skipped pages stay in the cache (nothing is deleted), and a prompt batch
// still reads everything.
func TestWindowReadsOnlyRecentPages(t *testing.T) {
	const d, g, T, pages = 16, 2, 200, 2
	kk, kv4, err := kvquant.NewKIVI(4, 32, 40)
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range []struct {
		name string
		k, v kv.Codec
	}{{"f32", kvquant.F32{}, kvquant.F32{}}, {"kivi-4", kk, kv4}} {
		shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
		c, err := kv.New(shape, kv.Config{K: cd.k, V: cd.v, Selector: &Window{Pages: pages}}, 1024)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		randv := func(n int) []float32 { return normal(rng, make([]float32, n)) }
		// The prompt in one batch, then decode steps.
		storePrompt(t, c, randv(T*d), randv(T*d))
		sc := kv.NewScratch(g)
		out := make([]float32, g*d)
		for step := 0; step < 40; step++ {
			p := int32(T + step)
			if err := c.Begin([]int32{p}); err != nil {
				t.Fatal(err)
			}
			c.Store(0, randv(d), randv(d))
			q := randv(g * d)
			c.Attend(0, 0, q, g, p, out, sc)
			c.End()
			s := c.Stream(0, 0)
			if s.Len() != int(p)+1 {
				t.Fatalf("%s: the selector deleted tokens: %d held of %d", cd.name, s.Len(), p+1)
			}
			// The tokens read: those of the last `pages` pages and the tail.
			first := 0
			for i := 0; i < s.Pages()-pages; i++ {
				first += s.PageLen(i)
			}
			want := naive(s, q, g, first)
			for i := range out {
				if math.Abs(float64(out[i]-want[i])) > 1e-4 {
					t.Fatalf("%s step %d: attention %g, naive over the recent pages %g", cd.name, step, out[i], want[i])
				}
			}
			if first == 0 {
				t.Fatalf("%s: the test needs more pages than the window", cd.name)
			}
		}
	}
}

// storePrompt stores a prompt of one layer (keys k, values v) in one
// announced batch.
func storePrompt(t *testing.T, c *kv.Cache, k, v []float32) {
	t.Helper()
	pos := make([]int32, len(k)/c.Shape().HeadDim)
	for i := range pos {
		pos[i] = int32(i)
	}
	c.BeginPrefill(len(pos))
	if err := c.Begin(pos); err != nil {
		t.Fatal(err)
	}
	c.Store(0, k, v)
	c.End()
}

// naive computes attention of the g heads q over the tokens from index
// first on, decoding every key and value.
func naive(s *kv.Stream, q []float32, g, first int) []float32 {
	idx := make([]int, 0, s.Len()-first)
	for i := first; i < s.Len(); i++ {
		idx = append(idx, i)
	}
	return naiveAt(s, q, g, idx)
}

// everyThird reads pages 0, 3, 6, ... (and the tail, always read).
type everyThird struct{}

func (everyThird) Name() string    { return "every-third" }
func (everyThird) Summaries() bool { return false }
func (everyThird) Select(_ *kv.SelectView, _ []float32, _ int, _ int32, read []bool) {
	for i := range read {
		read[i] = i%3 == 0
	}
}

// TestScatteredPagesAttendExactly: attention over pages chosen apart from
// each other equals attention computed naively over their tokens and the
// tail, both when every page but the last is full and after deletions left
// pages part-full.
func TestScatteredPagesAttendExactly(t *testing.T) {
	const d, g, T = 16, 3, 300
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
	rng := rand.New(rand.NewPCG(5, 6))
	randv := func(n int) []float32 { return normal(rng, make([]float32, n)) }
	for _, deleted := range []bool{false, true} {
		c, err := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: everyThird{}}, 1024)
		if err != nil {
			t.Fatal(err)
		}
		storePrompt(t, c, randv(T*d), randv(T*d))
		s := c.Stream(0, 0)
		if deleted {
			keep := make([]bool, s.Len())
			for i := range keep {
				keep[i] = i%7 != 3
			}
			s.Keep(keep)
		}
		p := int32(T)
		if err := c.Begin([]int32{p}); err != nil {
			t.Fatal(err)
		}
		c.Store(0, randv(d), randv(d))
		q := randv(g * d)
		out := make([]float32, g*d)
		c.Attend(0, 0, q, g, p, out, kv.NewScratch(g))
		c.End()
		var idx []int
		base := 0
		for i := 0; i < s.Pages(); i++ {
			if i%3 == 0 {
				for j := 0; j < s.PageLen(i); j++ {
					idx = append(idx, base+j)
				}
			}
			base += s.PageLen(i)
		}
		for i := base; i < s.Len(); i++ {
			idx = append(idx, i)
		}
		if full := s.PagedLen() == (s.Pages()-1)*kv.PageTokens+s.PageLen(s.Pages()-1); full == deleted {
			t.Fatalf("deleted=%v: pages full is %v; the test misses the case it means", deleted, full)
		}
		want := naiveAt(s, q, g, idx)
		for i := range out {
			if math.Abs(float64(out[i]-want[i])) > 1e-4 {
				t.Fatalf("deleted=%v: attention %g, naive over the chosen pages %g", deleted, out[i], want[i])
			}
		}
	}
}

// naiveAt computes attention of the g heads q over the tokens at the
// stream indexes idx.
func naiveAt(s *kv.Stream, q []float32, g int, idx []int) []float32 {
	d := s.Dim()
	out := make([]float32, g*s.ValueDim())
	k, v := make([]float32, d), make([]float32, s.ValueDim())
	scale := 1 / math.Sqrt(float64(d))
	for j := 0; j < g; j++ {
		w := make([]float64, len(idx))
		m := math.Inf(-1)
		for n, i := range idx {
			s.Vector(i, k, v)
			var dot float64
			for c := range k {
				dot += float64(q[j*d+c]) * float64(k[c])
			}
			w[n] = dot * scale
			m = max(m, w[n])
		}
		var sum float64
		for n := range w {
			w[n] = math.Exp(w[n] - m)
			sum += w[n]
		}
		for n, i := range idx {
			s.Vector(i, k, v)
			for c := range v {
				out[j*len(v)+c] += float32(w[n] / sum * float64(v[c]))
			}
		}
	}
	return out
}
