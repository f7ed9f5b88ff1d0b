package quant

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// BenchmarkAttendPage measures what attention costs per page and decode
// step: Dot of g query heads against a page of 32 keys, then AddWeighted
// of 32 values, at d=128, for g=1 and g=7 (qwen2.5's query heads per KV
// head). KIVI's pages are one group of G=32 tokens. f32 and f16 are the
// baselines of the same run; ns/token is per (token, query head).
func BenchmarkAttendPage(b *testing.B) {
	const d, n = 128, 32
	k2, v2 := mustKIVI(b, 2, 32, 128)
	k4, v4 := mustKIVI(b, 4, 32, 128)
	codecs := []struct {
		name string
		k, v kv.Codec
	}{
		{"f32", F32{}, F32{}},
		{"f16", F16{}, F16{}},
		{"q8", mustBlock(b, 8, 32, false), mustBlock(b, 8, 32, false)},
		{"q8-asym", mustBlock(b, 8, 32, true), mustBlock(b, 8, 32, true)},
		{"q4", mustBlock(b, 4, 32, false), mustBlock(b, 4, 32, false)},
		{"q4-asym", mustBlock(b, 4, 32, true), mustBlock(b, 4, 32, true)},
		{"kivi-2", k2, v2},
		{"kivi-4", k4, v4},
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, g := range []int{1, 7} {
		for _, c := range codecs {
			kp, vp := c.k.NewPage(d, n), c.v.NewPage(d, n)
			kp.Append(keyData(rng, n, d), n)
			vp.Append(valueData(rng, n, d), n)
			q := keyData(rng, g, d)
			w := make([]float32, g*n)
			out := make([]float32, g*d)
			b.Run(fmt.Sprintf("g=%d/%s", g, c.name), func(b *testing.B) {
				b.ReportAllocs()
				var sc kv.PageScratch
				for b.Loop() {
					kp.Dot(q, g, w, &sc)
					for i := range w {
						w[i] = 1.0 / n
					}
					vp.AddWeighted(w, g, out, &sc)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*g), "ns/token")
			})
		}
	}
}

// BenchmarkAttend is one decode step's attention of g=7 query heads over
// one (layer, KV head) stream of 4096 tokens at d=128, through kv.Cache:
// pages, online softmax and (KIVI) the F32 residual, as the model runs it.
func BenchmarkAttend(b *testing.B) {
	const d, T, g = 128, 4096, 7
	k2, v2 := mustKIVI(b, 2, 32, 128)
	k4, v4 := mustKIVI(b, 4, 32, 128)
	codecs := []struct {
		name string
		k, v kv.Codec
	}{
		{"f32", F32{}, F32{}},
		{"f16", F16{}, F16{}},
		{"q8", mustBlock(b, 8, 32, false), mustBlock(b, 8, 32, false)},
		{"q4", mustBlock(b, 4, 32, false), mustBlock(b, 4, 32, false)},
		{"kivi-2", k2, v2},
		{"kivi-4", k4, v4},
	}
	rng := rand.New(rand.NewPCG(2, 2))
	k, v := keyData(rng, T, d), valueData(rng, T, d)
	q := keyData(rng, g, d)
	for i := range q {
		q[i] *= 0.05
	}
	for _, c := range codecs {
		cache, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}, kv.Config{K: c.k, V: c.v}, T)
		if err != nil {
			b.Fatal(err)
		}
		fillCache(b, cache, k, v, T)
		sc := kv.NewScratch(g)
		out := make([]float32, g*d)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cache.Attend(0, 0, q, g, T-1, out, sc)
			}
			b.ReportMetric(float64(cache.Bytes())/T, "bytes/token")
		})
	}
}
