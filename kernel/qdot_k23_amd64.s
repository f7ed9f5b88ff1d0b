//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"

// Dot products of Q2_K and Q3_K weight rows with Q8_K activations (AVX2,
// FMA, F16C), called like the kernels of kdot_amd64.s. See qdot_kref.go
// for the pure-Go twins.
//
// Both types keep 2-bit quants as Q6_K keeps its low bits: byte 32h+l of
// qs holds element 128h+32g+l in bits 2g, 2g+1, and each 16 elements have
// a scale, so group (h, g) of 32 elements takes scales 8h+2g and 8h+2g+1,
// which q6sc's shuffle controls pick. Per super-block the integer sums
// Σ scale*q*y go into eight int32 lanes and are scaled once, as ggml's
// AVX2 kernels do.
//
// Registers: Y0-Y3 float accumulators (one per token), Y4-Y7 int32 sums of
// the super-block (one per token), Y8 the group's quants, Y9 its two scales
// as 16 int16 lanes (8 of each), Y11 the qs bytes of the current half.

DATA m2bits<>+0(SB)/8, $0x0303030303030303
DATA m2bits<>+8(SB)/8, $0x0303030303030303
DATA m2bits<>+16(SB)/8, $0x0303030303030303
DATA m2bits<>+24(SB)/8, $0x0303030303030303
GLOBL m2bits<>(SB), RODATA|NOPTR, $32

DATA b32<>+0(SB)/8, $0x2020202020202020
DATA b32<>+8(SB)/8, $0x2020202020202020
GLOBL b32<>(SB), RODATA|NOPTR, $16

// sc16 holds VPSHUFB controls that pick, from eight int16 scales held in
// both 128-bit lanes, scale 2g (low lane) and 2g+1 (high lane) for group g
// of a 128-element half; 32 bytes per g.
DATA sc16<>+0(SB)/8, $0x0100010001000100
DATA sc16<>+8(SB)/8, $0x0100010001000100
DATA sc16<>+16(SB)/8, $0x0302030203020302
DATA sc16<>+24(SB)/8, $0x0302030203020302
DATA sc16<>+32(SB)/8, $0x0504050405040504
DATA sc16<>+40(SB)/8, $0x0504050405040504
DATA sc16<>+48(SB)/8, $0x0706070607060706
DATA sc16<>+56(SB)/8, $0x0706070607060706
DATA sc16<>+64(SB)/8, $0x0908090809080908
DATA sc16<>+72(SB)/8, $0x0908090809080908
DATA sc16<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA sc16<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA sc16<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA sc16<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA sc16<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA sc16<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL sc16<>(SB), RODATA|NOPTR, $128

#define XB0 (DI)
#define XB1 (DI)(R8*1)
#define XB2 (DI)(R8*2)
#define XB3 (DI)(R9*1)

// GROUP2 leaves the 2-bit quants of group g (shifted right by 2g: SHIFT)
// in Y8.
#define Q2SH0 VMOVDQA Y11, Y8
#define Q2SH1 VPSRLW $2, Y11, Y8
#define Q2SH2 VPSRLW $4, Y11, Y8
#define Q2SH3 VPSRLW $6, Y11, Y8

// ---- Q2_K: scales[16] at 0 (low nibble scale, high nibble min), qs[64]
// at 16, d f16 at 80, dmin f16 at 82; 84 bytes. x = d*sc*q - dmin*m. X13
// holds the 16 scales (low nibbles), Y12 the 16 mins as int16.

#define Q2PREP(h, g, SH) \
	SH; \
	VPAND     m2bits<>(SB), Y8, Y8; \
	VPSHUFB   sc16<>+32*g(SB), Y13, Y9

#define Q2TOK(h, g, xb, sumi) \
	VPMADDUBSW 4+128*h+32*g xb, Y8, Y10; \
	VPMADDWD   Y9, Y10, Y10; \
	VPADDD     Y10, sumi, sumi

// Q2SCALES loads the mins of the super-block at SI into Y12 (int16) and
// its scales as int16, 0-7 into both lanes of Y13 and 8-15 into both lanes
// of Y14, so that one VPSHUFB picks a group's two.
#define Q2SCALES \
	VMOVDQU   0(SI), X14; \
	VPAND     lo4<>(SB), X14, X13; \
	VPSRLW    $4, X14, X12; \
	VPAND     lo4<>(SB), X12, X12; \
	VPMOVZXBW X12, Y12; \
	VPMOVZXBW X13, Y13; \
	VPERMQ    $0xee, Y13, Y14; \
	VPERMQ    $0x44, Y13, Y13

// Q2FIN adds one token's super-block into acc: d*dy*sumi - dmin*dy*Σ
// bsums*mins. Y13 holds d, Y14 dmin.
#define Q2FIN(xb, sumi, acc) \
	VBROADCASTSS xb, Y10; \
	VMULPS       Y13, Y10, Y11; \
	VCVTDQ2PS    sumi, sumi; \
	VFMADD231PS  Y11, sumi, acc; \
	VMOVDQU      260 xb, Y8; \
	VPMADDWD     Y12, Y8, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VMULPS       Y14, Y10, Y11; \
	VFNMADD231PS Y11, Y8, acc

#define Q2HALF(h, TOKS) \
	VMOVDQU 16+32*h(SI), Y11; \
	Q2PREP(h, 0, Q2SH0); \
	TOKS(h, 0); \
	Q2PREP(h, 1, Q2SH1); \
	TOKS(h, 1); \
	Q2PREP(h, 2, Q2SH2); \
	TOKS(h, 2); \
	Q2PREP(h, 3, Q2SH3); \
	TOKS(h, 3)

#define Q2TOK1(h, g) Q2TOK(h, g, XB0, Y4)

#define Q2TOK4(h, g) \
	Q2TOK(h, g, XB0, Y4); \
	Q2TOK(h, g, XB1, Y5); \
	Q2TOK(h, g, XB2, Y6); \
	Q2TOK(h, g, XB3, Y7)

// func dotQ2_Kx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotQ2_Kx1AVX2(SB), NOSPLIT, $0-40
	MOVQ  w+0(FP), SI
	MOVQ  rows+8(FP), BX
	MOVQ  out+32(FP), R13
	TESTQ BX, BX
	JZ    done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+24(FP), CX
	VXORPS Y0, Y0, Y0

sblk:
	Q2SCALES
	VPXOR Y4, Y4, Y4
	Q2HALF(0, Q2TOK1)
	VMOVDQA Y14, Y13
	Q2HALF(1, Q2TOK1)
	F16B(80(SI), X13, Y13)
	F16B(82(SI), X14, Y14)
	Q2FIN(XB0, Y4, Y0)
	ADDQ  $84, SI
	ADDQ  $292, DI
	DECQ  CX
	JNZ   sblk
	HSUM0
	VMOVSS X0, (R13)
	ADDQ   $4, R13
	DECQ   BX
	JNZ    row

done:
	VZEROUPPER
	RET

// func dotQ2_Kx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotQ2_Kx4AVX2(SB), NOSPLIT, $0-48
	MOVQ  w+0(FP), SI
	MOVQ  rows+8(FP), BX
	MOVQ  xstride+24(FP), R8
	LEAQ  (R8)(R8*2), R9
	MOVQ  out+40(FP), R13
	TESTQ BX, BX
	JZ    done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sblk:
	Q2SCALES
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	Q2HALF(0, Q2TOK4)
	VMOVDQA Y14, Y13
	Q2HALF(1, Q2TOK4)
	F16B(80(SI), X13, Y13)
	F16B(82(SI), X14, Y14)
	Q2FIN(XB0, Y4, Y0)
	Q2FIN(XB1, Y5, Y1)
	Q2FIN(XB2, Y6, Y2)
	Q2FIN(XB3, Y7, Y3)
	ADDQ  $84, SI
	ADDQ  $292, DI
	DECQ  CX
	JNZ   sblk
	REDUCE4
	VMOVUPS X0, (R13)
	ADDQ    $16, R13
	DECQ    BX
	JNZ     row

done:
	VZEROUPPER
	RET

// ---- Q3_K: hmask[32] at 0, qs[64] at 32, 12 bytes of 6-bit scales at 96,
// d f16 at 108; 110 bytes. x = d*(sc-32)*(q - 4*(1-hbit)), hbit = bit
// 4h+g of hmask[l]. The kernel computes q*y - (4*(1-hbit))*y with two
// VPMADDUBSWs (both exact). X13 holds the 16 signed scales, Y14 hmask, Y10
// the 4s of the group.

// Q3SCALES unpacks the scales of the super-block at SI into X13 as int8
// (sc-32).
#define Q3SCALES \
	MOVL    96(SI), R11; \
	ANDL    $0x0f0f0f0f, R11; \
	MOVL    104(SI), R12; \
	ANDL    $0x03030303, R12; \
	SHLL    $4, R12; \
	ORL     R12, R11; \
	MOVL    100(SI), R12; \
	ANDL    $0x0f0f0f0f, R12; \
	MOVL    104(SI), AX; \
	SHRL    $2, AX; \
	ANDL    $0x03030303, AX; \
	SHLL    $4, AX; \
	ORL     AX, R12; \
	SHLQ    $32, R12; \
	ORQ     R12, R11; \
	VMOVQ   R11, X13; \
	MOVL    96(SI), R11; \
	SHRL    $4, R11; \
	ANDL    $0x0f0f0f0f, R11; \
	MOVL    104(SI), AX; \
	SHRL    $4, AX; \
	ANDL    $0x03030303, AX; \
	SHLL    $4, AX; \
	ORL     AX, R11; \
	MOVL    100(SI), R12; \
	SHRL    $4, R12; \
	ANDL    $0x0f0f0f0f, R12; \
	MOVL    104(SI), AX; \
	SHRL    $6, AX; \
	ANDL    $0x03030303, AX; \
	SHLL    $4, AX; \
	ORL     AX, R12; \
	SHLQ    $32, R12; \
	ORQ     R12, R11; \
	VPINSRQ $1, R11, X13, X13; \
	VPSUBB  b32<>(SB), X13, X13

// Q3PREP prepares group (h, g): quants in Y8, the 4s where the high bit is
// clear in Y10, the scales in Y9.
#define Q3PREP(h, g, SH) \
	SH; \
	VPAND     m2bits<>(SB), Y8, Y8; \
	VPSRLW    $(4*h+g), Y14, Y10; \
	VPAND     ones8<>(SB), Y10, Y10; \
	VPXOR     ones8<>(SB), Y10, Y10; \
	VPSLLW    $2, Y10, Y10; \
	VPSHUFB   q6sc<>+64*h+16*g(SB), X13, X9; \
	VPMOVSXBW X9, Y9

#define Q3TOK(h, g, xb, sumi) \
	VMOVDQU    4+128*h+32*g xb, Y15; \
	VPMADDUBSW Y15, Y8, Y12; \
	VPMADDUBSW Y15, Y10, Y15; \
	VPSUBW     Y15, Y12, Y12; \
	VPMADDWD   Y9, Y12, Y12; \
	VPADDD     Y12, sumi, sumi

#define Q3FIN(xb, sumi, acc) \
	VBROADCASTSS xb, Y10; \
	VMULPS       Y8, Y10, Y10; \
	VCVTDQ2PS    sumi, sumi; \
	VFMADD231PS  Y10, sumi, acc

#define Q3HALF(h, TOKS) \
	VMOVDQU 32+32*h(SI), Y11; \
	Q3PREP(h, 0, Q2SH0); \
	TOKS(h, 0); \
	Q3PREP(h, 1, Q2SH1); \
	TOKS(h, 1); \
	Q3PREP(h, 2, Q2SH2); \
	TOKS(h, 2); \
	Q3PREP(h, 3, Q2SH3); \
	TOKS(h, 3)

#define Q3TOK1(h, g) Q3TOK(h, g, XB0, Y4)

#define Q3TOK4(h, g) \
	Q3TOK(h, g, XB0, Y4); \
	Q3TOK(h, g, XB1, Y5); \
	Q3TOK(h, g, XB2, Y6); \
	Q3TOK(h, g, XB3, Y7)

// func dotQ3_Kx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotQ3_Kx1AVX2(SB), NOSPLIT, $0-40
	MOVQ  w+0(FP), SI
	MOVQ  rows+8(FP), BX
	MOVQ  out+32(FP), R13
	TESTQ BX, BX
	JZ    done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+24(FP), CX
	VXORPS Y0, Y0, Y0

sblk:
	Q3SCALES
	VMOVDQU 0(SI), Y14
	VPXOR   Y4, Y4, Y4
	Q3HALF(0, Q3TOK1)
	Q3HALF(1, Q3TOK1)
	F16B(108(SI), X8, Y8)
	Q3FIN(XB0, Y4, Y0)
	ADDQ    $110, SI
	ADDQ    $292, DI
	DECQ    CX
	JNZ     sblk
	HSUM0
	VMOVSS  X0, (R13)
	ADDQ    $4, R13
	DECQ    BX
	JNZ     row

done:
	VZEROUPPER
	RET

// func dotQ3_Kx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotQ3_Kx4AVX2(SB), NOSPLIT, $0-48
	MOVQ  w+0(FP), SI
	MOVQ  rows+8(FP), BX
	MOVQ  xstride+24(FP), R8
	LEAQ  (R8)(R8*2), R9
	MOVQ  out+40(FP), R13
	TESTQ BX, BX
	JZ    done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sblk:
	Q3SCALES
	VMOVDQU 0(SI), Y14
	VPXOR   Y4, Y4, Y4
	VPXOR   Y5, Y5, Y5
	VPXOR   Y6, Y6, Y6
	VPXOR   Y7, Y7, Y7
	Q3HALF(0, Q3TOK4)
	Q3HALF(1, Q3TOK4)
	F16B(108(SI), X8, Y8)
	Q3FIN(XB0, Y4, Y0)
	Q3FIN(XB1, Y5, Y1)
	Q3FIN(XB2, Y6, Y2)
	Q3FIN(XB3, Y7, Y3)
	ADDQ    $110, SI
	ADDQ    $292, DI
	DECQ    CX
	JNZ     sblk
	REDUCE4
	VMOVUPS X0, (R13)
	ADDQ    $16, R13
	DECQ    BX
	JNZ     row

done:
	VZEROUPPER
	RET
