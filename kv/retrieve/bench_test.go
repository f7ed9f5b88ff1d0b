package retrieve

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// BenchmarkSelect separates what a decode step of one stream costs: the
// selector's choice alone (scoring summaries or representatives), and
// attention with the full cache and with the selector, at qwen2.5-0.5b's
// head shape (d 64, 7 query heads per KV head), f16 pages and a read budget
// of 2048 tokens. The prompt is stored without attending it (the setup of
// 32k tokens would take minutes), so ActQKV's pages have no local
// attention and are represented by their mean keys: the scoring cost is
// the same.
func BenchmarkSelect(b *testing.B) {
	const d, g = 64, 7
	for _, T := range []int{8192, 32768} {
		shape := kv.Shape{Layers: 4, KVHeads: 1, HeadDim: d}
		quest, _ := NewQuest(kv.Budget{Tokens: 2048}, 32, 32, 32, 0)
		act, _ := NewActQKV(kv.Budget{Tokens: 2048}, 64, 512, 256, 4, true, 0)
		for _, c := range []struct {
			name string
			sel  kv.Selector
		}{{"full", nil}, {"quest", quest}, {"actqkv", act}} {
			cache, err := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: c.sel}, T+1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			randv := func(n int) []float32 { return normal(rng, make([]float32, n)) }
			pos := make([]int32, 512)
			for start := 0; start < T; start += 512 {
				for i := range pos {
					pos[i] = int32(start + i)
				}
				if err := cache.Begin(pos); err != nil {
					b.Fatal(err)
				}
				for l := 0; l < shape.Layers; l++ {
					cache.Store(l, randv(512*d), randv(512*d))
				}
				cache.End()
			}
			if err := cache.Begin([]int32{int32(T)}); err != nil {
				b.Fatal(err)
			}
			for l := 0; l < shape.Layers; l++ {
				cache.Store(l, randv(d), randv(d))
			}
			q := randv(g * d)
			out := make([]float32, g*d)
			sc := kv.NewScratch(g)
			// Warm up: every layer once, so that the shared budget and
			// the representatives are in place.
			for l := 0; l < shape.Layers; l++ {
				cache.Attend(l, 0, q, g, int32(T), out, sc)
			}
			s := cache.Stream(shape.Layers-1, 0)
			view := &kv.SelectView{Layer: shape.Layers - 1, Layers: shape.Layers, KVHeads: 1, Stream: s}
			read := make([]bool, s.Pages())
			if c.sel != nil {
				b.Run(fmt.Sprintf("ctx=%d/%s/select", T, c.name), func(b *testing.B) {
					for b.Loop() {
						for i := range read {
							read[i] = true
						}
						// One layer after another, as decode steps do.
						for l := 0; l < shape.Layers; l++ {
							view.Layer = l
							view.Stream = cache.Stream(l, 0)
							c.sel.Select(view, q, g, int32(T), read)
						}
					}
				})
			}
			b.Run(fmt.Sprintf("ctx=%d/%s/attend", T, c.name), func(b *testing.B) {
				for b.Loop() {
					for l := 0; l < shape.Layers; l++ {
						cache.Attend(l, 0, q, g, int32(T), out, sc)
					}
				}
			})
			cache.End()
		}
	}
}

// BenchmarkSelectModel is Quest's choice over every stream of a decode step
// at qwen2.5-0.5b's whole shape (24 layers × 2 KV heads, 7 query heads
// each) at depth 32736: 11 MiB of page summaries (22 MiB in F32), more than
// a core's cache holds, as in a real decode step (BenchmarkSelect's four
// streams fit in it). It measured the summaries' single inner product, their
// contiguous blocks (kv.Stream's newSum) and their half precision
// (docs/PERFORMANCE.md, docs/RETRIEVAL.md).
func BenchmarkSelectModel(b *testing.B) {
	const d, g, L, H, T = 64, 7, 24, 2, 32736
	shape := kv.Shape{Layers: L, KVHeads: H, HeadDim: d}
	quest, _ := NewQuest(kv.Budget{Tokens: 2048}, 32, 32, 32, 2)
	cache, err := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: quest}, T+1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]float32, 512*H*d)
	pos := make([]int32, 512)
	for start := 0; start < T; start += 512 {
		n := min(512, T-start)
		for i := range pos[:n] {
			pos[i] = int32(start + i)
		}
		if err := cache.Begin(pos[:n]); err != nil {
			b.Fatal(err)
		}
		for l := 0; l < L; l++ {
			cache.Store(l, normal(rng, buf[:n*H*d]), normal(rng, buf[:n*H*d]))
		}
		cache.End()
	}
	q := normal(rng, make([]float32, g*d))
	read := make([]bool, cache.Stream(0, 0).Pages())
	view := &kv.SelectView{Layers: L, KVHeads: H}
	for b.Loop() {
		for l := 0; l < L; l++ {
			for h := 0; h < H; h++ {
				view.Layer, view.KVHead, view.Stream = l, h, cache.Stream(l, h)
				quest.Select(view, q, g, T, read)
			}
		}
	}
}
