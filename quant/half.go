package quant

import "math"

// F16ToF32 widens an IEEE 754 binary16 value to float32. Every half value,
// subnormals included, is exactly representable in float32, so the
// conversion is exact (ggml's GGML_FP16_TO_FP32). NaN payloads are kept
// (shifted into the top of the float32 mantissa), signalling or not.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24, exact in float32
		v := float32(mant) * 0x1p-24
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// F32ToF16 narrows a float32 to IEEE 754 binary16 with round-to-nearest-even,
// the rounding x86 F16C (_cvtss_sh(x, 0)) uses for ggml's GGML_FP32_TO_FP16.
// Values beyond the half range become ±Inf, values too small become
// subnormals or ±0. A NaN stays a NaN: like F16C, the top ten mantissa bits
// are kept and the quiet bit is set.
func F32ToF16(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int32(bits>>23) & 0xff
	mant := bits & 0x7fffff

	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7c00 | 0x200 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}

	e := exp - 127 + 15 // exponent rebiased for half
	if e >= 0x1f {
		return sign | 0x7c00 // overflow before rounding
	}
	if e >= 1 {
		// Normal half: keep 10 of 23 mantissa bits, round the 13 dropped
		// bits to nearest even. A carry out of the mantissa correctly
		// bumps the exponent (and turns 65520 and above into Inf).
		h := uint32(e)<<10 | mant>>13
		rem := mant & 0x1fff
		if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	if e < -10 {
		// Below half the smallest subnormal (2^-25): rounds to zero.
		return sign
	}
	// Subnormal half: value = m * 2^(e-14-10) with the implicit bit made
	// explicit; the half result counts units of 2^-24.
	m := mant | 0x800000
	shift := uint32(14 - e)
	h := m >> shift
	rem := m & (1<<shift - 1)
	halfway := uint32(1) << (shift - 1)
	if rem > halfway || (rem == halfway && h&1 == 1) {
		h++ // may carry into the smallest normal, which is correct
	}
	return sign | uint16(h)
}

// BF16ToF32 widens a bfloat16 (the top 16 bits of a float32) to float32.
func BF16ToF32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// F32ToBF16 narrows a float32 to bfloat16 the way ggml_compute_fp32_to_bf16
// does: round to nearest even on the dropped 16 bits, and for a NaN keep the
// top bits and force the quiet bit (0x40 of the bf16 mantissa) so a NaN can
// never round into an Inf.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// F32ToF16Down narrows a float32 to the largest binary16 value not above
// it, and F32ToF16Up to the smallest not below it: rounding outward, so a
// lower and an upper bound stay bounds in half precision (Quest's page
// summaries, kv.Stream.PageBounds). Values beyond the half range go to
// ±65504 or ±Inf, whichever side keeps the bound; a NaN stays a NaN.
func F32ToF16Down(f float32) uint16 {
	h := F32ToF16(f)
	if F16ToF32(h) <= f || f != f {
		return h
	}
	return f16Prev(h)
}

// F32ToF16Up: see F32ToF16Down.
func F32ToF16Up(f float32) uint16 {
	h := F32ToF16(f)
	if F16ToF32(h) >= f || f != f {
		return h
	}
	return f16Next(h)
}

// f16Prev is the next binary16 value toward -Inf from a finite or +Inf h.
func f16Prev(h uint16) uint16 {
	switch {
	case h == 0: // +0: the smallest negative subnormal
		return 0x8001
	case h&0x8000 == 0: // positive: one unit less in magnitude
		return h - 1
	default: // negative: one unit more in magnitude
		return h + 1
	}
}

// f16Next is the next binary16 value toward +Inf from a finite or -Inf h.
func f16Next(h uint16) uint16 {
	switch {
	case h == 0x8000: // -0: the smallest positive subnormal
		return 0x0001
	case h&0x8000 != 0: // negative: one unit less in magnitude
		return h - 1
	default:
		return h + 1
	}
}
