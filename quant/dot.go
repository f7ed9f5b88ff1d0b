package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kvgo/kvgo/gguf"
)

// hasDot reports whether Dot has a kernel for rows of type t.
func hasDot(t gguf.TensorType) bool {
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
		gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0,
		gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
		gguf.TypeIQ4_NL, gguf.TypeIQ4_XS:
		return true
	}
	return false
}

// HasDot reports whether Dot supports rows of type t.
func HasDot(t gguf.TensorType) bool { return hasDot(t) }

// CheckDot validates the arguments of Dot: t must have a dot product
// kernel, n must be a whole number of blocks, w must hold exactly one row of
// n elements of type t and x exactly n elements of type VecDotType(t).
func CheckDot(t gguf.TensorType, w, x []byte, n int) error {
	if !hasDot(t) {
		return fmt.Errorf("quant: %s: no dot product kernel for this type", t)
	}
	wb, err := RowBytes(t, n)
	if err != nil {
		return err
	}
	vt := VecDotType(t)
	xb, err := RowBytes(vt, n)
	if err != nil {
		return err
	}
	if len(w) != wb {
		return fmt.Errorf("quant: %s: dot: row of %d elements needs %d bytes, got %d", t, n, wb, len(w))
	}
	if len(x) != xb {
		return fmt.Errorf("quant: %s: dot: %s activation of %d elements needs %d bytes, got %d", t, vt, n, xb, len(x))
	}
	return nil
}

// Dot returns the dot product of one row w of n elements stored as t with
// an activation x of n elements stored as VecDotType(t) (see
// QuantizeActivation). It computes exactly what ggml's scalar (generic)
// ggml_vec_dot_<t>_<vec_dot_type> computes: integer sums of quant products
// inside each block, block scales applied in float32, float32 accumulation
// in ggml's order (for Q3_K..Q6_K including its eight partial sums).
//
// For F32, F16 and BF16 the products are formed in float32 and summed in
// float32 in element order. (ggml's scalar fallback for these types sums in
// double, its SIMD paths in float32 lanes; neither order is reproduced.)
//
// Dot is a reference implementation: clear, not fast. It panics if the
// arguments are inconsistent (see CheckDot), which is a programming error.
func Dot(t gguf.TensorType, w []byte, x []byte, n int) float32 {
	if err := CheckDot(t, w, x, n); err != nil {
		panic(err)
	}
	switch t {
	case gguf.TypeF32:
		return dotF32(w, x, n)
	case gguf.TypeF16:
		return dotHalf(w, x, n, F16ToF32)
	case gguf.TypeBF16:
		return dotHalf(w, x, n, BF16ToF32)
	case gguf.TypeQ4_0:
		return dotQ4_0(w, x, n)
	case gguf.TypeQ4_1:
		return dotQ4_1(w, x, n)
	case gguf.TypeQ5_0:
		return dotQ5_0(w, x, n)
	case gguf.TypeQ5_1:
		return dotQ5_1(w, x, n)
	case gguf.TypeQ8_0:
		return dotQ8_0(w, x, n)
	case gguf.TypeQ2_K:
		return dotQ2_K(w, x, n)
	case gguf.TypeQ3_K:
		return dotQ3_K(w, x, n)
	case gguf.TypeQ4_K:
		return dotQ4_K(w, x, n)
	case gguf.TypeQ5_K:
		return dotQ5_K(w, x, n)
	case gguf.TypeQ6_K:
		return dotQ6_K(w, x, n)
	case gguf.TypeIQ4_NL:
		return dotIQ4_NL(w, x, n)
	case gguf.TypeIQ4_XS:
		return dotIQ4_XS(w, x, n)
	}
	panic("unreachable")
}

func dotF32(w, x []byte, n int) float32 {
	var sum float32
	for i := range n {
		a := math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:]))
		sum += float32(a * b)
	}
	return sum
}

func dotHalf(w, x []byte, n int, conv func(uint16) float32) float32 {
	var sum float32
	for i := range n {
		a := conv(binary.LittleEndian.Uint16(w[2*i:]))
		b := conv(binary.LittleEndian.Uint16(x[2*i:]))
		sum += float32(a * b)
	}
	return sum
}

// q8Block returns the f16 scale and the 32 int8 quants of block i of a Q8_0
// activation.
func q8Block(x []byte, i int) (d float32, qs []byte) {
	b := x[i*34 : (i+1)*34]
	return f16at(b), b[2:]
}

// q8_1Block returns d, s = d*sum(q) and the quants of block i of a Q8_1
// activation.
func q8_1Block(x []byte, i int) (d, s float32, qs []byte) {
	b := x[i*36 : (i+1)*36]
	return f16at(b), f16at(b[2:]), b[4:]
}

// dotQ4_0 is ggml_vec_dot_q4_0_q8_0: sum += sumi*dx*dy, with
// sumi = sum((q-8)*y).
func dotQ4_0(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qk {
		b := w[i*18 : (i+1)*18]
		dy, qy := q8Block(x, i)
		var sumi int32
		for j := range qk / 2 {
			sumi += (int32(b[2+j]&0xf) - 8) * int32(int8(qy[j]))
			sumi += (int32(b[2+j]>>4) - 8) * int32(int8(qy[j+qk/2]))
		}
		sumf += float32(float32(sumi) * f16at(b) * dy)
	}
	return sumf
}

// dotQ4_1 is ggml_vec_dot_q4_1_q8_1: sum += dx*dy*sumi + mx*sy, where
// sy = dy*sum(qy) carries the block minimum's contribution.
func dotQ4_1(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qk {
		b := w[i*20 : (i+1)*20]
		dy, sy, qy := q8_1Block(x, i)
		var sumi int32
		for j := range qk / 2 {
			sumi += int32(b[4+j]&0xf) * int32(int8(qy[j]))
			sumi += int32(b[4+j]>>4) * int32(int8(qy[j+qk/2]))
		}
		sumf += float32(f16at(b)*dy*float32(sumi)) + float32(f16at(b[2:])*sy)
	}
	return sumf
}

// dotQ5_0 is ggml_vec_dot_q5_0_q8_0: sum += dx*dy*sumi, sumi = sum((q-16)*y).
func dotQ5_0(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qk {
		b := w[i*22 : (i+1)*22]
		qh := binary.LittleEndian.Uint32(b[2:])
		dy, qy := q8Block(x, i)
		var sumi int32
		for j := range qk {
			sumi += (q5(b[6:22], qh, j) - 16) * int32(int8(qy[j]))
		}
		sumf += float32(f16at(b) * dy * float32(sumi))
	}
	return sumf
}

// dotQ5_1 is ggml_vec_dot_q5_1_q8_1: sum += dx*dy*sumi + mx*sy.
func dotQ5_1(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qk {
		b := w[i*24 : (i+1)*24]
		qh := binary.LittleEndian.Uint32(b[4:])
		dy, sy, qy := q8_1Block(x, i)
		var sumi int32
		for j := range qk {
			sumi += q5(b[8:24], qh, j) * int32(int8(qy[j]))
		}
		sumf += float32(f16at(b)*dy*float32(sumi)) + float32(f16at(b[2:])*sy)
	}
	return sumf
}

// dotQ8_0 is ggml_vec_dot_q8_0_q8_0: sum += sumi*(dx*dy).
func dotQ8_0(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qk {
		dx, qx := q8Block(w, i)
		dy, qy := q8Block(x, i)
		var sumi int32
		for j := range qk {
			sumi += int32(int8(qx[j])) * int32(int8(qy[j]))
		}
		sumf += float32(float32(sumi) * float32(dx*dy))
	}
	return sumf
}

// q8KBlock splits block i of a Q8_K activation into d, quants and bsums.
type q8KBlock struct {
	d     float32
	qs    []byte
	bsums [16]int32
}

func q8KAt(x []byte, i int) q8KBlock {
	b := x[i*292 : (i+1)*292]
	blk := q8KBlock{
		d:  math.Float32frombits(binary.LittleEndian.Uint32(b)),
		qs: b[4:260],
	}
	for j := range 16 {
		blk.bsums[j] = int32(int16(binary.LittleEndian.Uint16(b[260+2*j:])))
	}
	return blk
}

func (y *q8KBlock) q(e int) int32 { return int32(int8(y.qs[e])) }

// dotQ2_K is ggml_vec_dot_q2_K_q8_K (generic): per super-block
// isum = sum(scale4 * q * y) and summs = sum(bsums * min4), then
// sum += d*dy*isum - dmin*dy*summs.
func dotQ2_K(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qkK {
		b := w[i*84 : (i+1)*84]
		y := q8KAt(x, i)
		sc, qs := b[0:16], b[16:80]
		var summs int32
		for j := range 16 {
			summs += y.bsums[j] * int32(sc[j]>>4)
		}
		dall := y.d * f16at(b[80:])
		dmin := y.d * f16at(b[82:])
		var isum int32
		for g := range 16 {
			var isuml int32
			for e := 16 * g; e < 16*g+16; e++ {
				isuml += y.q(e) * int32(unpack2bit(qs, e))
			}
			isum += int32(sc[g]&0xf) * isuml
		}
		sumf += float32(dall*float32(isum)) - float32(dmin*float32(summs))
	}
	return sumf
}

// lanes8 reproduces the eight-lane accumulation of ggml's generic Q3_K..Q6_K
// dot products: lane l collects scale(e)*q(e)*y(e) over the elements e of a
// super-block with e%8 == l (integer), and the float32 partial sum of lane l
// accumulates d*lane over super-blocks. The lanes are added in order at the
// end.
type lanes8 [8]float32

func (s *lanes8) add(d float32, aux *[8]int32) {
	for l := range 8 {
		s[l] += float32(d * float32(aux[l]))
	}
}

func (s *lanes8) total(start float32) float32 {
	for l := range 8 {
		start += s[l]
	}
	return start
}

// dotQ3_K is ggml_vec_dot_q3_K_q8_K (generic).
func dotQ3_K(w, x []byte, n int) float32 {
	var sums lanes8
	for i := range n / qkK {
		b := w[i*110 : (i+1)*110]
		y := q8KAt(x, i)
		hmask, qs := b[0:32], b[32:96]
		s := q3Scales(b[96:108])
		var aux [8]int32
		for e := range qkK {
			aux[e%8] += int32(s[e/16]) * (y.q(e) * int32(q3Quant(hmask, qs, e)))
		}
		sums.add(f16at(b[108:])*y.d, &aux)
	}
	return sums.total(0)
}

// dotK45 is the common body of ggml_vec_dot_q4_K_q8_K and
// ggml_vec_dot_q5_K_q8_K (generic): the mins are applied through the Q8_K
// block sums (sum -= dmin*dy*sum(bsums*m)) as each super-block is visited,
// the scaled quant products go through the eight lanes.
func dotK45(w, x []byte, n, blockBytes int, quant func(b []byte, e int) uint8) float32 {
	var sums lanes8
	var sumf float32
	for i := range n / qkK {
		b := w[i*blockBytes : (i+1)*blockBytes]
		y := q8KAt(x, i)
		var scales, mins [8]int32
		for j := range 8 {
			sc, m := scaleMinK4(j, b[4:16])
			scales[j], mins[j] = int32(sc), int32(m)
		}
		var sumi int32
		for j := range 16 {
			sumi += y.bsums[j] * mins[j/2]
		}
		var aux [8]int32
		for e := range qkK {
			aux[e%8] += scales[e/32] * (y.q(e) * int32(quant(b, e)))
		}
		sums.add(f16at(b[0:])*y.d, &aux)
		sumf -= float32(f16at(b[2:]) * y.d * float32(sumi))
	}
	return sums.total(sumf)
}

func dotQ4_K(w, x []byte, n int) float32 {
	return dotK45(w, x, n, 144, func(b []byte, e int) uint8 { return nibbleK(b[16:144], e) })
}

func dotQ5_K(w, x []byte, n int) float32 {
	return dotK45(w, x, n, 176, func(b []byte, e int) uint8 { return q5KQuant(b[16:48], b[48:176], e) })
}

// dotQ6_K is ggml_vec_dot_q6_K_q8_K (generic).
func dotQ6_K(w, x []byte, n int) float32 {
	var sums lanes8
	for i := range n / qkK {
		b := w[i*210 : (i+1)*210]
		y := q8KAt(x, i)
		ql, qh, sc := b[0:128], b[128:192], b[192:208]
		var aux [8]int32
		for e := range qkK {
			aux[e%8] += int32(int8(sc[e/16])) * (y.q(e) * int32(q6Quant(ql, qh, e)))
		}
		sums.add(f16at(b[208:])*y.d, &aux)
	}
	return sums.total(0)
}
