package kernel

import (
	"encoding/binary"
	"math"
)

// The tile GEMM of the legacy weight types (gemm_amd64.s) multiplies
// unsigned weight codes (the weight plus an offset: 128 for Q8_0, 8 for
// Q4_0, 16 for Q5_0) with the signed activation quants, and starts each
// block's integer sum at -offset·Σx so that the offset cancels exactly.
// The tables below hold those starting values, four tokens interleaved
// block by block, as acts.s4 holds their scales.

// gemmMinTokens is the smallest batch the tile GEMM takes. It works on
// groups of four tokens and repacks each tile of 16 weight rows once per
// call; with the weights in cache four tokens already repay that
// (BenchmarkGEMM, 896x896: 4 tokens 56 against 43 GMAC/s), but in a
// decode step the weights come from memory, and there the repacking's
// eight row streams at a time did no better than the x4/x8 kernels' one
// (kvgo bench --npl on qwen2.5-0.5b Q8_0, new/old paired, a loaded
// machine: 4 sequences 0.63, 1.13, 0.30; 8 sequences 0.84, 1.20, 0.86; 16
// sequences 1.29, 1.88, 1.66).
const gemmMinTokens = 16

// gemmBlockBytes is the size of one repacked block of 16 rows: 8 groups of
// 4 bytes × 16 rows of codes, then 16 float32 scales.
const gemmBlockBytes = 8*64 + 64

// gemmKBlockBytes is the size of one repacked Q4_K sub-block of 16 rows:
// the codes, then 16 float32 scales and 16 float32 minimums.
const gemmKBlockBytes = 8*64 + 128

// gemm6BlockBytes is the size of one repacked Q6_K block of 32 elements
// of 16 rows: the codes, then per 16-element sub-block 16 float32 scales
// and 16 float32 offsets.
const gemm6BlockBytes = 8*64 + 256

// gemmKMinTokens is the smallest batch the Q4_K tile GEMM takes: its
// scales are unpacked in Go, once per tile and call, which at 16 tokens
// measured no faster than the x4 kernel (BenchmarkGEMM).
const gemmKMinTokens = 32

// fillKTable sets, for each whole group of four tokens among the n rows of
// Q8_K activations in x (stride bytes apart, nb super-blocks each) and each
// sub-block s of the super-blocks' sub sub-blocks (8 of 32 elements for
// Q4_K, 16 of 16 for Q6_K), kt[(g*sub*nb+s)*8 + i] = dy and kt[... + 4 +
// i] = dy·Σx over the sub-block, for token 4g+i.
func fillKTable(kt []float32, x []byte, stride, n, nb, sub int) {
	per := 16 / sub // block sums (of 16 quants) per sub-block
	for t := range n / 4 * 4 {
		g, i := t/4, t%4
		row := x[t*stride : t*stride+292*nb]
		for b := range nb {
			dy := math.Float32frombits(binary.LittleEndian.Uint32(row[292*b:]))
			bs := row[292*b+260 : 292*b+292]
			for j := range sub {
				var sx int32
				for k := range per {
					sx += int32(int16(binary.LittleEndian.Uint16(bs[2*(per*j+k):])))
				}
				o := ((g*sub*nb)+sub*b+j)*8 + i
				kt[o] = dy
				kt[o+4] = dy * float32(sx)
			}
		}
	}
}

// gemmRows is the number of weight rows of a repacked tile.
const gemmRows = 16

// codeOffset is what the tile GEMM's codes add to a weight of kind k.
func codeOffset(k wkind) int32 {
	switch k {
	case kQ8_0:
		return 128
	case kQ4_0:
		return 8
	}
	return 16 // kQ5_0
}

// fillOffsets sets, for each whole group of four tokens among the n rows of
// Q8_0 activations in x (stride bytes apart, nb blocks each), c4[g*4*nb +
// 4b + i] = -off·Σ_k x[4g+i][b][k].
func fillOffsets(c4 []int32, x []byte, stride, n, nb int, off int32) {
	for t := range n / 4 * 4 {
		g, i := t/4, t%4
		row := x[t*stride : t*stride+34*nb]
		for b := range nb {
			c4[g*4*nb+4*b+i] = -off * sumQ8(row[34*b+2:34*b+34])
		}
	}
}

// sumQ8 is the sum of 32 signed bytes, eight at a time: each byte's sign
// bit flipped makes it unsigned (x+128), pairs of bytes are added in 16-bit
// lanes, which cannot overflow for 32 bytes, and the lanes are folded by a
// multiplication.
func sumQ8(q []byte) int32 {
	const flip, lo = 0x8080808080808080, 0x00ff00ff00ff00ff
	var s uint64
	for j := 0; j < 32; j += 8 {
		v := binary.LittleEndian.Uint64(q[j:]) ^ flip
		s += v&lo + v>>8&lo
	}
	u := int32(s * 0x0001000100010001 >> 48)
	return u - 32*128
}
