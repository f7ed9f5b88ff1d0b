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

// kvData returns n vectors of d values with hard outliers for round-trip
// tests: unit normal noise, a few outlier channels with large magnitude and
// offset (the structure of keys in KIVI's section 3), and rare single-value
// spikes of 25x.
func kvData(rng *rand.Rand, n, d int) []float32 { return genData(rng, n, d, 8, 12, 20, 25) }

// keyData is milder, closer to real keys for attention tests: outlier
// channels of 3..7x with offsets, spikes of 4x. valueData has no outlier
// channels (values have none, per KIVI), per-channel scales of 0.5..1.5
// and offsets.
func keyData(rng *rand.Rand, n, d int) []float32   { return genData(rng, n, d, 3, 4, 6, 4) }
func valueData(rng *rand.Rand, n, d int) []float32 { return genData(rng, n, d, 0.5, 1, 1, 1) }

// genData draws unit normals; about one channel in 12 is an outlier
// channel scaled by outLo..outLo+outSpan and shifted by ±shift/2 (with
// outLo < 1 every channel gets a random scale in outLo..outLo+outSpan and a
// shift instead); 1% of values are multiplied by spike.
func genData(rng *rand.Rand, n, d int, outLo, outSpan, shift, spike float32) []float32 {
	x := make([]float32, n*d)
	scale := make([]float32, d)
	off := make([]float32, d)
	for c := range scale {
		scale[c], off[c] = 1, 0
		if outLo < 1 || rng.IntN(12) == 0 {
			scale[c] = outLo + outSpan*rng.Float32()
			off[c] = shift * (rng.Float32() - 0.5)
		}
	}
	for i := range x {
		c := i % d
		x[i] = float32(rng.NormFloat64())*scale[c] + off[c]
		if rng.IntN(100) == 0 {
			x[i] *= spike
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

// maxProd is max_i |a_i·b_i|.
func maxProd(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i])*float64(b[i])))
	}
	return m
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
