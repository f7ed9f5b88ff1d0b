package kernel

import "github.com/kvgo/kvgo/quant"

// iq4Values is ggml's kvalues_iq4nl, the values of the 4-bit indices of
// IQ4_NL and IQ4_XS.
var iq4Values = quant.IQ4Values()

// dotIQ4NLGo is ggml_vec_dot_iq4_nl_q8_0 (generic), as quant.Dot computes
// it: sum += (dy*dx)*sumi.
func dotIQ4NLGo(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		wb, xb := w[i*18:i*18+18], x[i*34:i*34+34]
		var sumi int32
		for j := range 16 {
			sumi += int32(int8(xb[2+j])) * int32(iq4Values[wb[2+j]&0xf])
			sumi += int32(int8(xb[18+j])) * int32(iq4Values[wb[2+j]>>4])
		}
		sumf += float32(float32(f16le(xb)*f16le(wb)) * float32(sumi))
	}
	return sumf
}

// dotIQ4XSGo is ggml_vec_dot_iq4_xs_q8_K (generic), as quant.Dot computes
// it: per 32-element group sum += (d*dy*(ls-32))*sumi.
func dotIQ4XSGo(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		b := w[i*136 : (i+1)*136]
		yd, yq, _ := q8K(x, i)
		d4d8 := f16le(b) * yd
		sh := uint32(b[2]) | uint32(b[3])<<8
		for g := range 8 {
			ls := int32(b[4+g/2]>>(4*(g%2))&0xf) | int32(sh>>(2*g)&3)<<4
			dl := d4d8 * float32(ls-32)
			qs, q8 := b[8+16*g:8+16*g+16], yq[32*g:32*g+32]
			var sumi int32
			for j := range 16 {
				sumi += int32(int8(q8[j])) * int32(iq4Values[qs[j]&0xf])
				sumi += int32(int8(q8[j+16])) * int32(iq4Values[qs[j]>>4])
			}
			sumf += float32(dl * float32(sumi))
		}
	}
	return sumf
}
