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

// DequantBlocks decodes a run of blocks of bs values each: block b of dst
// (dst[b*bs:(b+1)*bs]) is code·sm[2b] + sm[2b+1] over its codes in src,
// which are packed as the single-block functions above read them (bits 8
// with signed int8 codes when signed is set, else unsigned codes of 8, 4 or
// 2 bits, low bits first), every block starting on a byte boundary.
// len(dst) is a multiple of bs. One call decodes the rows of several
// tokens: at the block sizes of a KV cache (32 values) the cost of a call
// per block is as large as the decoding itself.
func DequantBlocks(dst []float32, src []byte, sm []float32, bs, bits int, signed bool) {
	if bs <= 0 || len(dst)%bs != 0 || bs*bits%8 != 0 {
		panic("kernel: DequantBlocks: dst must hold whole byte-aligned blocks")
	}
	nblk := len(dst) / bs
	bb := bs * bits / 8
	src, sm = src[:nblk*bb], sm[:2*nblk]
	if nblk == 0 {
		return
	}
	if useAVX2 && bs%16 == 0 {
		switch {
		case bits == 8 && signed:
			dequantBlocksI8AVX2(&dst[0], &src[0], &sm[0], nblk, bs)
		case bits == 8:
			dequantBlocksU8AVX2(&dst[0], &src[0], &sm[0], nblk, bs)
		case bits == 4:
			dequantBlocksU4AVX2(&dst[0], &src[0], &sm[0], nblk, bs)
		default:
			dequantBlocksU2AVX2(&dst[0], &src[0], &sm[0], nblk, bs)
		}
		return
	}
	for b := 0; b < nblk; b++ {
		s, m := sm[2*b], sm[2*b+1]
		x, c := dst[b*bs:(b+1)*bs], src[b*bb:(b+1)*bb]
		switch {
		case bits == 8 && signed:
			for i, u := range c {
				x[i] = float32(int8(u))*s + m
			}
		case bits == 8:
			for i, u := range c {
				x[i] = float32(u)*s + m
			}
		case bits == 4:
			for k, u := range c {
				x[2*k] = float32(u&15)*s + m
				x[2*k+1] = float32(u>>4)*s + m
			}
		default:
			for k, u := range c {
				for p := 0; p < 4; p++ {
					x[4*k+p] = float32(u>>(2*p)&3)*s + m
				}
			}
		}
	}
}
