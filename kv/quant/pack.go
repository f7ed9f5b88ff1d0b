package quant

import (
	"math"

	ggml "github.com/kvgo/kvgo/quant"
)

// Shared helpers of the quantized codecs: bit packing, F16 scales with
// directed rounding, and the block-size rule.

// maxStackD is the largest head size whose per-token scratch lives on the
// stack inside Dot and AddWeighted; larger heads (no current model has one)
// fall back to a heap buffer per call.
const maxStackD = 256

// maxF16 is the largest finite half float.
const maxF16 = 65504

// BlockSize is the number of values that share a scale along a head of d
// values when the method asks for blocks of group values: group itself when
// it divides d, d when the head is smaller than the group (stories260K's
// head of 8 with the default group of 32), and otherwise the largest
// divisor of d below group (a head of 40 with group 32 gets blocks of 20).
// Falling back instead of failing keeps every recipe valid for every model:
// NewPage cannot report an error, and the recipe layer does not know d.
func BlockSize(d, group int) int {
	if group <= 0 || group >= d {
		return max(d, 1)
	}
	for b := group; b > 1; b-- {
		if d%b == 0 {
			return b
		}
	}
	return 1
}

// rowBytes is the size of one token's packed codes: d codes of bits bits,
// packed low bits first, the last byte padded.
func rowBytes(d, bits int) int { return (d*bits + 7) / 8 }

// f16 widens a stored half float.
func f16(h uint16) float32 { return ggml.F16ToF32(h) }

// f16Up is the smallest half float >= v (v clamped to the finite half
// range). Scales are rounded up so that every value of a block maps into
// the code range: the round-trip error then stays within half a step of the
// stored scale, with no clipping from the F16 rounding of the scale.
func f16Up(v float32) uint16 {
	if !(v > -maxF16) { // also catches NaN
		if v != v {
			return 0
		}
		return ggml.F32ToF16(-maxF16)
	}
	v = min(v, maxF16)
	h := ggml.F32ToF16(v)
	if f16(h) >= v {
		return h
	}
	if h&0x8000 == 0 {
		return h + 1 // positive: next larger magnitude
	}
	if h == 0x8000 { // -0 below v cannot happen (v > -0 would round to +0)
		return 0
	}
	return h - 1 // negative: next smaller magnitude, toward +Inf
}

// f16Down is the largest half float <= v (v clamped to the finite range).
func f16Down(v float32) uint16 { return f16Up(-v) ^ 0x8000 }

// f16Away rounds v to a half float of at least its magnitude.
func f16Away(v float32) uint16 {
	if v < 0 {
		return f16Down(v)
	}
	return f16Up(v)
}

// roundClamp rounds v to floor(v+0.5) (ggml's rounding for Q4_0) and
// clamps it to [lo, hi]; NaN maps to lo. Every encoder uses it, so a
// non-finite input can never produce an out-of-range code.
func roundClamp(v float32, lo, hi int32) int32 {
	f := math.Floor(float64(v) + 0.5)
	if !(f >= float64(lo)) {
		return lo
	}
	if f > float64(hi) {
		return hi
	}
	return int32(f)
}

// pack writes codes (each < 1<<bits) into dst, low bits first.
func pack(dst []byte, codes []uint8, bits int) {
	clear(dst)
	switch bits {
	case 8:
		copy(dst, codes)
	case 4:
		for c, u := range codes {
			dst[c>>1] |= u << (4 * (c & 1))
		}
	case 2:
		for c, u := range codes {
			dst[c>>2] |= u << (2 * (c & 3))
		}
	}
}

// unpack writes the d codes of row into dst as floats, minus off (8 for
// the signed nibbles of Q4_0, 0 otherwise). For 8 bits, signed selects
// int8 codes (Q8_0).
func unpack(row []byte, dst []float32, bits int, off float32, signed bool) {
	d := len(dst)
	switch bits {
	case 8:
		row = row[:d]
		if signed {
			for c, b := range row {
				dst[c] = float32(int8(b))
			}
		} else {
			for c, b := range row {
				dst[c] = float32(b)
			}
		}
	case 4:
		h := d >> 1
		row = row[:(d+1)>>1]
		for k := 0; k < h; k++ {
			b := row[k]
			dst[2*k] = float32(b&15) - off
			dst[2*k+1] = float32(b>>4) - off
		}
		if d&1 != 0 {
			dst[d-1] = float32(row[h]&15) - off
		}
	case 2:
		h := d >> 2
		row = row[:(d+3)>>2]
		for k := 0; k < h; k++ {
			b := row[k]
			x := dst[4*k : 4*k+4]
			x[0] = float32(b & 3)
			x[1] = float32(b >> 2 & 3)
			x[2] = float32(b >> 4 & 3)
			x[3] = float32(b >> 6)
		}
		for c := 4 * h; c < d; c++ {
			dst[c] = float32(row[c>>2] >> (2 * (c & 3)) & 3)
		}
	}
}

// scratch returns a buffer of n floats: buf when it is large enough (a
// stack array of the caller), else a fresh heap slice.
func scratch(buf []float32, n int) []float32 {
	if n <= len(buf) {
		return buf[:n]
	}
	return make([]float32, n)
}
