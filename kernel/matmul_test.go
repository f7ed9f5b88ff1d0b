package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// allWeightTypes are the types NewMatrix accepts.
var allWeightTypes = []gguf.TensorType{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ4_1, gguf.TypeQ5_1,
	gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeQ2_K, gguf.TypeQ3_K,
	gguf.TypeIQ4_NL, gguf.TypeIQ4_XS,
}

// randomFloats returns n normal values with a few outliers, as activations
// and weights have.
func randomFloats(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		if rng.IntN(50) == 0 {
			x[i] *= 8
		}
	}
	return x
}

// randomMatrix quantizes random values into a rows×cols matrix of type t.
func randomMatrix(tb testing.TB, rng *rand.Rand, t gguf.TensorType, rows, cols int) *Matrix {
	tb.Helper()
	rb, err := t.RowBytes(cols)
	if err != nil {
		tb.Fatal(err)
	}
	data := make([]byte, rows*rb)
	if t == gguf.TypeIQ4_NL || t == gguf.TypeIQ4_XS {
		randomIQ4Blocks(rng, t, data)
	} else if err := quant.Quantize(t, randomFloats(rng, rows*cols), data); err != nil {
		tb.Fatal(err)
	}
	m, err := NewMatrix(t, rows, cols, data)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// refMatMul is MatMul through package quant: the activation converted with
// quant.QuantizeActivation (or Quantize for F16/BF16), each product by
// quant.Dot. It also returns, per output, the sum of |w·x| over the row,
// which bounds the rounding error of any summation order.
func refMatMul(tb testing.TB, m *Matrix, x []float32, n int) (out, mag []float32) {
	tb.Helper()
	vt := quant.VecDotType(m.Type)
	ab, err := vt.RowBytes(m.Cols)
	if err != nil {
		tb.Fatal(err)
	}
	act := make([]byte, ab)
	w := make([]float32, m.Cols)
	xd := make([]float32, m.Cols)
	out = make([]float32, n*m.Rows)
	mag = make([]float32, n*m.Rows)
	for t := range n {
		xt := x[t*m.Cols : (t+1)*m.Cols]
		if err := quant.QuantizeActivation(m.Type, xt, act); err != nil {
			tb.Fatal(err)
		}
		if err := quant.Dequantize(vt, act, xd); err != nil {
			tb.Fatal(err)
		}
		for r := range m.Rows {
			out[t*m.Rows+r] = quant.Dot(m.Type, m.Data[r*m.rowBytes:(r+1)*m.rowBytes], act, m.Cols)
			if err := m.Row(r, w); err != nil {
				tb.Fatal(err)
			}
			var s float64
			for i := range w {
				s += math.Abs(float64(w[i]) * float64(xd[i]))
			}
			mag[t*m.Rows+r] = float32(s)
		}
	}
	return out, mag
}

// colsFor returns awkward row lengths for type t: one block, a few blocks,
// and, for the float types, lengths that are not multiples of the vector
// width.
func colsFor(t gguf.TensorType) []int {
	be := t.BlockElems()
	if be == 1 {
		return []int{1, 7, 8, 33, 100, 259, 2100}
	}
	if be == 256 {
		return []int{256, 768}
	}
	return []int{32, 96, 224, 928}
}

// TestMatMulMatchesReference compares MatMul, on whichever kernels this
// process dispatches to, with the quant reference for every weight type, on
// row counts that are not multiples of the tile or of four and batches that
// are not multiples of four.
func TestMatMulMatchesReference(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	rng := rand.New(rand.NewPCG(7, 11))
	for _, typ := range allWeightTypes {
		for _, cols := range colsFor(typ) {
			for _, rows := range []int{1, 5, 70} {
				m := randomMatrix(t, rng, typ, rows, cols)
				for _, n := range []int{1, 3, 4, 9, 13} {
					t.Run(fmt.Sprintf("%s/%dx%d/n=%d", typ, rows, cols, n), func(t *testing.T) {
						x := randomFloats(rng, n*cols)
						out := make([]float32, n*rows+1)
						out[n*rows] = 42 // must stay untouched
						m.MatMul(p, out, x, n, make([]byte, m.ActivationBytes(n)))
						want, mag := refMatMul(t, m, x, n)
						for i := range want {
							tol := 1e-5*mag[i] + 1e-6
							if d := math.Abs(float64(out[i] - want[i])); !(d <= float64(tol)) {
								t.Fatalf("out[%d] (token %d, row %d) = %g, want %g (diff %g, tolerance %g)", i, i/rows, i%rows, out[i], want[i], d, tol)
							}
						}
						if out[n*rows] != 42 {
							t.Fatalf("MatMul wrote past its output")
						}
					})
				}
			}
		}
	}
}
