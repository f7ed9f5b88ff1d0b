package evict

import (
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// TestProtected checks what each evictor declares it always keeps of a
// prompt (kv.Protector), and that a real cache holds those tokens after
// a prompt of random keys, whatever the scores.
func TestProtected(t *testing.T) {
	frac := func(f float64) kv.Budget { return kv.Budget{Fraction: f} }
	crush := func(inner kv.Evictor) kv.Evictor {
		e, err := NewKVCrush(inner, 0.75, "alternate", "head", "median")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	const n = 200
	for _, tc := range []struct {
		name        string
		ev          kv.Evictor
		first, last int
	}{
		{"streaming", NewStreaming(frac(0.25), 4), 4, 46},
		{"h2o", NewH2O(frac(0.25), 0.5), 0, 25},
		{"tova", NewTOVA(frac(0.25)), 0, 0},
		{"snapkv", NewSnapKV(frac(0.25), 32, 7, "max"), 0, 32},
		{"snapkv window over budget", NewSnapKV(kv.Budget{Tokens: 20}, 32, 7, "max"), 0, 10},
		{"pyramidkv", NewPyramidKV(frac(0.25), 32, 7, "max", 20), 0, 32},
		{"knorm", NewKNorm(frac(0.25)), 0, 0},
		{"snapkv+kvcrush", crush(NewSnapKV(frac(0.25), 32, 7, "max")), 0, 32},
		{"streaming+kvcrush", crush(NewStreaming(frac(0.25), 4)), 4, 0},
		{"budget over prompt", NewSnapKV(frac(1), 32, 7, "max"), n, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := tc.ev.(kv.Protector)
			if !ok {
				t.Fatalf("%T is not a kv.Protector", tc.ev)
			}
			first, last := p.Protected(n)
			if first != tc.first || last != tc.last {
				t.Fatalf("Protected(%d) = %d, %d; want %d, %d", n, first, last, tc.first, tc.last)
			}
			pat := pattern{
				key:   func(l, h, p int) []float32 { return noise(seed(l, h, p), 3) },
				query: func(l, h, p int) []float32 { return noise(seed(l, h, p)+1, 3) },
			}
			r := newRig(t, 2, 2, 2, tc.ev, pat)
			r.prefill(n)
			want := union(rangeInts(0, first), rangeInts(n-last, n))
			for l := 0; l < 2; l++ {
				for h := 0; h < 2; h++ {
					if got := r.positions(l, h); !contains(got, want...) {
						t.Errorf("layer %d head %d kept %v, missing some of the protected %v", l, h, got, want)
					}
				}
			}
		})
	}
}
