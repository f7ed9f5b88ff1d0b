package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// testCodec is a key/value codec pair under test.
type testCodec struct {
	name string
	k, v kv.Codec
}

// mustBlock builds a Block or fails the test.
func mustBlock(t testing.TB, bits, group int, asym bool) Block {
	t.Helper()
	b, err := NewBlock(bits, group, asym)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustKIVI(t testing.TB, bits, group, residual int) (KIVIKeys, Block) {
	t.Helper()
	k, v, err := NewKIVI(bits, group, residual)
	if err != nil {
		t.Fatal(err)
	}
	return k, v
}

// blockCodecs are the per-token codecs with the given group.
func blockCodecs(t testing.TB, group int) []Block {
	return []Block{
		mustBlock(t, 8, group, false), mustBlock(t, 8, group, true),
		mustBlock(t, 4, group, false), mustBlock(t, 4, group, true),
		mustBlock(t, 2, group, true),
	}
}

// kvData returns n vectors of d values shaped like real keys: unit normal
// noise, a few outlier channels with large magnitude and offset (the
// structure KIVI's section 3 describes), and rare single-value spikes.
func kvData(rng *rand.Rand, n, d int) []float32 {
	x := make([]float32, n*d)
	scale := make([]float32, d)
	shift := make([]float32, d)
	for c := range scale {
		scale[c], shift[c] = 1, 0
		if rng.IntN(12) == 0 {
			scale[c] = 8 + 12*rng.Float32()
			shift[c] = 20 * (rng.Float32() - 0.5)
		}
	}
	for i := range x {
		c := i % d
		x[i] = float32(rng.NormFloat64())*scale[c] + shift[c]
		if rng.IntN(100) == 0 {
			x[i] *= 25
		}
	}
	return x
}

// absSum is Σ|a_i·b_i|, the scale against which a dot product's rounding
// error is measured.
func absDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i]) * float64(b[i]))
	}
	return s
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
