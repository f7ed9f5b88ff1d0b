package kernel

// Dequantization of packed KV-cache codes: the inner loops of reading a
// quantized page (kv/quant). Each writes code·s + m for len(dst) values.

// DequantI8 writes int8(src[i])·s into dst[i] (symmetric 8-bit codes).
func DequantI8(dst []float32, src []byte, s float32) {
	src = src[:len(dst)]
	i := 0
	if useAVX2 && len(dst) >= 8 {
		i = len(dst) &^ 7
		dequantI8AVX2(&dst[0], &src[0], i, s)
	}
	for ; i < len(dst); i++ {
		dst[i] = float32(int8(src[i])) * s
	}
}

// DequantU8 writes src[i]·s + m into dst[i] (asymmetric 8-bit codes).
func DequantU8(dst []float32, src []byte, s, m float32) {
	src = src[:len(dst)]
	i := 0
	if useAVX2 && len(dst) >= 8 {
		i = len(dst) &^ 7
		dequantU8AVX2(&dst[0], &src[0], i, s, m)
	}
	for ; i < len(dst); i++ {
		dst[i] = float32(src[i])*s + m
	}
}

// DequantU4 decodes 4-bit codes packed two per byte, low nibble first:
// dst[2k] = (src[k]&15)·s + m, dst[2k+1] = (src[k]>>4)·s + m. len(dst)
// must be even.
func DequantU4(dst []float32, src []byte, s, m float32) {
	nb := len(dst) / 2
	src = src[:nb]
	k := 0
	if useAVX2 && nb >= 8 {
		k = nb &^ 7
		dequantU4AVX2(&dst[0], &src[0], k, s, m)
	}
	for ; k < nb; k++ {
		b := src[k]
		dst[2*k] = float32(b&15)*s + m
		dst[2*k+1] = float32(b>>4)*s + m
	}
}

// DequantU2 decodes 2-bit codes packed four per byte, lowest bits first.
// len(dst) must be a multiple of 4.
func DequantU2(dst []float32, src []byte, s, m float32) {
	src = src[:len(dst)/4]
	for k, b := range src {
		x := dst[4*k : 4*k+4 : 4*k+4]
		x[0] = float32(b&3)*s + m
		x[1] = float32(b>>2&3)*s + m
		x[2] = float32(b>>4&3)*s + m
		x[3] = float32(b>>6)*s + m
	}
}
