package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// allTypes lists every type Quantize and Dequantize support.
var allTypes = []gguf.TensorType{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0, gguf.TypeQ8_1,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeQ8_K,
}

// dotTypes lists every weight type Dot supports.
var dotTypes = []gguf.TensorType{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
}

// dataset is a named generator of test vectors.
type dataset struct {
	name string
	gen  func(r *rand.Rand, n int) []float32
}

var datasets = []dataset{
	{"gauss", func(r *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}},
	{"outliers", func(r *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 0.02)
			if r.IntN(40) == 0 {
				x[i] *= 200
			}
		}
		return x
	}},
	{"positive", func(r *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.Float64()*3 + 1)
		}
		return x
	}},
	{"uniform", func(r *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.Float64()*2 - 1)
		}
		return x
	}},
	{"zero-blocks", func(r *rand.Rand, n int) []float32 {
		// every other 256-element stretch is zero, so every block type
		// sees both all-zero blocks and partly zero blocks.
		x := make([]float32, n)
		for i := range x {
			if (i/256)%2 == 1 || (i/16)%3 == 0 {
				x[i] = float32(r.NormFloat64())
			}
		}
		return x
	}},
	{"constant", func(r *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(1+i/256) * -0.75
		}
		return x
	}},
	{"large", func(r *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 1000)
		}
		return x
	}},
}

// absMax64 returns max |x|.
func absMax64(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// mustRowBytes is RowBytes for arguments known to be valid.
func mustRowBytes(t testing.TB, typ gguf.TensorType, n int) int {
	t.Helper()
	b, err := RowBytes(typ, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quantize returns x encoded as typ.
func quantize(t testing.TB, typ gguf.TensorType, x []float32) []byte {
	t.Helper()
	b := make([]byte, mustRowBytes(t, typ, len(x)))
	if err := Quantize(typ, x, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// dequantize returns the n elements of typ stored in b.
func dequantize(t testing.TB, typ gguf.TensorType, b []byte, n int) []float32 {
	t.Helper()
	y := make([]float32, n)
	if err := Dequantize(typ, b, y); err != nil {
		t.Fatal(err)
	}
	return y
}
