package kernel

import (
	"encoding/binary"
	"math"

	"github.com/kvgo/kvgo/quant"
)

// The pure-Go dot products below are the generic path of MatMul. Each
// computes exactly what the corresponding reference in package quant
// computes, bit for bit (the same integer block sums, and the same float32
// operations in the same order), without quant.Dot's per-call argument
// checks and per-element closures; TestGenericDotsMatchQuant holds them to
// that. w holds nb blocks of the weight type, x the activation in its
// VecDotType.

func f16le(b []byte) float32 { return quant.F16ToF32(binary.LittleEndian.Uint16(b)) }

// dotQ8_0Go is ggml_vec_dot_q8_0_q8_0: sum += sumi*(dx*dy).
func dotQ8_0Go(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		wb, xb := w[i*34:i*34+34], x[i*34:i*34+34]
		var sumi int32
		for j := range 32 {
			sumi += int32(int8(wb[2+j])) * int32(int8(xb[2+j]))
		}
		sumf += float32(float32(sumi) * float32(f16le(wb)*f16le(xb)))
	}
	return sumf
}

// dotQ4_0Go is ggml_vec_dot_q4_0_q8_0: sum += sumi*dx*dy.
func dotQ4_0Go(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		wb, xb := w[i*18:i*18+18], x[i*34:i*34+34]
		var sumi int32
		for j := range 16 {
			sumi += (int32(wb[2+j]&0xf) - 8) * int32(int8(xb[2+j]))
			sumi += (int32(wb[2+j]>>4) - 8) * int32(int8(xb[18+j]))
		}
		sumf += float32(float32(sumi) * f16le(wb) * f16le(xb))
	}
	return sumf
}

// dotQ5_0Go is ggml_vec_dot_q5_0_q8_0: sum += dx*dy*sumi.
func dotQ5_0Go(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		wb, xb := w[i*22:i*22+22], x[i*34:i*34+34]
		qh := binary.LittleEndian.Uint32(wb[2:])
		var sumi int32
		for j := range 16 {
			lo := int32(wb[6+j]&0xf) | int32(qh>>j&1)<<4
			hi := int32(wb[6+j]>>4) | int32(qh>>(j+16)&1)<<4
			sumi += (lo - 16) * int32(int8(xb[2+j]))
			sumi += (hi - 16) * int32(int8(xb[18+j]))
		}
		sumf += float32(f16le(wb) * f16le(xb) * float32(sumi))
	}
	return sumf
}

// q8K returns the scale, quants and block sums of Q8_K super-block i.
func q8K(x []byte, i int) (d float32, q []byte, bsums []byte) {
	b := x[i*292 : i*292+292]
	return math.Float32frombits(binary.LittleEndian.Uint32(b)), b[4:260], b[260:292]
}

// k4ScalesMins unpacks the eight 6-bit scales and mins of a Q4_K/Q5_K
// super-block (get_scale_min_k4).
func k4ScalesMins(p []byte) (sc, m [8]int32) {
	for j := range 4 {
		sc[j], m[j] = int32(p[j]&63), int32(p[j+4]&63)
		sc[j+4] = int32(p[j+8]&0xf | (p[j]>>6)<<4)
		m[j+4] = int32(p[j+8]>>4 | (p[j+4]>>6)<<4)
	}
	return sc, m
}

// dotK45Go is ggml_vec_dot_q4_K_q8_K (fifth bits nil) and
// ggml_vec_dot_q5_K_q8_K: eight lanes of integer sums per super-block
// (lane e%8), scaled by d*dy into eight float32 partial sums; the minimums
// go through the block sums, scaled by dmin*dy, into a running total that
// the lanes are added to at the end.
func dotK45Go(w, x []byte, nb, blockBytes int, five bool) float32 {
	var lanes [8]float32
	var sumf float32
	for i := range nb {
		b := w[i*blockBytes : (i+1)*blockBytes]
		yd, yq, bs := q8K(x, i)
		sc, mn := k4ScalesMins(b[4:16])
		var sumi int32
		for j := range 16 {
			sumi += int32(int16(binary.LittleEndian.Uint16(bs[2*j:]))) * mn[j/2]
		}
		qs, qh := b[16:144], []byte(nil)
		if five {
			qs, qh = b[48:176], b[16:48]
		}
		var aux [8]int32
		for j := range 8 { // 32-element sub-blocks
			c, shift := j/2, uint(4*(j%2))
			for l := range 32 {
				q := int32(qs[32*c+l]>>shift) & 0xf
				if five {
					q |= int32(qh[l]>>j&1) << 4
				}
				aux[l%8] += sc[j] * (int32(int8(yq[32*j+l])) * q)
			}
		}
		d := f16le(b[0:]) * yd
		for l := range 8 {
			lanes[l] += float32(d * float32(aux[l]))
		}
		sumf -= float32(f16le(b[2:]) * yd * float32(sumi))
	}
	for l := range 8 {
		sumf += lanes[l]
	}
	return sumf
}

// dotQ6_KGo is ggml_vec_dot_q6_K_q8_K (generic).
func dotQ6_KGo(w, x []byte, nb int) float32 {
	var lanes [8]float32
	for i := range nb {
		b := w[i*210 : (i+1)*210]
		yd, yq, _ := q8K(x, i)
		ql, qh, sc := b[0:128], b[128:192], b[192:208]
		var aux [8]int32
		for h := range 2 {
			for g := range 4 {
				shift := uint(4 * (g / 2))
				for l := range 32 {
					lo := int32(ql[64*h+32*(g%2)+l]>>shift) & 0xf
					hi := int32(qh[32*h+l]>>(2*g)) & 3
					e := 128*h + 32*g + l
					aux[l%8] += int32(int8(sc[e/16])) * (int32(int8(yq[e])) * (lo | hi<<4 - 32))
				}
			}
		}
		d := f16le(b[208:]) * yd
		for l := range 8 {
			lanes[l] += float32(d * float32(aux[l]))
		}
	}
	var sumf float32
	for l := range 8 {
		sumf += lanes[l]
	}
	return sumf
}
