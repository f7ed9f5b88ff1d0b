//go:build !kvgo_generic

#include "textflag.h"

// DATA for the block-run dequantizers.
DATA shr2lo<>+0(SB)/8, $0x0000000200000000
DATA shr2lo<>+8(SB)/8, $0x0000000600000004
DATA shr2lo<>+16(SB)/8, $0x0000000a00000008
DATA shr2lo<>+24(SB)/8, $0x0000000e0000000c
GLOBL shr2lo<>(SB), RODATA|NOPTR, $32

DATA shr2hi<>+0(SB)/8, $0x0000001200000010
DATA shr2hi<>+8(SB)/8, $0x0000001600000014
DATA shr2hi<>+16(SB)/8, $0x0000001a00000018
DATA shr2hi<>+24(SB)/8, $0x0000001e0000001c
GLOBL shr2hi<>(SB), RODATA|NOPTR, $32

// BLOCKS runs STEP over nblk blocks of bvals values each (bvals a multiple
// of the step's 16 values), with each block's scale in Y1 and minimum in
// Y2, read as the float pair sm[2b], sm[2b+1]. STEP reads SI, writes 16
// floats at DI and advances both.
#define BLOCKS(STEP) BLOCKSN(STEP, 4)

// BLOCKSN is BLOCKS for a STEP of 2^shift values.
#define BLOCKSN(STEP, shift) \
	MOVQ dst+0(FP), DI        \
	MOVQ src+8(FP), SI        \
	MOVQ sm+16(FP), DX        \
	MOVQ nblk+24(FP), BX      \
	TESTQ BX, BX              \
	JZ   bdone                \
bnext:                        \
	VBROADCASTSS (DX), Y1     \
	VBROADCASTSS 4(DX), Y2    \
	ADDQ $8, DX               \
	MOVQ bvals+32(FP), CX     \
	SHRQ $shift, CX           \
bstep:                        \
	STEP                      \
	DECQ CX                   \
	JNZ  bstep                \
	DECQ BX                   \
	JNZ  bnext                \
bdone:                        \
	VZEROUPPER                \
	RET

// STEP8 decodes 16 8-bit codes, widened to dwords by EXT (VPMOVSXBD for
// int8 codes, VPMOVZXBD for unsigned ones).
#define STEP8(EXT) \
	EXT         (SI), Y5      \
	EXT         8(SI), Y7     \
	VCVTDQ2PS   Y5, Y5        \
	VCVTDQ2PS   Y7, Y7        \
	VFMADD213PS Y2, Y1, Y5    \
	VFMADD213PS Y2, Y1, Y7    \
	VMOVUPS     Y5, (DI)      \
	VMOVUPS     Y7, 32(DI)    \
	ADDQ        $16, SI       \
	ADDQ        $64, DI

#define STEPI8 STEP8(VPMOVSXBD)
#define STEPU8 STEP8(VPMOVZXBD)

#define STEPU4 \
	VMOVQ       (SI), X0      \
	VPSRLW      $4, X0, X3    \
	VPAND       X15, X0, X0   \
	VPAND       X15, X3, X3   \
	VPUNPCKLBW  X3, X0, X4    \
	VPMOVZXBD   X4, Y5        \
	VPSRLDQ     $8, X4, X6    \
	VPMOVZXBD   X6, Y7        \
	VCVTDQ2PS   Y5, Y5        \
	VCVTDQ2PS   Y7, Y7        \
	VFMADD213PS Y2, Y1, Y5    \
	VFMADD213PS Y2, Y1, Y7    \
	VMOVUPS     Y5, (DI)      \
	VMOVUPS     Y7, 32(DI)    \
	ADDQ        $8, SI        \
	ADDQ        $64, DI

// STEPU4X32 is STEPU4 for 32 codes (16 bytes) per step: one load, one
// nibble split and two byte interleaves for twice the values.
#define STEPU4X32 \
	VMOVDQU     (SI), X0      \
	VPSRLW      $4, X0, X3    \
	VPAND       X15, X0, X0   \
	VPAND       X15, X3, X3   \
	VPUNPCKLBW  X3, X0, X4    \
	VPUNPCKHBW  X3, X0, X5    \
	VPMOVZXBD   X4, Y6        \
	VPSRLDQ     $8, X4, X4    \
	VPMOVZXBD   X4, Y7        \
	VPMOVZXBD   X5, Y8        \
	VPSRLDQ     $8, X5, X5    \
	VPMOVZXBD   X5, Y9        \
	VCVTDQ2PS   Y6, Y6        \
	VCVTDQ2PS   Y7, Y7        \
	VCVTDQ2PS   Y8, Y8        \
	VCVTDQ2PS   Y9, Y9        \
	VFMADD213PS Y2, Y1, Y6    \
	VFMADD213PS Y2, Y1, Y7    \
	VFMADD213PS Y2, Y1, Y8    \
	VFMADD213PS Y2, Y1, Y9    \
	VMOVUPS     Y6, (DI)      \
	VMOVUPS     Y7, 32(DI)    \
	VMOVUPS     Y8, 64(DI)    \
	VMOVUPS     Y9, 96(DI)    \
	ADDQ        $16, SI       \
	ADDQ        $128, DI

#define STEPU2 \
	VPBROADCASTD (SI), Y0     \
	VPSRLVD     Y13, Y0, Y5   \
	VPSRLVD     Y14, Y0, Y7   \
	VPAND       Y15, Y5, Y5   \
	VPAND       Y15, Y7, Y7   \
	VCVTDQ2PS   Y5, Y5        \
	VCVTDQ2PS   Y7, Y7        \
	VFMADD213PS Y2, Y1, Y5    \
	VFMADD213PS Y2, Y1, Y7    \
	VMOVUPS     Y5, (DI)      \
	VMOVUPS     Y7, 32(DI)    \
	ADDQ        $4, SI        \
	ADDQ        $64, DI

// func dequantBlocksI8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)
TEXT ·dequantBlocksI8AVX2(SB), NOSPLIT, $0-40
	BLOCKS(STEPI8)

// func dequantBlocksU8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)
TEXT ·dequantBlocksU8AVX2(SB), NOSPLIT, $0-40
	BLOCKS(STEPU8)

// func dequantBlocksU4AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)
TEXT ·dequantBlocksU4AVX2(SB), NOSPLIT, $0-40
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, X15
	BLOCKS(STEPU4)

// func dequantBlocksU4x32AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)
//
// dequantBlocksU4AVX2 for blocks of a multiple of 32 values.
TEXT ·dequantBlocksU4x32AVX2(SB), NOSPLIT, $0-40
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, X15
	BLOCKSN(STEPU4X32, 5)

// func dequantBlocksU2AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)
TEXT ·dequantBlocksU2AVX2(SB), NOSPLIT, $0-40
	MOVL         $3, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU      shr2lo<>(SB), Y13
	VMOVDQU      shr2hi<>(SB), Y14
	BLOCKS(STEPU2)
