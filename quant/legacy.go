package quant

import (
	"encoding/binary"
	"math"
)

// Legacy block layouts (ggml-common.h), all little-endian, 32 elements:
//
//	Q4_0  d f16 | qs[16]                 x = (q-8)*d,   q in 0..15
//	Q4_1  d f16 | m f16 | qs[16]         x = q*d + m,   q in 0..15
//	Q5_0  d f16 | qh u32 | qs[16]        x = (q-16)*d,  q in 0..31
//	Q5_1  d f16 | m f16 | qh u32 | qs[16] x = q*d + m,  q in 0..31
//	Q8_0  d f16 | qs[32] int8            x = q*d
//	Q8_1  d f16 | s f16 | qs[32] int8    x = q*d, s = d*sum(q)
//
// The 4-bit types store element j in the low nibble of qs[j] and element
// j+16 in the high nibble. The 5-bit types keep the fifth bit of element j in
// bit j of qh.

// fmaf returns a*b+c rounded once to float32, i.e. C's fmaf. The product of
// two float32s is exact in float64; the sum is then computed with its exact
// rounding error (TwoSum) and rounded to odd, from which a final rounding to
// float32 is correct (53 >= 24+2 bits).
func fmaf(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b)) // exact
	cc := float64(c)
	s := p + cc
	bv := s - p
	err := (p - (s - bv)) + (cc - bv)
	if err != 0 {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			if (err > 0) == (s > 0) {
				bits++ // toward larger magnitude
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

// truncClamp converts v toward zero (C's float-to-integer conversion) and
// clamps the result to [lo, hi]. The clamp only matters for inputs the C code
// leaves undefined (NaN, Inf); for finite data it is a no-op.
func truncClamp(v float32, lo, hi int32) int32 {
	if !(v > float32(lo)) { // also catches NaN
		return lo
	}
	if v >= float32(hi) {
		return hi
	}
	return int32(v)
}

// roundClamp rounds half away from zero (C's roundf) and clamps to [lo, hi].
func roundClamp(v float32, lo, hi int32) int32 {
	if !(v > float32(lo)) {
		return lo
	}
	if v >= float32(hi) {
		return hi
	}
	return int32(math.Round(float64(v)))
}

// absMaxSigned returns the element of largest magnitude (the first one on
// ties), keeping its sign, as the symmetric ggml quantizers do.
func absMaxSigned(x []float32) float32 {
	var amax, max float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, max = a, v
		}
	}
	return max
}

// minMax returns the smallest and largest element, starting from ±FLT_MAX
// like quantize_row_q4_1_ref.
func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// inverse returns 1/d, or 0 for d == 0 (ggml's "id = d ? 1.0f/d : 0.0f").
func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// encodeQ4_0 is quantize_row_q4_0_ref: d = max/-8 where max is the signed
// element of largest magnitude, so that element maps to q = 0 exactly, and
// q = min(15, trunc(x*(1/d) + 8.5)).
//
// Rounding: x*id + 8.5 is evaluated as one fused multiply-add. That is what
// the x86-64 build of llama.cpp that made the reference files computes (the
// compiler contracts the two statements into an FMA), and what gguf-py's
// reference implementation emulates; see the golden test.
func encodeQ4_0(x []float32, b []byte) {
	d := absMaxSigned(x) / -8
	id := inverse(d)
	putF16(b, d)
	qs := b[2:18]
	for j := 0; j < qk/2; j++ {
		lo := truncClamp(fmaf(x[j], id, 8.5), 0, 15)
		hi := truncClamp(fmaf(x[j+qk/2], id, 8.5), 0, 15)
		qs[j] = uint8(lo) | uint8(hi)<<4
	}
}

// decodeQ4_0 is dequantize_row_q4_0: x = (q-8)*d.
func decodeQ4_0(b []byte, y []float32) {
	d := f16at(b)
	qs := b[2:18]
	for j := 0; j < qk/2; j++ {
		y[j] = float32(int32(qs[j]&0xf)-8) * d
		y[j+qk/2] = float32(int32(qs[j]>>4)-8) * d
	}
}

// encodeQ4_1 is quantize_row_q4_1_ref: an affine map of [min, max] onto
// 0..15 with d = (max-min)/15, q = min(15, trunc((x-min)*(1/d) + 0.5)), the
// multiply-add fused as in encodeQ4_0.
func encodeQ4_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 15
	id := inverse(d)
	putF16(b, d)
	putF16(b[2:], lo)
	qs := b[4:20]
	for j := 0; j < qk/2; j++ {
		q0 := truncClamp(fmaf(x[j]-lo, id, 0.5), 0, 15)
		q1 := truncClamp(fmaf(x[j+qk/2]-lo, id, 0.5), 0, 15)
		qs[j] = uint8(q0) | uint8(q1)<<4
	}
}

// decodeQ4_1 is dequantize_row_q4_1: x = q*d + m (product rounded first).
func decodeQ4_1(b []byte, y []float32) {
	d, m := f16at(b), f16at(b[2:])
	qs := b[4:20]
	for j := 0; j < qk/2; j++ {
		y[j] = float32(float32(qs[j]&0xf)*d) + m
		y[j+qk/2] = float32(float32(qs[j]>>4)*d) + m
	}
}

// encodeQ5_0 is quantize_row_q5_0_ref: like Q4_0 with 5 bits, d = max/-16,
// q = min(31, trunc(x*(1/d) + 16.5)) with a fused multiply-add.
func encodeQ5_0(x []float32, b []byte) {
	d := absMaxSigned(x) / -16
	id := inverse(d)
	putF16(b, d)
	var qh uint32
	qs := b[6:22]
	for j := 0; j < qk/2; j++ {
		q0 := uint32(truncClamp(fmaf(x[j], id, 16.5), 0, 31))
		q1 := uint32(truncClamp(fmaf(x[j+qk/2], id, 16.5), 0, 31))
		qs[j] = uint8(q0&0xf) | uint8(q1&0xf)<<4
		qh |= (q0 >> 4) << j
		qh |= (q1 >> 4) << (j + qk/2)
	}
	binary.LittleEndian.PutUint32(b[2:], qh)
}

// q5 assembles the 5-bit quant of element j (0..31) of a Q5_0/Q5_1 block.
func q5(qs []byte, qh uint32, j int) int32 {
	var lo uint8
	if j < qk/2 {
		lo = qs[j] & 0xf
	} else {
		lo = qs[j-qk/2] >> 4
	}
	return int32(lo) | int32((qh>>j)&1)<<4
}

// decodeQ5_0 is dequantize_row_q5_0: x = (q-16)*d.
func decodeQ5_0(b []byte, y []float32) {
	d := f16at(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := range qk {
		y[j] = float32(q5(qs, qh, j)-16) * d
	}
}

// encodeQ5_1 is quantize_row_q5_1_ref: d = (max-min)/31,
// q = trunc((x-min)*(1/d) + 0.5) with a fused multiply-add. The C code has no
// clamp here; for finite input q never exceeds 31, and we clamp only to keep
// non-finite input well defined.
func encodeQ5_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 31
	id := inverse(d)
	putF16(b, d)
	putF16(b[2:], lo)
	var qh uint32
	qs := b[8:24]
	for j := 0; j < qk/2; j++ {
		q0 := uint32(truncClamp(fmaf(x[j]-lo, id, 0.5), 0, 31))
		q1 := uint32(truncClamp(fmaf(x[j+qk/2]-lo, id, 0.5), 0, 31))
		qs[j] = uint8(q0&0xf) | uint8(q1&0xf)<<4
		qh |= (q0 >> 4) << j
		qh |= (q1 >> 4) << (j + qk/2)
	}
	binary.LittleEndian.PutUint32(b[4:], qh)
}

// decodeQ5_1 is dequantize_row_q5_1: x = q*d + m.
func decodeQ5_1(b []byte, y []float32) {
	d, m := f16at(b), f16at(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := range qk {
		y[j] = float32(float32(q5(qs, qh, j))*d) + m
	}
}

// q8Scale returns quantize_row_q8_0_ref's scale d = max|x|/127 and its
// inverse. The quants are computed with this unrounded d; only the stored
// copy is rounded to f16.
func q8Scale(x []float32) (d, id float32) {
	var amax float32
	for _, v := range x {
		// C's MAX(a, b) is a > b ? a : b, which differs from Go's max
		// for NaN and signed zeros.
		if a := abs32(v); !(amax > a) {
			amax = a
		}
	}
	d = amax / 127
	return d, inverse(d)
}

// encodeQ8_0 is quantize_row_q8_0_ref: q = roundf(x*(1/d)), half away from
// zero, with d = max|x|/127.
func encodeQ8_0(x []float32, b []byte) {
	d, id := q8Scale(x)
	putF16(b, d)
	for j, v := range x {
		b[2+j] = uint8(int8(roundClamp(v*id, -128, 127)))
	}
}

// decodeQ8_0 is dequantize_row_q8_0: x = q*d.
func decodeQ8_0(b []byte, y []float32) {
	d := f16at(b)
	for j := range qk {
		y[j] = float32(int8(b[2+j])) * d
	}
}

// encodeQ8_1 is quantize_row_q8_1_ref: the Q8_0 quants plus s = sum(q)*d
// (with the unrounded d) stored as f16, which lets the Q4_1/Q5_1 dot product
// apply the block minimum without touching the quants.
func encodeQ8_1(x []float32, b []byte) {
	d, id := q8Scale(x)
	putF16(b, d)
	var sum int32
	for j, v := range x {
		q := roundClamp(v*id, -128, 127)
		b[4+j] = uint8(int8(q))
		sum += q
	}
	putF16(b[2:], float32(sum)*d)
}

// decodeQ8_1 returns q*d; ggml has no dequantize_row_q8_1, this mirrors Q8_0.
func decodeQ8_1(b []byte, y []float32) {
	d := f16at(b)
	for j := range qk {
		y[j] = float32(int8(b[4+j])) * d
	}
}
