package kernel

import "encoding/binary"

// Pure-Go dot products of Q4_1, Q5_1 (against Q8_1 activations), Q2_K and
// Q3_K (against Q8_K), bit-exact with package quant's reference like those
// of qdot.go, which TestGenericDotsMatchQuant holds them to.

// q8_1At returns d, s = d*sum(q) and the quants of Q8_1 block i.
func q8_1At(x []byte, i int) (d, s float32, q []byte) {
	b := x[i*36 : i*36+36]
	return f16le(b), f16le(b[2:]), b[4:36]
}

// dotQ4_1Go is ggml_vec_dot_q4_1_q8_1: sum += dx*dy*sumi + m*s.
func dotQ4_1Go(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		b := w[i*20 : i*20+20]
		dy, sy, qy := q8_1At(x, i)
		var sumi int32
		for j := range 16 {
			sumi += int32(b[4+j]&0xf) * int32(int8(qy[j]))
			sumi += int32(b[4+j]>>4) * int32(int8(qy[j+16]))
		}
		sumf += float32(f16le(b)*dy*float32(sumi)) + float32(f16le(b[2:])*sy)
	}
	return sumf
}

// dotQ5_1Go is ggml_vec_dot_q5_1_q8_1: sum += dx*dy*sumi + m*s.
func dotQ5_1Go(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		b := w[i*24 : i*24+24]
		qh := binary.LittleEndian.Uint32(b[4:])
		dy, sy, qy := q8_1At(x, i)
		var sumi int32
		for j := range 16 {
			lo := int32(b[8+j]&0xf) | int32(qh>>j&1)<<4
			hi := int32(b[8+j]>>4) | int32(qh>>(j+16)&1)<<4
			sumi += lo * int32(int8(qy[j]))
			sumi += hi * int32(int8(qy[j+16]))
		}
		sumf += float32(f16le(b)*dy*float32(sumi)) + float32(f16le(b[2:])*sy)
	}
	return sumf
}

// dotQ2_KGo is ggml_vec_dot_q2_K_q8_K (generic): sum += d*dy*Σ sc*q*y -
// dmin*dy*Σ bsums*m.
func dotQ2_KGo(w, x []byte, nb int) float32 {
	var sumf float32
	for i := range nb {
		b := w[i*84 : (i+1)*84]
		yd, yq, bs := q8K(x, i)
		sc, qs := b[0:16], b[16:80]
		var summs int32
		for j := range 16 {
			summs += int32(int16(binary.LittleEndian.Uint16(bs[2*j:]))) * int32(sc[j]>>4)
		}
		dall := yd * f16le(b[80:])
		dmin := yd * f16le(b[82:])
		var isum int32
		for h := range 2 { // 128-element halves
			for g := range 4 { // 32 elements at shift 2g
				for k := range 2 { // 16-element groups, one scale each
					var isuml int32
					for l := 16 * k; l < 16*k+16; l++ {
						isuml += int32(int8(yq[128*h+32*g+l])) * int32(qs[32*h+l]>>(2*g)&3)
					}
					isum += int32(sc[8*h+2*g+k]&0xf) * isuml
				}
			}
		}
		sumf += float32(dall*float32(isum)) - float32(dmin*float32(summs))
	}
	return sumf
}

// q3KScales unpacks Q3_K's sixteen 6-bit scales, minus 32.
func q3KScales(p []byte) (s [16]int32) {
	for j := range 16 {
		lo := p[j%8] >> (4 * (j / 8)) & 0xf
		hi := (p[8+j%4] >> (2 * (j / 4))) & 3
		s[j] = int32(lo|hi<<4) - 32
	}
	return s
}

// dotQ3_KGo is ggml_vec_dot_q3_K_q8_K (generic): eight lanes of integer
// sums per super-block (lane e%8), scaled by d*dy into eight float32
// partial sums added at the end.
func dotQ3_KGo(w, x []byte, nb int) float32 {
	var lanes [8]float32
	for i := range nb {
		b := w[i*110 : (i+1)*110]
		yd, yq, _ := q8K(x, i)
		hmask, qs := b[0:32], b[32:96]
		sc := q3KScales(b[96:108])
		var aux [8]int32
		for h := range 2 {
			for g := range 4 {
				m := byte(1) << (4*h + g)
				for l := range 32 {
					q := int32(qs[32*h+l]>>(2*g)) & 3
					if hmask[l]&m == 0 {
						q -= 4
					}
					e := 128*h + 32*g + l
					aux[l%8] += sc[e/16] * (int32(int8(yq[e])) * q)
				}
			}
		}
		d := f16le(b[108:]) * yd
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
