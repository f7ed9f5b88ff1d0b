package kernel

// Dequantization of packed KV-cache codes: the inner loop of reading a
// quantized page (kv/quant).

// DequantBlocks decodes a run of blocks of bs values each: block b of dst
// (dst[b*bs:(b+1)*bs]) is code·sm[2b] + sm[2b+1] over its codes in src,
// which are packed low bits first (bits 8 with signed int8 codes when
// signed is set, else unsigned codes of 8, 4 or 2 bits: the 4-bit byte k
// holds values 2k and 2k+1), every block starting on a byte boundary.
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
		case bits == 4 && bs%32 == 0:
			dequantBlocksU4x32AVX2(&dst[0], &src[0], &sm[0], nblk, bs)
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
