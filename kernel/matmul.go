package kernel

import (
	"fmt"
	"unsafe"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// Matrix is a weight matrix of Rows rows of Cols elements stored in one of
// ggml's tensor types, used in place (usually a slice of a mapped file).
type Matrix struct {
	Type       gguf.TensorType
	Rows, Cols int
	Data       []byte
	rowBytes   int
	f32        []float32 // Data viewed as float32 when Type is F32
}

// weightTypes are the tensor types a Matrix can hold: every type with a
// dot product against a converted activation.
var weightTypes = map[gguf.TensorType]bool{
	gguf.TypeF32: true, gguf.TypeF16: true, gguf.TypeBF16: true,
	gguf.TypeQ4_0: true, gguf.TypeQ4_1: true, gguf.TypeQ5_0: true, gguf.TypeQ5_1: true, gguf.TypeQ8_0: true,
	gguf.TypeQ2_K: true, gguf.TypeQ3_K: true, gguf.TypeQ4_K: true, gguf.TypeQ5_K: true, gguf.TypeQ6_K: true,
}

// NewMatrix wraps data as a Rows×Cols matrix of type t.
func NewMatrix(t gguf.TensorType, rows, cols int, data []byte) (*Matrix, error) {
	rb, err := t.RowBytes(cols)
	if err != nil {
		return nil, err
	}
	if !weightTypes[t] {
		return nil, fmt.Errorf("tensor type %s cannot be used as a weight matrix", t)
	}
	if len(data) != rb*rows {
		return nil, fmt.Errorf("%d bytes for a %d×%d %s matrix, want %d", len(data), rows, cols, t, rb*rows)
	}
	m := &Matrix{Type: t, Rows: rows, Cols: cols, Data: data, rowBytes: rb}
	if t == gguf.TypeF32 {
		m.f32 = Float32s(data)
	}
	return m, nil
}

// Float32s views little-endian float32 bytes as a []float32 without copying
// when b is 4-byte aligned, and copies otherwise.
func Float32s(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
	}
	out := make([]float32, len(b)/4)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(b)), b)
	return out
}

// Row decodes row r into dst (len Cols).
func (m *Matrix) Row(r int, dst []float32) error {
	if r < 0 || r >= m.Rows {
		return fmt.Errorf("row %d out of range [0, %d)", r, m.Rows)
	}
	return quant.Dequantize(m.Type, m.Data[r*m.rowBytes:(r+1)*m.rowBytes], dst)
}

// ActivationBytes is the scratch size MatMul needs for n input rows.
func (m *Matrix) ActivationBytes(n int) int {
	if m.Type == gguf.TypeF32 {
		return 0
	}
	rb, _ := quant.VecDotType(m.Type).RowBytes(m.Cols)
	return rb * n
}

// MatMul computes out[t][r] = Σ_c m[r][c]·x[t][c] for n input rows x
// (n×Cols) into out (n×Rows). Like ggml, it first converts the activations
// to the weight type's dot-product partner (Q8_0 for Q4_0/Q8_0, Q8_K for the
// K-quants, F16 for F16), so results match llama.cpp closely. scratch must
// hold ActivationBytes(n) bytes.
func (m *Matrix) MatMul(p *Pool, out, x []float32, n int, scratch []byte) {
	if m.Type == gguf.TypeF32 {
		p.For(m.Rows, 16, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				w := m.f32[r*m.Cols : (r+1)*m.Cols]
				for t := 0; t < n; t++ {
					out[t*m.Rows+r] = Dot(w, x[t*m.Cols:(t+1)*m.Cols])
				}
			}
		})
		return
	}
	vt := quant.VecDotType(m.Type)
	arb, _ := vt.RowBytes(m.Cols)
	p.For(n, 1, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			if err := quant.QuantizeActivation(m.Type, x[t*m.Cols:(t+1)*m.Cols], scratch[t*arb:(t+1)*arb]); err != nil {
				panic(fmt.Sprintf("kernel: activation of %d columns for %s: %v", m.Cols, m.Type, err))
			}
		}
	})
	p.For(m.Rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			w := m.Data[r*m.rowBytes : (r+1)*m.rowBytes]
			for t := 0; t < n; t++ {
				out[t*m.Rows+r] = quant.Dot(m.Type, w, scratch[t*arb:(t+1)*arb], m.Cols)
			}
		}
	})
}
