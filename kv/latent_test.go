package kv_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/evict"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// shiftLast is a stand-in for a model's RoPE: it adds delta to the key's
// last value, so that a moved key is recognizable.
type shiftLast struct{}

func (shiftLast) Rotate(_ int, key []float32, delta int32) { key[len(key)-1] += float32(delta) }

// TestValueInKey: a latent cache (Shape.ValueInKey: the value is the first
// value-width values of the key, stored once) attends exactly as naive
// attention whose values are those key prefixes, matches a cache that
// stores the same values a second time bit for bit with the f16 codec,
// holds only its keys (FullF16Bytes agrees), and keeps working through an
// evictor, a fork and a shift.
func TestValueInKey(t *testing.T) {
	dims := []kv.Dims{{Key: 24, Value: 16}, {Key: 40, Value: 32}}
	shared := kv.Shape{Layers: 2, KVHeads: 1, LayerDims: dims, Scale: 0.125, ValueInKey: true}
	twice := shared
	twice.ValueInKey = false
	kc, vc, err := kvquant.NewKIVI(4, 16, 8)
	if err != nil {
		t.Fatal(err)
	}
	q8, err := kvquant.NewBlock(8, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range []struct {
		name  string
		k, v  kv.Codec
		exact bool // shared and twice-stored caches agree exactly (f16: the same values, rounded alike; q8 blocks follow the width)
	}{{"f16", kvquant.F16{}, kvquant.F16{}, true}, {"q8", q8, q8, false}, {"kivi-4", kc, vc, false}} {
		for _, withEvictor := range []bool{false, true} {
			cfg := kv.Config{K: cd.k, V: cd.v, RoPE: shiftLast{}}
			if withEvictor {
				cfg.Evictor = evict.NewH2O(kv.Budget{Tokens: 40}, 0.5)
			}
			a, err := kv.New(shared, cfg, 256)
			if err != nil {
				t.Fatal(err)
			}
			cfg2 := cfg
			if withEvictor {
				cfg2.Evictor = evict.NewH2O(kv.Budget{Tokens: 40}, 0.5)
			}
			b, err := kv.New(twice, cfg2, 256)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			const T, g = 70, 4
			sa, sb := kv.NewScratch(g), kv.NewScratch(g)
			a.BeginPrefill(20)
			b.BeginPrefill(20)
			for p := 0; p < T; p++ {
				for _, c := range []*kv.Cache{a, b} {
					if err := c.Begin([]int32{int32(p)}); err != nil {
						t.Fatal(err)
					}
				}
				for l := 0; l < 2; l++ {
					d := shared.Dims(l)
					k := randVec(rng, d.Key)
					a.Store(l, k, nil)
					b.Store(l, k, k[:d.Value])
					q := randVec(rng, g*d.Key)
					oa, ob := make([]float32, g*d.Value), make([]float32, g*d.Value)
					a.Attend(l, 0, q, g, int32(p), oa, sa)
					b.Attend(l, 0, q, g, int32(p), ob, sb)
					want := naiveAttend(a.Stream(l, 0), q, g, 0.125)
					for i := range oa {
						if math.Abs(float64(oa[i]-want[i])) > 1e-4 {
							t.Fatalf("%s evictor=%v layer %d step %d: attention %g, naive %g", cd.name, withEvictor, l, p, oa[i], want[i])
						}
						if cd.exact && oa[i] != ob[i] {
							t.Fatalf("%s evictor=%v layer %d step %d: stored once %g, twice %g", cd.name, withEvictor, l, p, oa[i], ob[i])
						}
					}
				}
				a.End()
				b.End()
			}
			if a.Bytes() >= b.Bytes() {
				t.Fatalf("%s evictor=%v: the latent stored once holds %d bytes, stored twice %d", cd.name, withEvictor, a.Bytes(), b.Bytes())
			}
			if !withEvictor && cd.name == "f16" {
				if got, want := a.Bytes(), kv.FullF16Bytes(shared, T); got != want {
					t.Fatalf("f16 latent cache holds %d bytes, FullF16Bytes says %d", got, want)
				}
				t.Logf("f16, %d tokens: stored once %d bytes, twice %d (%.3f)", T, a.Bytes(), b.Bytes(), float64(a.Bytes())/float64(b.Bytes()))
			}
			// A fork shifted by 5 holds the original's keys moved, and
			// values that are still their first values.
			f := a.Fork()
			if err := f.Shift(10, 5); err != nil {
				t.Fatal(err)
			}
			for l := 0; l < 2; l++ {
				d := shared.Dims(l)
				so, sf := a.Stream(l, 0), f.Stream(l, 0)
				k0, v0 := make([]float32, d.Key), make([]float32, d.Value)
				k1, v1 := make([]float32, d.Key), make([]float32, d.Value)
				for i, p := range so.Positions() {
					so.Vector(i, k0, v0)
					sf.Vector(i, k1, v1)
					moved := float32(0)
					if p >= 10 {
						moved = 5
					}
					// KIVI quantizes a page's keys again when some move
					// (other group bounds): 0.135 of the largest key was
					// measured for a model's keys (docs/ARCHITECTURE.md).
					tol := 0.02
					if cd.name == "kivi-4" {
						tol = 0.3
					}
					if sf.Positions()[i] != p+int32(moved) || math.Abs(float64(k1[d.Key-1]-k0[d.Key-1]-moved)) > tol {
						t.Fatalf("%s evictor=%v: token at %d moved to %d with last key value %g -> %g", cd.name, withEvictor, p, sf.Positions()[i], k0[d.Key-1], k1[d.Key-1])
					}
					for c := range v1 {
						if v1[c] != k1[c] {
							t.Fatalf("%s: a shifted latent's value %g differs from its key %g", cd.name, v1[c], k1[c])
						}
					}
				}
			}
			f.Release()
		}
	}
	bad := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 8, ValueDim: 16, ValueInKey: true}
	if _, err := kv.New(bad, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, 8); err == nil {
		t.Fatal("values wider than keys were accepted for storage in the keys")
	}
}
