//go:build !kvgo_generic

#include "textflag.h"

// func dequantI8AVX2(dst *float32, src *byte, n int, s float32)
// dst[i] = int8(src[i]) * s for n values, n a multiple of 8.
TEXT ·dequantI8AVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y1
	SHRQ $3, CX
	JZ   i8done

i8loop:
	VPMOVSXBD (SI), Y0
	VCVTDQ2PS Y0, Y0
	VMULPS    Y1, Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $8, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       i8loop

i8done:
	VZEROUPPER
	RET

// func dequantU8AVX2(dst *float32, src *byte, n int, s, m float32)
// dst[i] = src[i] * s + m for n values, n a multiple of 8.
TEXT ·dequantU8AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y1
	VBROADCASTSS m+28(FP), Y2
	SHRQ $3, CX
	JZ   u8done

u8loop:
	VPMOVZXBD   (SI), Y0
	VCVTDQ2PS   Y0, Y0
	VFMADD213PS Y2, Y1, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $8, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         u8loop

u8done:
	VZEROUPPER
	RET

// func dequantU4AVX2(dst *float32, src *byte, nbytes int, s, m float32)
// Two values per byte, low nibble first: 8 bytes (16 values) per step,
// nbytes a multiple of 8. The nibbles are split, interleaved back into
// byte order (lo0 hi0 lo1 hi1 ...), widened and scaled.
TEXT ·dequantU4AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nbytes+16(FP), CX
	VBROADCASTSS s+24(FP), Y1
	VBROADCASTSS m+28(FP), Y2
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, X15
	SHRQ         $3, CX
	JZ           u4done

u4loop:
	VMOVQ       (SI), X0
	VPSRLW      $4, X0, X3
	VPAND       X15, X0, X0
	VPAND       X15, X3, X3
	VPUNPCKLBW  X3, X0, X4
	VPMOVZXBD   X4, Y5
	VPSRLDQ     $8, X4, X6
	VPMOVZXBD   X6, Y7
	VCVTDQ2PS   Y5, Y5
	VCVTDQ2PS   Y7, Y7
	VFMADD213PS Y2, Y1, Y5
	VFMADD213PS Y2, Y1, Y7
	VMOVUPS     Y5, (DI)
	VMOVUPS     Y7, 32(DI)
	ADDQ        $8, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         u4loop

u4done:
	VZEROUPPER
	RET
