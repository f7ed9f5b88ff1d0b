package kv_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// TestKeyAndValueWidthsDiffer: a cache whose keys and values have other
// widths, per layer (a TransMLA latent cache: key = latent + rope key,
// value = latent, one KV head for every query head), attends exactly as
// naive attention over its decoded keys and values, and counts its bytes
// and its f16 baseline by each layer's widths.
func TestKeyAndValueWidthsDiffer(t *testing.T) {
	shape := kv.Shape{Layers: 2, KVHeads: 1, LayerDims: []kv.Dims{{Key: 24, Value: 16}, {Key: 40, Value: 32}}, Scale: 0.125}
	kc, vc, err := kvquant.NewKIVI(4, 16, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range []struct {
		name string
		k, v kv.Codec
	}{{"f16", kvquant.F16{}, kvquant.F16{}}, {"kivi-4", kc, vc}} {
		c, err := kv.New(shape, kv.Config{K: cd.k, V: cd.v}, 256)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		randv := func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			return x
		}
		const T, g = 70, 4
		sc := kv.NewScratch(g)
		for p := 0; p < T; p++ {
			if err := c.Begin([]int32{int32(p)}); err != nil {
				t.Fatal(err)
			}
			for l := 0; l < 2; l++ {
				d := shape.Dims(l)
				c.Store(l, randv(d.Key), randv(d.Value))
				q := randv(g * d.Key)
				out := make([]float32, g*d.Value)
				c.Attend(l, 0, q, g, int32(p), out, sc)
				want := naiveAttend(c.Stream(l, 0), q, g, 0.125)
				for i := range out {
					if math.Abs(float64(out[i]-want[i])) > 1e-4 {
						t.Fatalf("%s layer %d step %d: attention %g, naive %g", cd.name, l, p, out[i], want[i])
					}
				}
			}
			c.End()
		}
		if cd.name == "f16" {
			if got, want := c.Bytes(), kv.FullF16Bytes(shape, T); got != want {
				t.Fatalf("f16 cache of mixed widths holds %d bytes, FullF16Bytes says %d", got, want)
			}
		}
	}
	if _, err := kv.New(kv.Shape{Layers: 2, KVHeads: 1, LayerDims: []kv.Dims{{Key: 8, Value: 8}}}, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, 8); err == nil {
		t.Fatal("a shape with widths for 1 of 2 layers was accepted")
	}
}

// naiveAttend is softmax attention of g heads q over every token of s,
// with scale, from decoded keys and values.
func naiveAttend(s *kv.Stream, q []float32, g int, scale float64) []float32 {
	dk, dv := s.Dim(), s.ValueDim()
	out := make([]float32, g*dv)
	k, v := make([]float32, dk), make([]float32, dv)
	for j := 0; j < g; j++ {
		w := make([]float64, s.Len())
		m := math.Inf(-1)
		for i := range w {
			s.Vector(i, k, v)
			var dot float64
			for c := range k {
				dot += float64(q[j*dk+c]) * float64(k[c])
			}
			w[i] = dot * scale
			m = max(m, w[i])
		}
		var sum float64
		for i := range w {
			w[i] = math.Exp(w[i] - m)
			sum += w[i]
		}
		for i := range w {
			s.Vector(i, k, v)
			for c := range v {
				out[j*dv+c] += float32(w[i] / sum * float64(v[c]))
			}
		}
	}
	return out
}
