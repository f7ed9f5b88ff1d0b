package quant

import (
	"encoding/binary"
	"math"
)

// K-quant super-block layouts (ggml-common.h), 256 elements each:
//
//	Q2_K  scales[16] | qs[64] | d f16 | dmin f16          84 bytes
//	Q3_K  hmask[32] | qs[64] | scales[12] | d f16         110 bytes
//	Q4_K  d f16 | dmin f16 | scales[12] | qs[128]         144 bytes
//	Q5_K  d f16 | dmin f16 | scales[12] | qh[32] | qs[128] 176 bytes
//	Q6_K  ql[128] | qh[64] | scales[16] int8 | d f16      210 bytes
//	Q8_K  d f32 | qs[256] int8 | bsums[16] int16          292 bytes
//
// Q2_K, Q3_K and Q6_K use 16 sub-blocks of 16 elements, Q4_K and Q5_K 8
// sub-blocks of 32. Element e always uses sub-block scale e/16 (or e/32).

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is
// below it is treated as all zero.
const groupMaxEps = 1e-15

// nearestInt is ggml's nearest_int: adding 1.5*2^23 in float32 rounds to an
// integer with ties to even, which is then read from the mantissa bits. It
// is only meaningful for |f| <= 2^22 (ggml asserts that); outside that range
// it still returns a deterministic value. The explicit conversion keeps a
// caller's multiplication from being fused into the addition.
func nearestInt(f float32) int32 {
	v := float32(f) + 12582912
	i := int32(math.Float32bits(v))
	return (i & 0x007fffff) - 0x00400000
}

// clamp32 limits v to [lo, hi].
func clamp32(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }

// abs32 is fabsf.
func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }

// makeQXQuants is ggml's make_qx_quants for the case quantize_row_q6_K_ref
// uses (rmse_type 1, no importance weights, so w = x^2): symmetric
// quantization of x to L in [0, 2*nmax) with a scale chosen among 19
// candidate inverse scales -(nmax + 0.1*is)/max by weighted least squares.
// It returns the scale; L holds l+nmax.
func makeQXQuants(nmax int32, x []float32, L []int8) float32 {
	var amax, maxv float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, maxv = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	fn := float32(nmax)
	// sums returns sum(w*x*l) and sum(w*l*l) for the quants of iscale and
	// stores l+nmax into L if store is set.
	sums := func(iscale float32, store bool) (sumlx, suml2 float32) {
		for i, xi := range x {
			l := clamp32(nearestInt(iscale*xi), -nmax, nmax-1)
			if store {
				L[i] = int8(l + nmax)
			}
			w := float32(xi * xi)
			fl := float32(l)
			sumlx += float32(w * xi * fl)
			suml2 += float32(w * fl * fl)
		}
		return sumlx, suml2
	}
	sumlx, suml2 := sums(-fn/maxv, true)
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := int32(-9); is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale := -(fn + float32(float32(0.1)*float32(is))) / maxv
		slx, sl2 := sums(iscale, false)
		if sl2 > 0 && slx*slx > best*sl2 {
			sums(iscale, true)
			scale = slx / sl2
			best = scale * slx
		}
	}
	return scale
}

// makeQ3Quants is ggml's make_q3_quants with do_rmse = true, as used by
// quantize_row_q3_K_ref: start from l = round(-nmax*x/max), then up to five
// passes of coordinate descent on each l, keeping a change when it improves
// the x^2-weighted fit sumlx^2/suml2. It returns the scale; L holds l+nmax.
func makeQ3Quants(nmax int32, x []float32, L []int8) float32 {
	var amax, maxv float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, maxv = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	iscale := -float32(nmax) / maxv
	var sumlx, suml2 float32
	for i, xi := range x {
		l := clamp32(nearestInt(iscale*xi), -nmax, nmax-1)
		L[i] = int8(l)
		w := float32(xi * xi)
		fl := float32(l)
		sumlx += float32(w * xi * fl)
		suml2 += float32(w * fl * fl)
	}
	for range 5 {
		changed := false
		for i, xi := range x {
			w := float32(xi * xi)
			li := float32(L[i])
			slx := sumlx - float32(w*xi*li)
			if slx <= 0 {
				continue
			}
			sl2 := suml2 - float32(w*li*li)
			nl := clamp32(nearestInt(xi*sl2/slx), -nmax, nmax-1)
			if nl == int32(L[i]) {
				continue
			}
			fn := float32(nl)
			slx += float32(w * xi * fn)
			sl2 += float32(w * fn * fn)
			if sl2 > 0 && slx*slx*suml2 > sumlx*sumlx*sl2 {
				L[i] = int8(nl)
				sumlx, suml2 = slx, sl2
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for i := range L {
		L[i] += int8(nmax)
	}
	return sumlx / suml2
}

// makeQKX2Quants is ggml's make_qkx2_quants: asymmetric quantization
// x ~ scale*l + min with l in [0, nmax] and min <= 0. Starting from the plain
// min/max mapping it tries nstep+1 inverse scales (rmin + rdelta*is + nmax)/
// (max-min), solving the weighted least-squares scale and min for each
// rounding, and keeps the one with the smallest weighted error (absolute if
// useMad, squared otherwise). It returns scale and -min (the_min); L gets the
// quants and laux is scratch of the same length.
func makeQKX2Quants(nmax int32, x, weights []float32, L, laux []uint8,
	rmin, rdelta float32, nstep int32, useMad bool) (scale, theMin float32) {
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < len(x); i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		sumW += weights[i]
		sumX += float32(weights[i] * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(L)
		return 0, -lo
	}
	fn := float32(nmax)
	// errOf is the weighted error of reconstructing x as s*q + m.
	errOf := func(q []uint8, s, m float32) float32 {
		var e float32
		for i, xi := range x {
			diff := float32(float32(s*float32(q[i]))+m) - xi
			if useMad {
				diff = abs32(diff)
			} else {
				diff = float32(diff * diff)
			}
			e += float32(weights[i] * diff)
		}
		return e
	}
	iscale := fn / (hi - lo)
	scale = 1 / iscale
	for i, xi := range x {
		L[i] = uint8(clamp32(nearestInt(iscale*(xi-lo)), 0, nmax))
	}
	bestMad := errOf(L, scale, lo)
	if nstep < 1 {
		return scale, -lo
	}
	for is := int32(0); is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fn) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, xi := range x {
			l := clamp32(nearestInt(iscale*(xi-lo)), 0, nmax)
			laux[i] = uint8(l)
			w, fl := weights[i], float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(w * fl * fl)
			sumXL += float32(w * fl * xi)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if !(D > 0) {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		if mad := errOf(laux, thisScale, thisMin); mad < bestMad {
			copy(L, laux)
			bestMad = mad
			scale, lo = thisScale, thisMin
		}
	}
	return scale, -lo
}

// pack2bit stores 256 2-bit values the way Q2_K and Q3_K lay them out:
// byte 32*h+l holds elements 128*h+l, +32, +64, +96 in bits 0-1, 2-3, 4-5,
// 6-7.
func pack2bit(L []int8, qs []byte) {
	for h := 0; h < 2; h++ {
		for l := 0; l < 32; l++ {
			e := 128*h + l
			qs[32*h+l] = uint8(L[e]) | uint8(L[e+32])<<2 | uint8(L[e+64])<<4 | uint8(L[e+96])<<6
		}
	}
}

// unpack2bit is the inverse of pack2bit for element e.
func unpack2bit(qs []byte, e int) int8 {
	return int8(qs[32*(e/128)+e%32]>>(2*((e%128)/32))) & 3
}

// encodeQ2_K is quantize_row_q2_K_ref: each 16-element sub-block gets an
// asymmetric 2-bit fit (make_qkx2_quants with |x| weights, absolute error);
// the sub-block scales and mins are quantized to 4 bits against the
// super-block maxima d = max_scale/15 and dmin = max_min/15, and the quants
// are then recomputed against the rounded scales.
func encodeQ2_K(x []float32, b []byte) {
	var (
		L              [qkK]int8
		lq, laux       [16]uint8
		weights        [16]float32
		scales, mins   [16]float32
		maxScale, maxM float32
	)
	for j := range 16 {
		sub := x[16*j : 16*j+16]
		for l, v := range sub {
			weights[l] = abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(3, sub, weights[:], lq[:], laux[:], -0.5, 0.1, 15, true)
		for l := range 16 {
			L[16*j+l] = int8(lq[l])
		}
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxM {
			maxM = mins[j]
		}
	}
	sc := b[0:16]
	if maxScale > 0 {
		iscale := 15 / maxScale
		for j := range 16 {
			sc[j] = uint8(nearestInt(iscale * scales[j]))
		}
		putF16(b[80:], maxScale/15)
	} else {
		clear(sc)
		putF16(b[80:], 0)
	}
	if maxM > 0 {
		iscale := 15 / maxM
		for j := range 16 {
			sc[j] |= uint8(nearestInt(iscale*mins[j]) << 4)
		}
		putF16(b[82:], maxM/15)
	} else {
		putF16(b[82:], 0)
	}
	dAll, dMin := f16at(b[80:]), f16at(b[82:])
	for j := range 16 {
		d := dAll * float32(sc[j]&0xf)
		if d == 0 {
			continue
		}
		dm := float32(dMin * float32(sc[j]>>4)) // rounded product, as in C
		for l := range 16 {
			L[16*j+l] = int8(clamp32(nearestInt((x[16*j+l]+dm)/d), 0, 3))
		}
	}
	pack2bit(L[:], b[16:80])
}

// decodeQ2_K is dequantize_row_q2_K: x = d*(sc&15)*q - dmin*(sc>>4).
func decodeQ2_K(b []byte, y []float32) {
	d, dmin := f16at(b[80:]), f16at(b[82:])
	sc, qs := b[0:16], b[16:80]
	for e := range qkK {
		s := sc[e/16]
		dl := d * float32(s&0xf)
		ml := float32(dmin * float32(s>>4))
		y[e] = float32(dl*float32(unpack2bit(qs, e))) - ml
	}
}

// q3Scales unpacks Q3_K's sixteen 6-bit scales (stored with +32 offset) from
// 12 bytes: low nibbles in bytes 0-7 (scales 0-7 low, 8-15 high nibble), the
// top two bits in bytes 8-11 (byte 8+j%4, bit pair j/4).
func q3Scales(p []byte) (s [16]int8) {
	for j := range 16 {
		var lo uint8
		if j < 8 {
			lo = p[j] & 0xf
		} else {
			lo = p[j-8] >> 4
		}
		hi := (p[8+j%4] >> (2 * (j / 4))) & 3
		s[j] = int8(lo|hi<<4) - 32
	}
	return s
}

// q3Quant returns Q3_K element e in [-4, 3]: two low bits from qs, and 4 is
// subtracted when its hmask bit (byte e%32, bit e/32) is clear.
func q3Quant(hmask, qs []byte, e int) int8 {
	q := unpack2bit(qs, e)
	if hmask[e%32]&(1<<(e/32)) == 0 {
		q -= 4
	}
	return q
}

// encodeQ3_K is quantize_row_q3_K_ref: symmetric 3-bit quants per
// 16-element sub-block (make_q3_quants), sub-block scales quantized to
// 6 bits against d = max_scale/-32, quants recomputed with the rounded
// scales, the third bit stored separately in hmask.
func encodeQ3_K(x []float32, b []byte) {
	var (
		L                [qkK]int8
		scales           [16]float32
		maxScale, amaxSc float32
	)
	for j := range 16 {
		scales[j] = makeQ3Quants(4, x[16*j:16*j+16], L[16*j:16*j+16])
		if a := abs32(scales[j]); a > amaxSc {
			amaxSc, maxScale = a, scales[j]
		}
	}
	hmask, qs, sc := b[0:32], b[32:96], b[96:108]
	clear(sc)
	if maxScale != 0 {
		iscale := -32 / maxScale
		for j := range 16 {
			l := uint8(clamp32(int32(int8(nearestInt(iscale*scales[j]))), -32, 31) + 32)
			if j < 8 {
				sc[j] = l & 0xf
			} else {
				sc[j-8] |= (l & 0xf) << 4
			}
			sc[8+j%4] |= (l >> 4) << (2 * (j / 4))
		}
		putF16(b[108:], 1/iscale)
	} else {
		putF16(b[108:], 0)
	}
	dAll := f16at(b[108:])
	s := q3Scales(sc)
	for j := range 16 {
		d := dAll * float32(s[j])
		if d == 0 {
			continue
		}
		for l := range 16 {
			L[16*j+l] = int8(clamp32(nearestInt(x[16*j+l]/d), -4, 3) + 4)
		}
	}
	clear(hmask)
	for e := range qkK {
		if L[e] > 3 {
			hmask[e%32] |= 1 << (e / 32)
			L[e] -= 4
		}
	}
	pack2bit(L[:], qs)
}

// decodeQ3_K is dequantize_row_q3_K: x = d*(scale-32)*q.
func decodeQ3_K(b []byte, y []float32) {
	hmask, qs := b[0:32], b[32:96]
	s := q3Scales(b[96:108])
	d := f16at(b[108:])
	for e := range qkK {
		dl := d * float32(s[e/16])
		y[e] = dl * float32(q3Quant(hmask, qs, e))
	}
}

// scaleMinK4 is ggml's get_scale_min_k4: the 6-bit scale and min of
// sub-block j (0..7) from Q4_K/Q5_K's 12 packed bytes. Sub-blocks 0-3 use
// the low six bits of bytes j and j+4; sub-blocks 4-7 take their low nibbles
// from byte j+4 and their top two bits from the spare top bits of bytes j-4
// (scale) and j (min).
func scaleMinK4(j int, p []byte) (sc, m uint8) {
	if j < 4 {
		return p[j] & 63, p[j+4] & 63
	}
	return p[j+4]&0xf | (p[j-4]>>6)<<4, p[j+4]>>4 | (p[j]>>6)<<4
}

// packScaleMinK4 stores six-bit scales and mins in get_scale_min_k4's layout.
func packScaleMinK4(ls, lm *[8]uint8, p []byte) {
	for j := range 8 {
		if j < 4 {
			p[j] = ls[j]
			p[j+4] = lm[j]
		} else {
			p[j+4] = ls[j]&0xf | (lm[j]&0xf)<<4
			p[j-4] |= (ls[j] >> 4) << 6
			p[j] |= (lm[j] >> 4) << 6
		}
	}
}

// encodeK45 is the shared body of quantize_row_q4_K_ref and
// quantize_row_q5_K_ref: per 32-element sub-block an asymmetric fit with
// make_qkx2_quants, weights av_x+|x| where av_x is the sub-block's RMS,
// squared error; scales and mins quantized to 6 bits against
// d = max_scale/63, dmin = max_min/63; quants recomputed with the rounded
// values. It writes d, dmin and the scales into b[0:16] and returns the
// quants.
func encodeK45(x []float32, b []byte, nmax int32, rmin float32, nstep int32) (L [qkK]uint8) {
	var (
		weights        [32]float32
		laux           [32]uint8
		scales, mins   [8]float32
		maxScale, maxM float32
	)
	for j := range 8 {
		sub := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range sub {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range sub {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, sub, weights[:], L[32*j:32*j+32], laux[:], rmin, 0.1, nstep, false)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxM {
			maxM = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxM > 0 {
		invMin = 63 / maxM
	}
	var ls, lm [8]uint8
	for j := range 8 {
		ls[j] = min(63, uint8(nearestInt(invScale*scales[j])))
		lm[j] = min(63, uint8(nearestInt(invMin*mins[j])))
	}
	packScaleMinK4(&ls, &lm, b[4:16])
	putF16(b[0:], maxScale/63)
	putF16(b[2:], maxM/63)
	dAll, dMin := f16at(b[0:]), f16at(b[2:])
	for j := range 8 {
		sc, m := scaleMinK4(j, b[4:16])
		d := dAll * float32(sc)
		if d == 0 {
			continue
		}
		dm := float32(dMin * float32(m))
		for l := range 32 {
			L[32*j+l] = uint8(clamp32(nearestInt((x[32*j+l]+dm)/d), 0, nmax))
		}
	}
	return L
}

// nibbleK returns the low four bits of Q4_K/Q5_K element e: byte
// 32*(e/64)+e%32, low nibble for the first 32 of each 64, high for the rest.
func nibbleK(qs []byte, e int) uint8 {
	v := qs[32*(e/64)+e%32]
	if e%64 >= 32 {
		return v >> 4
	}
	return v & 0xf
}

// encodeQ4_K is quantize_row_q4_K_ref (see encodeK45; 4-bit quants, 21
// candidate scales from rmin = -1).
func encodeQ4_K(x []float32, b []byte) {
	L := encodeK45(x, b, 15, -1, 20)
	qs := b[16:144]
	for c := range 4 {
		for l := range 32 {
			qs[32*c+l] = L[64*c+l] | L[64*c+l+32]<<4
		}
	}
}

// decodeQ4_K is dequantize_row_q4_K: x = d*sc*q - dmin*m per sub-block.
func decodeQ4_K(b []byte, y []float32) {
	d, dmin := f16at(b[0:]), f16at(b[2:])
	qs := b[16:144]
	for j := range 8 {
		sc, m := scaleMinK4(j, b[4:16])
		d1, m1 := d*float32(sc), float32(dmin*float32(m))
		for e := 32 * j; e < 32*j+32; e++ {
			y[e] = float32(d1*float32(nibbleK(qs, e))) - m1
		}
	}
}

// encodeQ5_K is quantize_row_q5_K_ref (see encodeK45; 5-bit quants, 16
// candidate scales from rmin = -0.5). The fifth bit of element e goes to
// qh[e%32], bit e/32.
func encodeQ5_K(x []float32, b []byte) {
	L := encodeK45(x, b, 31, -0.5, 15)
	qh, qs := b[16:48], b[48:176]
	clear(qh)
	for e := range qkK {
		if L[e] > 15 {
			L[e] -= 16
			qh[e%32] |= 1 << (e / 32)
		}
	}
	for c := range 4 {
		for l := range 32 {
			qs[32*c+l] = L[64*c+l] | L[64*c+l+32]<<4
		}
	}
}

// q5KQuant returns Q5_K element e in [0, 31].
func q5KQuant(qh, qs []byte, e int) uint8 {
	return nibbleK(qs, e) | (qh[e%32]>>(e/32))&1<<4
}

// decodeQ5_K is dequantize_row_q5_K: x = d*sc*q - dmin*m per sub-block.
func decodeQ5_K(b []byte, y []float32) {
	d, dmin := f16at(b[0:]), f16at(b[2:])
	qh, qs := b[16:48], b[48:176]
	for j := range 8 {
		sc, m := scaleMinK4(j, b[4:16])
		d1, m1 := d*float32(sc), float32(dmin*float32(m))
		for e := 32 * j; e < 32*j+32; e++ {
			y[e] = float32(d1*float32(q5KQuant(qh, qs, e))) - m1
		}
	}
}

// q6Quant returns Q6_K element e in [-32, 31]. Within each half of 128, the
// four 32-element groups g take their low nibble from ql[64*h + 32*(g%2) + l]
// (low nibble for g < 2, high for g >= 2) and their top two bits from
// qh[32*h + l], bit pair g.
func q6Quant(ql, qh []byte, e int) int8 {
	h, g, l := e/128, (e%128)/32, e%32
	lo := ql[64*h+32*(g%2)+l]
	if g >= 2 {
		lo >>= 4
	}
	hi := (qh[32*h+l] >> (2 * g)) & 3
	return int8(lo&0xf|hi<<4) - 32
}

// encodeQ6_K is quantize_row_q6_K_ref: symmetric 6-bit quants per
// 16-element sub-block (make_qx_quants, x^2 weights), sub-block scales
// stored as int8 against d = max_scale/-128, quants recomputed with the
// rounded scales.
func encodeQ6_K(x []float32, b []byte) {
	var (
		L                  [qkK]int8
		scales             [16]float32
		maxScale, maxAbsSc float32
	)
	for j := range 16 {
		scales[j] = makeQXQuants(32, x[16*j:16*j+16], L[16*j:16*j+16])
		if a := abs32(scales[j]); a > maxAbsSc {
			maxAbsSc, maxScale = a, scales[j]
		}
	}
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	if maxAbsSc < groupMaxEps {
		clear(b)
		return
	}
	iscale := -128 / maxScale
	putF16(b[208:], 1/iscale)
	for j := range 16 {
		sc[j] = uint8(int8(min(127, nearestInt(iscale*scales[j]))))
	}
	dAll := f16at(b[208:])
	for j := range 16 {
		d := dAll * float32(int8(sc[j]))
		if d == 0 {
			continue
		}
		for l := range 16 {
			L[16*j+l] = int8(clamp32(nearestInt(x[16*j+l]/d), -32, 31) + 32)
		}
	}
	for h := range 2 {
		for l := range 32 {
			e := 128*h + l
			q1, q2, q3, q4 := uint8(L[e]), uint8(L[e+32]), uint8(L[e+64]), uint8(L[e+96])
			ql[64*h+l] = q1&0xf | (q3&0xf)<<4
			ql[64*h+l+32] = q2&0xf | (q4&0xf)<<4
			qh[32*h+l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
		}
	}
}

// decodeQ6_K is dequantize_row_q6_K: x = d*scale*q.
func decodeQ6_K(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16at(b[208:])
	for e := range qkK {
		y[e] = float32(d*float32(int8(sc[e/16]))) * float32(q6Quant(ql, qh, e))
	}
}

// encodeQ8_K is quantize_row_q8_K_ref: q = min(127, round(-127*x/max)) with
// the signed element of largest magnitude max, d = 1/iscale stored as
// float32, and bsums[j] = sum of quants 16j..16j+15 (used by the K-quant dot
// products to apply sub-block minimums). An all-zero block is stored as
// zeros; ggml leaves its bsums unwritten.
func encodeQ8_K(x []float32, b []byte) {
	var amax, maxv float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, maxv = a, v
		}
	}
	if amax == 0 {
		clear(b)
		return
	}
	iscale := -127 / maxv
	qs := b[4:260]
	for j, v := range x {
		qs[j] = uint8(int8(min(127, nearestInt(iscale*v))))
	}
	for j := range 16 {
		var sum int16
		for _, q := range qs[16*j : 16*j+16] {
			sum += int16(int8(q))
		}
		binary.LittleEndian.PutUint16(b[260+2*j:], uint16(sum))
	}
	binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
}

// decodeQ8_K is dequantize_row_q8_K: x = d*q.
func decodeQ8_K(b []byte, y []float32) {
	d := math.Float32frombits(binary.LittleEndian.Uint32(b))
	for j := range qkK {
		y[j] = d * float32(int8(b[4+j]))
	}
}
