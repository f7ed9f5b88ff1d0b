package quant

import "math"

// The activation quantizers below are what ggml's CPU backend runs on x86
// with AVX2 (quantize_row_q8_0 and quantize_row_q8_1 in ggml-cpu-quants.c,
// and quantize_mat_q8_0 in ggml-cpu-aarch64.cpp for the repacked Q4_0
// layout): the build that made the goldens in ../shared. They differ from
// the reference quantizers (quantize_row_q8_0_ref, used by llama-quantize
// and by Quantize here) in two ways, each of which can move a quant by one:
//
//   - the multiplier is 127/max|x|, not 1/(max|x|/127);
//   - the product is rounded half to even (_mm256_round_ps), not half away
//     from zero (roundf).
//
// The stored scale d = max|x|/127 is the same. Matching them is what brings
// kvgo's perplexity on the quantized stories260K files to llama.cpp's
// (docs/QUALITY.md). Q8_K activations use the reference quantizer on x86
// too (quantize_row_q8_K has no x86 path), so Q8_K is Quantize's.

// q8ScaleX86 returns the scale d = max|x|/127 and the multiplier
// 127/max|x| (0 when every element is 0) of ggml's AVX2 Q8_0/Q8_1
// activation quantizers.
func q8ScaleX86(x []float32) (d, id float32) {
	var amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax = a
		}
	}
	d = amax / 127
	if amax != 0 {
		id = 127 / amax
	}
	return d, id
}

// roundEvenClamp rounds v half to even (the default SSE/AVX rounding) and
// clamps to [lo, hi] (the saturating packs of the AVX2 code; finite inputs
// never reach the clamp).
func roundEvenClamp(v float32, lo, hi int32) int32 {
	if !(v > float32(lo)) {
		return lo
	}
	if v >= float32(hi) {
		return hi
	}
	return int32(math.RoundToEven(float64(v)))
}

// encodeQ8_0Act is quantize_row_q8_0 on AVX2.
func encodeQ8_0Act(x []float32, b []byte) {
	d, id := q8ScaleX86(x)
	putF16(b, d)
	for j, v := range x {
		b[2+j] = uint8(int8(roundEvenClamp(v*id, -128, 127)))
	}
}

// encodeQ8_1Act is quantize_row_q8_1 on AVX2: the quants of encodeQ8_0Act
// and s = d*sum(q).
func encodeQ8_1Act(x []float32, b []byte) {
	d, id := q8ScaleX86(x)
	putF16(b, d)
	var sum int32
	for j, v := range x {
		q := roundEvenClamp(v*id, -128, 127)
		b[4+j] = uint8(int8(q))
		sum += q
	}
	putF16(b[2:], float32(sum)*d)
}
