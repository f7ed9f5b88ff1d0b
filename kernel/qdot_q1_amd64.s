//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"

// Dot products of Q4_1 and Q5_1 weight rows with Q8_1 activations (AVX2,
// FMA, F16C), called like the K-quant kernels of kdot_amd64.s: x1 stores
// out[r], x4 stores out[4r+t] for four activation rows xstride bytes apart.
// See qdot_kref.go for the pure-Go twins.
//
// Q4_1: d f16 at 0, m f16 at 2, 16 nibble bytes at 4; 20 bytes. Q5_1: d,
// m, the 32 fifth bits (u32) at 4, nibbles at 8; 24 bytes. Q8_1: d f16 at
// 0, s = d*Σq f16 at 2, 32 int8 quants at 4; 36 bytes. Per block, as
// ggml's AVX2 ggml_vec_dot_q4_1_q8_1: acc += (dw*dy) * Σ q*y over eight
// int32 lanes (the weights are unsigned, so one VPMADDUBSW needs no sign
// trick), and a scalar running sum of m*s, added after the lanes.

DATA q1nibshift<>+0(SB)/8, $0
DATA q1nibshift<>+8(SB)/8, $0
DATA q1nibshift<>+16(SB)/8, $4
DATA q1nibshift<>+24(SB)/8, $4
GLOBL q1nibshift<>(SB), RODATA|NOPTR, $32

// PREP_Q4_1 leaves the block's 32 quants (0..15), in element order, in Y4.
#define PREP_Q4_1 \
	VBROADCASTI128 4(SI), Y4; \
	VPSRLVQ        q1nibshift<>(SB), Y4, Y4; \
	VPAND          lo4<>(SB), Y4, Y4

// PREP_Q5_1 leaves the block's 32 quants (0..31) in Y4.
#define PREP_Q5_1 \
	VBROADCASTI128 8(SI), Y4; \
	VPSRLVQ        q1nibshift<>(SB), Y4, Y4; \
	VPAND          lo4<>(SB), Y4, Y4; \
	VPBROADCASTD   4(SI), Y7; \
	VPSHUFB        q5spread<>(SB), Y7, Y7; \
	VPAND          q5bit<>(SB), Y7, Y7; \
	VPCMPEQB       q5bit<>(SB), Y7, Y7; \
	VPAND          bit4<>(SB), Y7, Y7; \
	VPOR           Y7, Y4, Y4

// Q1TOK adds one token's block (Q8_1 at xb) into acc and m*s into summ.
// Y4 holds the quants, Y6 dw, X5 m. Uses Y7-Y9.
#define Q1TOK(xb, acc, summ) \
	VMOVDQU      4 xb, Y8; \
	VPMADDUBSW   Y8, Y4, Y8; \
	VPMADDWD     Y15, Y8, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VPBROADCASTW xb, X9; \
	VCVTPH2PS    X9, Y9; \
	VMULPS       Y9, Y6, Y9; \
	VFMADD231PS  Y9, Y8, acc; \
	VPBROADCASTW 2 xb, X7; \
	VCVTPH2PS    X7, X7; \
	VFMADD231SS  X7, X5, summ

// Q1BLOCK loads the block's dw into Y6 and m into X5.
#define Q1BLOCK \
	F16B(0(SI), X6, Y6); \
	VPBROADCASTW 2(SI), X5; \
	VCVTPH2PS    X5, X5

// Q1X1 is the body of a one-token kernel for blocks of bs bytes.
// Arguments: w+0 rows+8 x+16 nb+24 out+32.
#define Q1X1(PREP, bs) \
	MOVQ    w+0(FP), SI; \
	MOVQ    rows+8(FP), BX; \
	MOVQ    out+32(FP), R13; \
	VMOVDQU ones16<>(SB), Y15; \
	TESTQ   BX, BX; \
	JZ      done; \
row: \
	MOVQ    x+16(FP), DI; \
	MOVQ    nb+24(FP), CX; \
	VXORPS  Y0, Y0, Y0; \
	VXORPS  X2, X2, X2; \
blk: \
	PREP; \
	Q1BLOCK; \
	Q1TOK((DI), Y0, X2); \
	ADDQ    $bs, SI; \
	ADDQ    $36, DI; \
	DECQ    CX; \
	JNZ     blk; \
	HSUM0; \
	VADDSS  X2, X0, X0; \
	VMOVSS  X0, (R13); \
	ADDQ    $4, R13; \
	DECQ    BX; \
	JNZ     row; \
done: \
	VZEROUPPER; \
	RET

// Q1X4 is the body of a four-token kernel. The m*s sums of the four tokens
// are in X10-X13. Arguments: w+0 rows+8 x+16 xstride+24 nb+32 out+40.
#define Q1X4(PREP, bs) \
	MOVQ       w+0(FP), SI; \
	MOVQ       rows+8(FP), BX; \
	MOVQ       xstride+24(FP), R8; \
	LEAQ       (R8)(R8*2), R9; \
	MOVQ       out+40(FP), R13; \
	VMOVDQU    ones16<>(SB), Y15; \
	TESTQ      BX, BX; \
	JZ         done; \
row: \
	MOVQ       x+16(FP), DI; \
	MOVQ       nb+32(FP), CX; \
	VXORPS     Y0, Y0, Y0; \
	VXORPS     Y1, Y1, Y1; \
	VXORPS     Y2, Y2, Y2; \
	VXORPS     Y3, Y3, Y3; \
	VXORPS     X10, X10, X10; \
	VXORPS     X11, X11, X11; \
	VXORPS     X12, X12, X12; \
	VXORPS     X13, X13, X13; \
blk: \
	PREP; \
	Q1BLOCK; \
	Q1TOK((DI), Y0, X10); \
	Q1TOK((DI)(R8*1), Y1, X11); \
	Q1TOK((DI)(R8*2), Y2, X12); \
	Q1TOK((DI)(R9*1), Y3, X13); \
	ADDQ       $bs, SI; \
	ADDQ       $36, DI; \
	DECQ       CX; \
	JNZ        blk; \
	REDUCE4; \
	VUNPCKLPS  X11, X10, X7; \
	VUNPCKLPS  X13, X12, X8; \
	VMOVLHPS   X8, X7, X7; \
	VADDPS     X7, X0, X0; \
	VMOVUPS    X0, (R13); \
	ADDQ       $16, R13; \
	DECQ       BX; \
	JNZ        row; \
done: \
	VZEROUPPER; \
	RET

// func dotQ4_1x1AVX2(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotQ4_1x1AVX2(SB), NOSPLIT, $0-40
	Q1X1(PREP_Q4_1, 20)

// func dotQ4_1x4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotQ4_1x4AVX2(SB), NOSPLIT, $0-48
	Q1X4(PREP_Q4_1, 20)

// func dotQ5_1x1AVX2(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotQ5_1x1AVX2(SB), NOSPLIT, $0-40
	Q1X1(PREP_Q5_1, 24)

// func dotQ5_1x4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotQ5_1x4AVX2(SB), NOSPLIT, $0-48
	Q1X4(PREP_Q5_1, 24)
