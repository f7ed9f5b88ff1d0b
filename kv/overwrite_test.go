package kv_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// TestOverwriteBatch: a batch that overwrites scattered held positions
// (in pages and in the tail) and appends gives what overwriting them one
// batch at a time gives: the same codes for per-token codecs, and for
// KIVI (a touched group quantized again once, not once per token) an error
// against the exact keys and values no larger.
func TestOverwriteBatch(t *testing.T) {
	kiviK, kiviV, err := kvquant.NewKIVI(4, 16, 24)
	if err != nil {
		t.Fatal(err)
	}
	q8, err := kvquant.NewBlock(8, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	shape := kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 16, ValueDim: 8}
	const n = 200
	over := []int32{3, 5, 6, 17, 40, 41, 42, 43, 44, 45, 46, 47, 120, 190, 199}
	rng := rand.New(rand.NewPCG(7, 8))
	row := func(w int) []float32 {
		x := make([]float32, w)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	// exact[l][p] are the keys (then values) last written at position p.
	var keys, vals [2][n + 2][]float32
	var newK, newV [2][][]float32
	for l := range 2 {
		for p := range n + 2 {
			keys[l][p], vals[l][p] = row(shape.KVHeads*16), row(shape.KVHeads*8)
		}
		for range over {
			newK[l] = append(newK[l], row(shape.KVHeads*16))
			newV[l] = append(newV[l], row(shape.KVHeads*8))
		}
	}
	for _, cd := range []struct {
		name  string
		k, v  kv.Codec
		exact bool
	}{
		{"f16", kvquant.F16{}, kvquant.F16{}, true},
		{"q8", q8, q8, true},
		{"kivi-4", kiviK, kiviV, false},
	} {
		fill := func() *kv.Cache {
			c, err := kv.New(shape, kv.Config{K: cd.k, V: cd.v, Summaries: true}, 1024)
			if err != nil {
				t.Fatal(err)
			}
			for p := range n {
				if err := c.Begin([]int32{int32(p)}); err != nil {
					t.Fatal(err)
				}
				for l := range 2 {
					c.Store(l, keys[l][p], vals[l][p])
				}
				c.End()
			}
			return c
		}
		// One batch: every overwrite, then two appended positions.
		batch := fill()
		pos := append(append([]int32{}, over...), n, n+1)
		if err := batch.Begin(pos); err != nil {
			t.Fatal(err)
		}
		for l := range 2 {
			var k, v []float32
			for i := range over {
				k, v = append(k, newK[l][i]...), append(v, newV[l][i]...)
			}
			k, v = append(append(k, keys[l][n]...), keys[l][n+1]...), append(append(v, vals[l][n]...), vals[l][n+1]...)
			batch.Store(l, k, v)
		}
		batch.End()
		checkSummaries(t, batch, cd.name+" after a batch of overwrites")
		// The same, one overwrite per batch.
		seq := fill()
		for i, p := range over {
			if err := seq.Begin([]int32{p}); err != nil {
				t.Fatal(err)
			}
			for l := range 2 {
				seq.Store(l, newK[l][i], newV[l][i])
			}
			seq.End()
		}
		if err := seq.Begin([]int32{n, n + 1}); err != nil {
			t.Fatal(err)
		}
		for l := range 2 {
			seq.Store(l, append(append([]float32{}, keys[l][n]...), keys[l][n+1]...), append(append([]float32{}, vals[l][n]...), vals[l][n+1]...))
		}
		seq.End()

		var errB, errS float64
		for l := range 2 {
			want := func(p, h int) ([]float32, []float32) {
				for i, q := range over {
					if int32(p) == q {
						return newK[l][i][h*16 : (h+1)*16], newV[l][i][h*8 : (h+1)*8]
					}
				}
				return keys[l][p][h*16 : (h+1)*16], vals[l][p][h*8 : (h+1)*8]
			}
			for h := range 2 {
				sb, ss := batch.Stream(l, h), seq.Stream(l, h)
				if sb.Len() != n+2 || ss.Len() != n+2 {
					t.Fatalf("%s: %d and %d tokens", cd.name, sb.Len(), ss.Len())
				}
				kb, vb, ks, vs := make([]float32, 16), make([]float32, 8), make([]float32, 16), make([]float32, 8)
				for j := range n + 2 {
					sb.Vector(j, kb, vb)
					ss.Vector(j, ks, vs)
					wk, wv := want(j, h)
					for c := range kb {
						if cd.exact && kb[c] != ks[c] {
							t.Fatalf("%s: layer %d head %d token %d key %d: batch %g, one by one %g", cd.name, l, h, j, c, kb[c], ks[c])
						}
						errB = max(errB, math.Abs(float64(kb[c]-wk[c])))
						errS = max(errS, math.Abs(float64(ks[c]-wk[c])))
					}
					for c := range vb {
						if cd.exact && vb[c] != vs[c] {
							t.Fatalf("%s: token %d value %d: batch %g, one by one %g", cd.name, j, c, vb[c], vs[c])
						}
						errB = max(errB, math.Abs(float64(vb[c]-wv[c])))
						errS = max(errS, math.Abs(float64(vs[c]-wv[c])))
					}
				}
			}
		}
		if errB > errS+1e-6 || errB > 0.5 {
			t.Errorf("%s: largest error %g in one batch, %g one by one", cd.name, errB, errS)
		}
		t.Logf("%s: largest error %g in one batch, %g one by one", cd.name, errB, errS)
	}
}
