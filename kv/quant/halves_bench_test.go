package quant

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// BenchmarkAttendHalves splits BenchmarkAttendPage's work into its two
// halves, the scores (Dot over keys) and the weighted sum (AddWeighted over
// values), for f16 (the baseline), KIVI-4 and q8 at the head sizes of the
// shipped shapes (64: qwen2.5-0.5b, smollm2; 128: llama-3.2-1b, qwen3) and
// qwen2.5's 7 query heads per KV head. ns/th is per (token, head).
func BenchmarkAttendHalves(b *testing.B) {
	const n = 32
	k4, v4 := mustKIVI(b, 4, 32, 128)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, d := range []int{64, 128} {
		for _, c := range []struct {
			name string
			k, v kv.Codec
		}{{"f16", F16{}, F16{}}, {"kivi-4", k4, v4}, {"q8", mustBlock(b, 8, 32, false), mustBlock(b, 8, 32, false)}} {
			g := 7
			kp, vp := c.k.NewPage(d, n), c.v.NewPage(d, n)
			kp.Append(keyData(rng, n, d), n)
			vp.Append(valueData(rng, n, d), n)
			q := keyData(rng, g, d)
			w := make([]float32, g*n)
			for i := range w {
				w[i] = 1.0 / n
			}
			out := make([]float32, g*d)
			b.Run(fmt.Sprintf("d=%d/%s/dot", d, c.name), func(b *testing.B) {
				var sc kv.PageScratch
				for b.Loop() {
					kp.Dot(q, g, w[:g*n], &sc)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*g), "ns/th")
			})
			for i := range w {
				w[i] = 1.0 / n
			}
			b.Run(fmt.Sprintf("d=%d/%s/wsum", d, c.name), func(b *testing.B) {
				var sc kv.PageScratch
				for b.Loop() {
					vp.AddWeighted(w, g, out, &sc)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*g), "ns/th")
			})
		}
	}
}
