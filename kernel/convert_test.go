package kernel

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// activationCases returns inputs of nb blocks of be elements: random
// normal values, values that land exactly on rounding ties, zero blocks,
// blocks whose largest magnitude appears with both signs (the first one
// decides the sign of the Q8_K scale), tiny and huge values.
func activationCases(rng *rand.Rand, be int) map[string][]float32 {
	cases := map[string][]float32{}
	for _, nb := range []int{1, 2, 5} {
		cases[fmt.Sprintf("normal/%d", nb)] = randomFloats(rng, nb*be)
	}
	ties := make([]float32, 2*be)
	for i := range ties {
		ties[i] = float32(rng.IntN(254)-127) + 0.5
	}
	ties[0], ties[be] = 127, -127 // scale 1 (Q8_0) and iscale 1 (Q8_K)
	cases["ties"] = ties
	zero := make([]float32, 3*be)
	for i := be; i < 2*be; i++ {
		zero[i] = float32(rng.NormFloat64())
	}
	cases["zero-blocks"] = zero
	both := randomFloats(rng, be)
	both[3], both[be-2] = 50, -50
	cases["both-signs"] = both
	both2 := randomFloats(rng, be)
	both2[5], both2[9] = -50, 50
	cases["both-signs-neg-first"] = both2
	tiny := randomFloats(rng, be)
	huge := randomFloats(rng, be)
	for i := range tiny {
		tiny[i] *= 1e-30
		huge[i] *= 1e30
	}
	cases["tiny"], cases["huge"] = tiny, huge
	return cases
}

func TestQuantizeQ8_0(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for name, x := range activationCases(rng, 32) {
		t.Run(name, func(t *testing.T) {
			nb := len(x) / 32
			want := make([]byte, 34*nb)
			if err := quant.QuantizeActivation(gguf.TypeQ8_0, x, want); err != nil {
				t.Fatal(err)
			}
			check := func(path string, q func(dst []byte, s []float32, x []float32)) {
				got := make([]byte, 34*nb)
				s := make([]float32, nb)
				q(got, s, x)
				if !bytes.Equal(got, want) {
					t.Errorf("%s: bytes differ from quant.QuantizeActivation:\n got %v\nwant %v", path, got, want)
				}
				for i := range s {
					if w := quant.F16ToF32(uint16(want[34*i]) | uint16(want[34*i+1])<<8); math.Float32bits(s[i]) != math.Float32bits(w) {
						t.Errorf("%s: scale %d = %g, want %g", path, i, s[i], w)
					}
				}
			}
			check("generic", quantizeQ8_0Go)
			if haveAVX2 {
				check("avx2", func(dst []byte, s []float32, x []float32) { quantizeQ8_0AVX2(&x[0], nb, &dst[0], &s[0]) })
			}
		})
	}
}

func TestQuantizeQ8_K(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 6))
	for name, x := range activationCases(rng, 256) {
		t.Run(name, func(t *testing.T) {
			nb := len(x) / 256
			want := make([]byte, 292*nb)
			if err := quant.Quantize(gguf.TypeQ8_K, x, want); err != nil {
				t.Fatal(err)
			}
			check := func(path string, q func(dst []byte, x []float32)) {
				got := make([]byte, 292*nb)
				for i := range got {
					got[i] = 0xAA // an all-zero block must be written, not skipped
				}
				q(got, x)
				if !bytes.Equal(got, want) {
					for i := range got {
						if got[i] != want[i] {
							t.Errorf("%s: first difference at byte %d (block %d, offset %d): got %d, want %d", path, i, i/292, i%292, got[i], want[i])
							break
						}
					}
				}
			}
			check("generic", quantizeQ8_KGo)
			if haveAVX2 {
				check("avx2", func(dst []byte, x []float32) { quantizeQ8_KAVX2(&x[0], nb, &dst[0]) })
			}
		})
	}
}

func TestRoundF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 7))
	for _, n := range []int{1, 7, 8, 9, 33, 100} {
		x := randomFloats(rng, n)
		x[0] = 65520 // rounds to +Inf
		if n > 2 {
			x[1] = 1e-8 // subnormal half
			x[2] = float32(math.NaN())
		}
		got := make([]float32, n)
		roundF16(got, x)
		for i := range x {
			want := quant.F16ToF32(quant.F32ToF16(x[i]))
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Errorf("n=%d: roundF16(%g) = %g (%#x), want %g (%#x)", n, x[i], got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
			}
		}
	}
}
