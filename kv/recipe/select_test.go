package recipe

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/retrieve"
)

// masks wraps a recipe's selector (keeping what else it is: a prompt
// reader, sized) and records its last page mask per stream.
type masks struct {
	kv.Selector
	mu   sync.Mutex
	last map[[2]int][]bool
}

func (m *masks) Select(v *kv.SelectView, q []float32, g int, qpos int32, read []bool) {
	m.Selector.Select(v, q, g, qpos, read)
	m.mu.Lock()
	m.last[[2]int{v.Layer, v.KVHead}] = append([]bool(nil), read...)
	m.mu.Unlock()
}

type readerMasks struct{ *masks }

func (r readerMasks) LocalWindow() int { return r.Selector.(kv.PromptReader).LocalWindow() }
func (r readerMasks) ReadPrompt(v *kv.SelectView, q []float32, g int, qpos int32) {
	r.Selector.(kv.PromptReader).ReadPrompt(v, q, g, qpos)
}
func (r readerMasks) EndPrompt(last bool) { r.Selector.(kv.PromptReader).EndPrompt(last) }

// TestSelectorsStack: a selector stacks with a codec (its pages stay
// compressed and it reads at most its budget, the codec's unsealed tail
// included) and after an evictor (it chooses among the tokens the evictor
// kept, a fractional budget still referring to the prompt); a decode
// step's attention equals naive attention over the tokens read, decoded
// from the codec.
func TestSelectorsStack(t *testing.T) {
	const d, g, T, steps = 16, 2, 1000, 12
	shape := kv.Shape{Layers: 2, KVHeads: 2, HeadDim: d}
	for _, c := range []struct {
		recipe string
		budget int // tokens a step may read
		held   int // most tokens a stream holds after the prompt
	}{
		{"quest(budget=256,dense=0)+kivi(bits=4)", 256, T},
		{"snapkv(budget=0.5)+quest(budget=0.25,dense=0)", 250, T / 2},
		{"actqkv(budget=320)+kivi(bits=4)", 0, T},
		{"h2o(budget=0.5)+actqkv(budget=0.25)+q8", 0, T / 2},
	} {
		r, err := Parse(c.recipe)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := r.Config()
		if err != nil {
			t.Fatal(err)
		}
		rec := &masks{Selector: cfg.Selector, last: map[[2]int][]bool{}}
		cfg.Selector = rec
		if _, ok := rec.Selector.(kv.PromptReader); ok {
			cfg.Selector = readerMasks{rec}
		}
		cache, err := kv.New(shape, cfg, T+steps)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		randv := func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			return x
		}
		sc := kv.NewScratch(g)
		out := make([]float32, g*d)
		run := func(pos []int32, check bool) {
			if err := cache.Begin(pos); err != nil {
				t.Fatal(err)
			}
			for l := 0; l < shape.Layers; l++ {
				cache.Store(l, randv(len(pos)*shape.KVHeads*d), randv(len(pos)*shape.KVHeads*d))
				for _, p := range pos {
					for h := 0; h < shape.KVHeads; h++ {
						q := randv(g * d)
						cache.Attend(l, h, q, g, p, out, sc)
						if check {
							s := cache.Stream(l, h)
							read := rec.last[[2]int{l, h}]
							if want := naiveOver(s, q, g, read); maxDiff(out, want) > 2e-3 {
								t.Fatalf("%s: attention differs from naive attention over the tokens read by %g", c.recipe, maxDiff(out, want))
							}
						}
					}
				}
			}
			cache.End()
		}
		cache.BeginPrefill(T)
		for start := 0; start < T; start += 500 {
			pos := make([]int32, 500)
			for i := range pos {
				pos[i] = int32(start + i)
			}
			run(pos, false)
		}
		for step := 0; step < steps; step++ {
			run([]int32{int32(T + step)}, true)
		}
		st, ok := retrieve.Reads(rec.Selector)
		if !ok || st.Calls == 0 {
			t.Fatalf("%s: no read statistics", c.recipe)
		}
		for l := 0; l < shape.Layers; l++ {
			for h := 0; h < shape.KVHeads; h++ {
				s := cache.Stream(l, h)
				if s.Len() > c.held+steps {
					t.Fatalf("%s: a stream holds %d tokens, the evictor keeps %d", c.recipe, s.Len(), c.held)
				}
				if loc, lg := s.LocalAttention(); loc != nil && len(loc) != s.Len()*lg {
					t.Fatalf("%s: %d local attention values for %d tokens of %d heads", c.recipe, len(loc), s.Len(), lg)
				}
			}
		}
		perStep := float64(st.Read) / float64(st.Calls)
		if c.budget > 0 && perStep > float64(c.budget) {
			t.Fatalf("%s: %.0f tokens read per stream and step, budget %d", c.recipe, perStep, c.budget)
		}
		if st.Read >= st.Held {
			t.Fatalf("%s: read %d of %d held: nothing skipped", c.recipe, st.Read, st.Held)
		}
	}
}

// naiveOver is attention of the g heads q over the tokens of the pages
// marked in read and the tail, decoding keys and values from the codec.
func naiveOver(s *kv.Stream, q []float32, g int, read []bool) []float32 {
	d := s.Dim()
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
	out := make([]float32, g*s.ValueDim())
	k, v := make([]float32, d), make([]float32, s.ValueDim())
	scale := 1 / math.Sqrt(float64(d))
	for j := 0; j < g; j++ {
		w := make([]float64, s.Len())
		m := math.Inf(-1)
		for i := range w {
			if !mask[i] {
				continue
			}
			s.Vector(i, k, v)
			for c := range k {
				w[i] += float64(q[j*d+c]) * float64(k[c])
			}
			w[i] *= scale
			m = max(m, w[i])
		}
		var z float64
		for i := range w {
			if mask[i] {
				w[i] = math.Exp(w[i] - m)
				z += w[i]
			}
		}
		for i := range w {
			if !mask[i] {
				continue
			}
			s.Vector(i, k, v)
			for c := range v {
				out[j*len(v)+c] += float32(w[i] / z * float64(v[c]))
			}
		}
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}
