package kernel

import (
	"math"

	"github.com/kvgo/kvgo/quant"
)

// RMSNorm writes x / sqrt(mean(x²) + eps) * w into out (out may alias x).
// The sum of squares is accumulated in float64, as ggml does.
func RMSNorm(out, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		out[i] = v * scale * w[i]
	}
}

// Softmax replaces x by its softmax in place. -Inf entries get probability 0.
func Softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// SiLU returns x·sigmoid(x).
func SiLU(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// SwiGLU writes silu(gate[i]) * up[i] into gate.
func SwiGLU(gate, up []float32) {
	for i, g := range gate {
		gate[i] = SiLU(g) * up[i]
	}
}

// Add adds src into dst.
func Add(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

// Dot is the float32 inner product of two equal-length vectors.
func Dot(a, b []float32) float32 {
	return dotGo(a, b)
}

func dotGo(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(a) &^ 3
	b = b[:len(a)]
	for i := 0; i < n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for i := n; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotF16Go is the pure-Go inner product of float32 q with half-precision k.
func dotF16Go(q []float32, k []uint16) float32 {
	var s0, s1, s2, s3 float32
	n := len(q) &^ 3
	k = k[:len(q)]
	for i := 0; i < n; i += 4 {
		s0 += q[i] * quant.F16ToF32(k[i])
		s1 += q[i+1] * quant.F16ToF32(k[i+1])
		s2 += q[i+2] * quant.F16ToF32(k[i+2])
		s3 += q[i+3] * quant.F16ToF32(k[i+3])
	}
	for i := n; i < len(q); i++ {
		s0 += q[i] * quant.F16ToF32(k[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// dotBF16Go is dotF16Go for bfloat16 k.
func dotBF16Go(q []float32, k []uint16) float32 {
	var s0, s1, s2, s3 float32
	n := len(q) &^ 3
	k = k[:len(q)]
	for i := 0; i < n; i += 4 {
		s0 += q[i] * quant.BF16ToF32(k[i])
		s1 += q[i+1] * quant.BF16ToF32(k[i+1])
		s2 += q[i+2] * quant.BF16ToF32(k[i+2])
		s3 += q[i+3] * quant.BF16ToF32(k[i+3])
	}
	for i := n; i < len(q); i++ {
		s0 += q[i] * quant.BF16ToF32(k[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// AXPY adds a·x into y.
func AXPY(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}
