package offload

import (
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// BenchmarkDecodeCold measures a decode step's cache work (store the
// token's keys and values, attend every KV head of every layer, end) at
// depth 8176 on 4 layers × 3 KV heads of width 64 (smollm2-135m's heads)
// with quest(budget=512,dense=0), the cache in memory against the same
// cache with its pages in a cold tier whose heap budget holds a step's
// working set (hot-4MiB) or not (hot-1MiB: most pages read back every
// step). Run with -count and compare the paired times: the ratio is the
// cold tier's decode cost on the attention side (the weights' matrix
// products, the rest of a real step, are unchanged).
func BenchmarkDecodeCold(b *testing.B) {
	shape := kv.Shape{Layers: 4, KVHeads: 3, HeadDim: 64}
	const depth, g = 8192 - 16, 3 // the last page partial: a step appends to it
	for _, bc := range []struct {
		name string
		hot  int64
	}{{"memory", 0}, {"hot-4MiB", 4 << 20}, {"hot-1MiB", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			rc, err := recipe.Parse("quest(budget=512,dense=0)")
			if err != nil {
				b.Fatal(err)
			}
			cfg, err := rc.Config()
			if err != nil {
				b.Fatal(err)
			}
			if bc.hot > 0 {
				st, err := Open(Options{Dir: b.TempDir(), HotBytes: bc.hot})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				cfg.K, _ = st.Codec(cfg.K)
				cfg.V, _ = st.Codec(cfg.V)
			}
			c, err := kv.New(shape, cfg, depth+1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			vec := func(n int) []float32 {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				return x
			}
			const chunk = 512
			kb, vb := vec(chunk*3*64), vec(chunk*3*64)
			c.BeginPrefill(depth)
			for i := 0; i < depth; i += chunk {
				pos := make([]int32, min(chunk, depth-i))
				for j := range pos {
					pos[j] = int32(i + j)
				}
				if err := c.Begin(pos); err != nil {
					b.Fatal(err)
				}
				for l := 0; l < shape.Layers; l++ {
					c.Store(l, kb[:len(pos)*3*64], vb[:len(pos)*3*64])
				}
				c.End()
			}
			qs := make([][]float32, 16)
			for i := range qs {
				qs[i] = vec(g * 64)
			}
			k1, v1 := vec(3*64), vec(3*64)
			sc := kv.NewScratch(g)
			out := make([]float32, g*64)
			pos := []int32{depth}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Begin(pos); err != nil {
					b.Fatal(err)
				}
				for l := 0; l < shape.Layers; l++ {
					c.Store(l, k1, v1)
					for h := 0; h < shape.KVHeads; h++ {
						c.Attend(l, h, qs[(i+l+h)%len(qs)], g, depth, out, sc)
					}
				}
				c.End()
				c.Truncate(depth)
			}
		})
	}
}
