package quant

import "encoding/binary"

// IQ4_NL and IQ4_XS (ggml-common.h) store 4-bit indices into one fixed
// table of 16 int8 values spaced non-linearly (denser near zero, where
// weights are), scaled per block:
//
//	IQ4_NL  d f16 | qs[16]                                  32 elements
//	IQ4_XS  d f16 | scales_h u16 | scales_l[4] | qs[128]     256 elements
//
// Within each 32-element group, qs[j] holds element j in its low nibble and
// element j+16 in its high one, as in Q4_0. IQ4_XS gives each of its eight
// groups a 6-bit scale ls (low four bits in scales_l, two high bits in
// scales_h) and the group's values are d*(ls-32)*table[q].
//
// kvgo reads these types (dequantize, dot products); it does not write
// them: ggml's IQ4 quantizers search scales against an importance matrix,
// and files come from llama-quantize. Quantize reports that clearly.

// iq4Values is ggml's kvalues_iq4nl.
var iq4Values = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// IQ4Values returns the 16 values an IQ4_NL or IQ4_XS index stands for,
// for kernels that look them up with a byte shuffle.
func IQ4Values() [16]int8 { return iq4Values }

// decodeIQ4_NL is dequantize_row_iq4_nl: x = d*table[q].
func decodeIQ4_NL(b []byte, y []float32) {
	d := f16at(b)
	for j := range qk / 2 {
		y[j] = d * float32(iq4Values[b[2+j]&0xf])
		y[j+qk/2] = d * float32(iq4Values[b[2+j]>>4])
	}
}

// iq4XSScale returns the 6-bit scale of group ib of an IQ4_XS block, minus
// 32.
func iq4XSScale(b []byte, ib int) int32 {
	sh := binary.LittleEndian.Uint16(b[2:])
	ls := int32(b[4+ib/2]>>(4*(ib%2))&0xf) | int32(sh>>(2*ib)&3)<<4
	return ls - 32
}

// decodeIQ4_XS is dequantize_row_iq4_xs: x = (d*(ls-32))*table[q].
func decodeIQ4_XS(b []byte, y []float32) {
	d := f16at(b)
	for ib := range qkK / 32 {
		dl := d * float32(iq4XSScale(b, ib))
		qs := b[8+16*ib : 8+16*ib+16]
		for j := range 16 {
			y[32*ib+j] = dl * float32(iq4Values[qs[j]&0xf])
			y[32*ib+j+16] = dl * float32(iq4Values[qs[j]>>4])
		}
	}
}

// dotIQ4_NL is ggml_vec_dot_iq4_nl_q8_0 (generic): sum += (dy*dx)*sumi.
func dotIQ4_NL(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qk {
		b := w[i*18 : (i+1)*18]
		dy, qy := q8Block(x, i)
		var sumi1, sumi2 int32
		for j := range qk / 2 {
			sumi1 += int32(int8(qy[j])) * int32(iq4Values[b[2+j]&0xf])
			sumi2 += int32(int8(qy[j+qk/2])) * int32(iq4Values[b[2+j]>>4])
		}
		sumf += float32(float32(dy*f16at(b)) * float32(sumi1+sumi2))
	}
	return sumf
}

// dotIQ4_XS is ggml_vec_dot_iq4_xs_q8_K (generic): per 32-element group
// sum += (d*dy*(ls-32))*sumi, in group order.
func dotIQ4_XS(w, x []byte, n int) float32 {
	var sumf float32
	for i := range n / qkK {
		b := w[i*136 : (i+1)*136]
		y := q8KAt(x, i)
		d4d8 := f16at(b) * y.d
		for ib := range qkK / 32 {
			dl := d4d8 * float32(iq4XSScale(b, ib))
			qs := b[8+16*ib:]
			var sumi1, sumi2 int32
			for j := range 16 {
				sumi1 += y.q(32*ib+j) * int32(iq4Values[qs[j]&0xf])
				sumi2 += y.q(32*ib+j+16) * int32(iq4Values[qs[j]>>4])
			}
			sumf += float32(dl * float32(sumi1+sumi2))
		}
	}
	return sumf
}
