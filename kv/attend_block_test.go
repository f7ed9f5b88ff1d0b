package kv_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// TestAttendBlockMatchesAttend runs the same prompt, in batches, through
// two caches of each recipe: one attends token by token (Attend), the
// other in query blocks (AttendBlock, as the model runs a prompt batch);
// then both decode a few steps token by token. Every output of the two
// must agree within float rounding, relative to the largest value: the
// block path groups query rows differently in the dot kernels and folds
// the softmax scale into the queries. Recipes cover every codec (per-token
// pages, quantized blocks, KIVI's per-channel key pages and its F16 tail),
// a Rolling evictor acting after every prompt batch (StreamingLLM), an
// evictor collecting the prompt's last queries (SnapKV: those blocks go
// token by token), one collecting every step (H2O), a selector choosing
// pages at decode (Quest) and one reading the prompt (ActQKV: every block
// goes token by token, and its decode steps then depend on what it read).
func TestAttendBlockMatchesAttend(t *testing.T) {
	recipes := []string{
		"f32", "f16", "q8", "q8(mode=asym)", "q4", "q4(mode=asym)",
		"kivi(bits=4)", "kivi(bits=2,residual=16)", "kivi(bits=4,group=64,residual=40)",
		"streaming(budget=96)+f16", "streaming(budget=64)+kivi(bits=4,residual=32)",
		"snapkv(budget=0.5)+q8", "h2o(budget=128)+f16",
		"quest(budget=128,dense=1)+f16", "quest(budget=128,dense=0)+kivi(bits=4)",
		"actqkv(budget=128,local=64,sinks=32,window=64)+f16",
	}
	// These go token by token in every block (a prompt reader, statistics
	// of every step): the outputs are the same computation.
	exact := map[string]bool{"h2o(budget=128)+f16": true, "actqkv(budget=128,local=64,sinks=32,window=64)+f16": true}
	const (
		layers, kvHeads, d, g = 3, 2, 64, 7
		prompt, batch, steps  = 300, 64, 5
	)
	// g = 7 (qwen2.5-0.5b) leaves a remainder of the four-head dot
	// kernels, and the scale is not a power of two.
	shape := kv.Shape{Layers: layers, KVHeads: kvHeads, HeadDim: d, Scale: 0.1}
	for _, name := range recipes {
		t.Run(name, func(t *testing.T) {
			r, err := recipe.Parse(name)
			if err != nil {
				t.Fatal(err)
			}
			var caches [2]*kv.Cache
			for i := range caches {
				cfg, err := r.Config()
				if err != nil {
					t.Fatal(err)
				}
				if caches[i], err = kv.New(shape, cfg, prompt+steps); err != nil {
					t.Fatal(err)
				}
				caches[i].BeginPrefill(prompt)
			}
			rng := rand.New(rand.NewPCG(7, 7))
			sc := [2]*kv.Scratch{kv.NewScratch(g), kv.NewScratch(g)}
			qDim, kvDim := kvHeads*g*d, kvHeads*d
			worst, scaleOf := 0.0, 0.0
			run := func(start, n int) {
				pos := make([]int32, n)
				for i := range pos {
					pos[i] = int32(start + i)
				}
				k, v, q := randn(rng, n*kvDim, 1), randn(rng, n*kvDim, 1), randn(rng, n*qDim, 0.4)
				var out [2][]float32
				for i, c := range caches {
					if err := c.Begin(pos); err != nil {
						t.Fatal(err)
					}
					out[i] = make([]float32, layers*n*qDim)
				}
				for l := 0; l < layers; l++ {
					for i, c := range caches {
						c.Store(l, k, v)
						o := out[i][l*n*qDim : (l+1)*n*qDim]
						for h := 0; h < kvHeads; h++ {
							if i == 0 {
								for t := range pos {
									off := t*qDim + h*g*d
									c.Attend(l, h, q[off:off+g*d], g, pos[t], o[off:off+g*d], sc[i])
								}
								continue
							}
							// Blocks of 16 tokens, as the model cuts a batch.
							for b := 0; b < n; b += 16 {
								m := min(16, n-b)
								off := b*qDim + h*g*d
								end := off + (m-1)*qDim + g*d
								c.AttendBlock(l, h, q[off:end], qDim, g, pos[b:b+m], o[off:end], qDim, sc[i])
							}
						}
					}
				}
				for _, c := range caches {
					c.End()
				}
				for i := range out[0] {
					worst = max(worst, math.Abs(float64(out[0][i]-out[1][i])))
					scaleOf = max(scaleOf, math.Abs(float64(out[0][i])))
				}
			}
			for start := 0; start < prompt; start += batch {
				run(start, min(batch, prompt-start))
			}
			for s := 0; s < steps; s++ {
				run(prompt+s, 1)
			}
			if a, b := caches[0].Len(), caches[1].Len(); a != b {
				t.Fatalf("caches hold %d and %d tokens after the same steps", a, b)
			}
			t.Logf("largest difference %.3g of the largest output %.3g", worst/scaleOf, scaleOf)
			if exact[name] && worst != 0 {
				t.Errorf("a recipe that attends token by token differs by %.3g", worst)
			}
			if rel := worst / scaleOf; rel > 2e-5 || math.IsNaN(rel) {
				t.Errorf("block and per-token attention differ by %.3g of the largest output %.3g", rel, scaleOf)
			}
		})
	}
}

func randn(rng *rand.Rand, n int, s float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * s)
	}
	return x
}

// TestAttendBlockSplitInvariant checks that a token's attention does not
// depend on how the prompt's tokens were cut into blocks: the same 70
// queries attend as one block of 16s and as blocks of 1, 3 and 5 tokens,
// and every output must be bit for bit the same (prefix reuse computes a
// prompt's tail in other batches than a fresh run does).
func TestAttendBlockSplitInvariant(t *testing.T) {
	for _, g := range []int{2, 3, 7} {
		const d, n, depth = 64, 70, 100
		shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d, Scale: 0.1}
		r, err := recipe.Parse("f16")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := r.Config()
		if err != nil {
			t.Fatal(err)
		}
		c, err := kv.New(shape, cfg, depth+n)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(9, uint64(g)))
		pos := make([]int32, depth+n)
		for i := range pos {
			pos[i] = int32(i)
		}
		if err := c.Begin(pos); err != nil {
			t.Fatal(err)
		}
		c.Store(0, randn(rng, (depth+n)*d, 1), randn(rng, (depth+n)*d, 1))
		q := randn(rng, n*g*d, 0.5)
		sc := kv.NewScratch(g)
		var want []float32
		for _, size := range []int{16, 1, 3, 5} {
			out := make([]float32, n*g*d)
			for b := 0; b < n; b += size {
				m := min(size, n-b)
				c.AttendBlock(0, 0, q[b*g*d:(b+m)*g*d], g*d, g, pos[depth+b:depth+b+m], out[b*g*d:(b+m)*g*d], g*d, sc)
			}
			if want == nil {
				want = out
				continue
			}
			for i := range out {
				if out[i] != want[i] {
					t.Fatalf("g=%d: blocks of %d give output %d = %g, blocks of 16 %g", g, size, i, out[i], want[i])
				}
			}
		}
		c.End()
	}
}
