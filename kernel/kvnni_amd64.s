//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"

// AVX-512 VNNI versions of the K-quant kernels of kdot_amd64.s (Q4_K,
// Q5_K, Q6_K against Q8_K activations), one and four tokens per weight
// row; see vnni_amd64.go for the declarations and the CPU check. This file
// is kdot_amd64.s with one change: where a token's 16-bit pair products
// are multiplied by the sub-block scales and added into the int32 sums,
// VPMADDWD + VPADDD become one VPDPWSSD (AVX512_VNNI on 256-bit registers,
// AVX512VL). The int32 lanes receive the same products, and int32 addition
// wraps the same way in both, so the sums and every float32 operation
// after them are the AVX2 kernel's, bit for bit (TestVNNIMatchesAVX2K).
// The unpacking and the remaining comments are kdot_amd64.s's.
//
// The calling convention is that of qdot_amd64.s: rows consecutive weight
// rows of nb super-blocks; x1 stores out[r], x4 stores out[4r+t] for four
// activation rows xstride bytes apart.
//
// Q8_K super-block: d float32 at 0, 256 int8 quants at 4, 16 int16 sums of
// 16 quants (bsums) at 260; 292 bytes.
//
// Registers: Y0-Y3 float accumulators (one per token), Y4-Y7 int32 sums of
// the current super-block (one per token). Scale products that only depend
// on the activation's sub-block sums (the Q4_K/Q5_K minimums, Q6_K's -32
// offset) go through bsums instead of touching every quant, and stay exact
// integers.

// The token addresses: activation row t is at xb(t) = DI + t*xstride.
#define XB0 (DI)
#define XB1 (DI)(R8*1)
#define XB2 (DI)(R8*2)
#define XB3 (DI)(R9*1)

// ---- Q4_K and Q5_K ----
//
// Q4_K: d f16 at 0, dmin f16 at 2, 12 bytes of 6-bit scales and mins at 4,
// 128 bytes of nibbles at 16 (byte 32c+l holds element 64c+l in its low
// nibble and 64c+32+l in its high one). Q5_K adds 32 bytes of fifth bits
// at 16 (bit b of byte l belongs to element 32b+l) and moves the nibbles
// to 48. Element e has scale sc[e/32] and minimum m[e/32]:
// x = d*sc*q - dmin*m.

// K4SCALES unpacks the eight 6-bit scales and mins of the super-block at SI
// and stores them as int16: scales at 0(SP) (16 bytes), mins at 16(SP),
// each min twice (32 bytes) to pair with the 16 bsums.
#define K4SCALES \
	MOVL        4(SI), AX; \
	MOVL        8(SI), DX; \
	MOVL        12(SI), R10; \
	MOVL        AX, R11; \
	ANDL        $0x3f3f3f3f, R11; \
	MOVL        R10, R12; \
	ANDL        $0x0f0f0f0f, R12; \
	SHRL        $2, AX; \
	ANDL        $0x30303030, AX; \
	ORL         AX, R12; \
	SHLQ        $32, R12; \
	ORQ         R12, R11; \
	MOVL        DX, R12; \
	ANDL        $0x3f3f3f3f, R12; \
	SHRL        $4, R10; \
	ANDL        $0x0f0f0f0f, R10; \
	SHRL        $2, DX; \
	ANDL        $0x30303030, DX; \
	ORL         DX, R10; \
	SHLQ        $32, R10; \
	ORQ         R10, R12; \
	VMOVQ       R11, X8; \
	VPMOVZXBW   X8, X8; \
	VMOVDQU     X8, 0(SP); \
	VMOVQ       R12, X9; \
	VPMOVZXBW   X9, X9; \
	VPUNPCKHWD  X9, X9, X10; \
	VPUNPCKLWD  X9, X9, X9; \
	VINSERTI128 $1, X10, Y9, Y9; \
	VMOVDQU     Y9, 16(SP)

// K4TOK adds the products of the 64 elements of chunk c of one token (at
// xb) into sumi (low nibbles, Y8, with scale Y10) and sumj (high nibbles,
// Y9, with scale Y11). Two accumulators per token, added before K4FIN,
// halve the chain of dependent VPDPWSSDs (whose latency, unlike VPADDD's,
// would otherwise set the pace of the x1 kernel); int32 addition is
// associative, so the sums are the same.
#define K4TOK(c, xb, sumi, sumj) \
	VPMADDUBSW 4+64*c xb, Y8, Y12; \
	VPDPWSSD   Y10, Y12, sumi; \
	VPMADDUBSW 36+64*c xb, Y9, Y13; \
	VPDPWSSD   Y11, Y13, sumj

// Q4PREP loads the nibbles of chunk c into Y8 (low) and Y9 (high) and the
// chunk's two scales into Y10, Y11.
#define Q4PREP(c) \
	VMOVDQU      16+32*c(SI), Y8; \
	VPSRLW       $4, Y8, Y9; \
	VPAND        lo4<>(SB), Y8, Y8; \
	VPAND        lo4<>(SB), Y9, Y9; \
	VPBROADCASTW 4*c(SP), Y10; \
	VPBROADCASTW 4*c+2(SP), Y11

// Q5PREP is Q4PREP for Q5_K: Y14 holds the fifth bits, shifted right by 2c.
#define Q5PREP(c) \
	VMOVDQU      48+32*c(SI), Y8; \
	VPSRLW       $4, Y8, Y9; \
	VPAND        lo4<>(SB), Y8, Y8; \
	VPAND        lo4<>(SB), Y9, Y9; \
	VPSLLW       $4, Y14, Y12; \
	VPAND        bit4<>(SB), Y12, Y12; \
	VPOR         Y12, Y8, Y8; \
	VPSLLW       $3, Y14, Y12; \
	VPAND        bit4<>(SB), Y12, Y12; \
	VPOR         Y12, Y9, Y9; \
	VPSRLW       $2, Y14, Y14; \
	VPBROADCASTW 4*c(SP), Y10; \
	VPBROADCASTW 4*c+2(SP), Y11

// K4FIN adds one token's super-block into acc: d*dy*sumi - dmin*dy*Σ
// bsums*mins. Y8 holds d, Y9 dmin.
#define K4FIN(xb, sumi, acc) \
	VBROADCASTSS xb, Y10; \
	VMULPS       Y8, Y10, Y11; \
	VCVTDQ2PS    sumi, sumi; \
	VFMADD231PS  Y11, sumi, acc; \
	VMOVDQU      260 xb, Y12; \
	VPMADDWD     16(SP), Y12, Y12; \
	VCVTDQ2PS    Y12, Y12; \
	VMULPS       Y9, Y10, Y11; \
	VFNMADD231PS Y11, Y12, acc

#define K45X1(PREP, bs, qhload) \
	MOVQ   w+0(FP), SI; \
	MOVQ   rows+8(FP), BX; \
	MOVQ   out+32(FP), R13; \
	TESTQ  BX, BX; \
	JZ     done; \
row: \
	MOVQ   x+16(FP), DI; \
	MOVQ   nb+24(FP), CX; \
	VXORPS Y0, Y0, Y0; \
sblk: \
	K4SCALES; \
	qhload; \
	VPXOR  Y4, Y4, Y4; \
	VPXORD Y16, Y16, Y16; \
	PREP(0); \
	K4TOK(0, XB0, Y4, Y16); \
	PREP(1); \
	K4TOK(1, XB0, Y4, Y16); \
	PREP(2); \
	K4TOK(2, XB0, Y4, Y16); \
	PREP(3); \
	K4TOK(3, XB0, Y4, Y16); \
	F16B(0(SI), X8, Y8); \
	F16B(2(SI), X9, Y9); \
	VPADDD Y16, Y4, Y4; \
	K4FIN(XB0, Y4, Y0); \
	ADDQ   $bs, SI; \
	ADDQ   $292, DI; \
	DECQ   CX; \
	JNZ    sblk; \
	HSUM0; \
	VMOVSS X0, (R13); \
	ADDQ   $4, R13; \
	DECQ   BX; \
	JNZ    row; \
done: \
	VZEROUPPER; \
	RET

#define K4TOK4(c) \
	K4TOK(c, XB0, Y4, Y16); \
	K4TOK(c, XB1, Y5, Y17); \
	K4TOK(c, XB2, Y6, Y18); \
	K4TOK(c, XB3, Y7, Y19)

#define K45X4(PREP, bs, qhload) \
	MOVQ    w+0(FP), SI; \
	MOVQ    rows+8(FP), BX; \
	MOVQ    xstride+24(FP), R8; \
	LEAQ    (R8)(R8*2), R9; \
	MOVQ    out+40(FP), R13; \
	TESTQ   BX, BX; \
	JZ      done; \
row: \
	MOVQ    x+16(FP), DI; \
	MOVQ    nb+32(FP), CX; \
	VXORPS  Y0, Y0, Y0; \
	VXORPS  Y1, Y1, Y1; \
	VXORPS  Y2, Y2, Y2; \
	VXORPS  Y3, Y3, Y3; \
sblk: \
	K4SCALES; \
	qhload; \
	VPXOR   Y4, Y4, Y4; \
	VPXOR   Y5, Y5, Y5; \
	VPXOR   Y6, Y6, Y6; \
	VPXOR   Y7, Y7, Y7; \
	VPXORD  Y16, Y16, Y16; \
	VPXORD  Y17, Y17, Y17; \
	VPXORD  Y18, Y18, Y18; \
	VPXORD  Y19, Y19, Y19; \
	PREP(0); \
	K4TOK4(0); \
	PREP(1); \
	K4TOK4(1); \
	PREP(2); \
	K4TOK4(2); \
	PREP(3); \
	K4TOK4(3); \
	F16B(0(SI), X8, Y8); \
	F16B(2(SI), X9, Y9); \
	VPADDD  Y16, Y4, Y4; \
	VPADDD  Y17, Y5, Y5; \
	VPADDD  Y18, Y6, Y6; \
	VPADDD  Y19, Y7, Y7; \
	K4FIN(XB0, Y4, Y0); \
	K4FIN(XB1, Y5, Y1); \
	K4FIN(XB2, Y6, Y2); \
	K4FIN(XB3, Y7, Y3); \
	ADDQ    $bs, SI; \
	ADDQ    $292, DI; \
	DECQ    CX; \
	JNZ     sblk; \
	REDUCE4; \
	VMOVUPS X0, (R13); \
	ADDQ    $16, R13; \
	DECQ    BX; \
	JNZ     row; \
done: \
	VZEROUPPER; \
	RET

#define NOQH
#define LOADQH VMOVDQU 16(SI), Y14

// func dotQ4_Kx1VNNI(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotQ4_Kx1VNNI(SB), NOSPLIT, $48-40
	K45X1(Q4PREP, 144, NOQH)

// func dotQ4_Kx4VNNI(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotQ4_Kx4VNNI(SB), NOSPLIT, $48-48
	K45X4(Q4PREP, 144, NOQH)

// func dotQ5_Kx1VNNI(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotQ5_Kx1VNNI(SB), NOSPLIT, $48-40
	K45X1(Q5PREP, 176, LOADQH)

// func dotQ5_Kx4VNNI(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotQ5_Kx4VNNI(SB), NOSPLIT, $48-48
	K45X4(Q5PREP, 176, LOADQH)

// ---- Q6_K ----
//
// ql[128] at 0, qh[64] at 128, 16 int8 scales at 192, d f16 at 208; 210
// bytes. Half h (128 elements) has 32-element groups g = 0..3: low nibble
// from ql[64h + 32(g%2) + l] (high nibble for g >= 2), top two bits from
// qh[32h + l] bits 2g, 2g+1; x = d*sc[e/16]*(q-32). The kernel multiplies
// the unsigned q (0..63) and subtracts 32*Σ sc*bsums at the end.
//
// Y15 holds the 0x0f mask, X14 the 16 scales, Y13 the qh bytes of the
// current half.

// Q6GROUP builds group g of half h in Y8 from the low nibbles (ql, shifted
// right by sh) and the qh bits moved to bits 4-5 (by QHB), and the group's
// two scales (16 lanes: 8 of sc[2k], 8 of sc[2k+1], k = 4h+g) in Y9.
#define Q6GROUP(h, g, qloff, nibshift, QHB) \
	VMOVDQU   64*h+qloff(SI), Y8; \
	nibshift; \
	VPAND     Y15, Y8, Y8; \
	QHB; \
	VPAND     bits45<>(SB), Y10, Y10; \
	VPOR      Y10, Y8, Y8; \
	VPSHUFB   q6sc<>+64*h+16*g(SB), X14, X9; \
	VPMOVSXBW X9, Y9

#define NIBLO
#define NIBHI VPSRLW $4, Y8, Y8
#define QH0 VPSLLW $4, Y13, Y10
#define QH1 VPSLLW $2, Y13, Y10
#define QH2 VMOVDQA Y13, Y10
#define QH3 VPSRLW $2, Y13, Y10

// Q6TOK adds group (h, g) of one token into sumi. The x1 kernel puts the
// odd groups into Y16, added before Q6FIN (see K4TOK); the x4 kernel has
// four independent chains already and measured faster without.
#define Q6TOK(h, g, xb, sumi) \
	VPMADDUBSW 4+128*h+32*g xb, Y8, Y10; \
	VPDPWSSD   Y9, Y10, sumi

// Q6FIN adds one token's super-block into acc: d*dy*(sumi - 32*Σ
// sc*bsums). Y8 holds d, Y9 the 16 scales as int16.
#define Q6FIN(xb, sumi, acc) \
	VMOVDQU      260 xb, Y10; \
	VPMADDWD     Y9, Y10, Y10; \
	VPSLLD       $5, Y10, Y10; \
	VPSUBD       Y10, sumi, sumi; \
	VCVTDQ2PS    sumi, sumi; \
	VBROADCASTSS xb, Y10; \
	VMULPS       Y8, Y10, Y10; \
	VFMADD231PS  Y10, sumi, acc

#define Q6HALF1(h) \
	VMOVDQU 128+32*h(SI), Y13; \
	Q6GROUP(h, 0, 0, NIBLO, QH0); \
	Q6TOK(h, 0, XB0, Y4); \
	Q6GROUP(h, 1, 32, NIBLO, QH1); \
	Q6TOK(h, 1, XB0, Y16); \
	Q6GROUP(h, 2, 0, NIBHI, QH2); \
	Q6TOK(h, 2, XB0, Y4); \
	Q6GROUP(h, 3, 32, NIBHI, QH3); \
	Q6TOK(h, 3, XB0, Y16)

#define Q6TOK4(h, g) \
	Q6TOK(h, g, XB0, Y4); \
	Q6TOK(h, g, XB1, Y5); \
	Q6TOK(h, g, XB2, Y6); \
	Q6TOK(h, g, XB3, Y7)

#define Q6HALF4(h) \
	VMOVDQU 128+32*h(SI), Y13; \
	Q6GROUP(h, 0, 0, NIBLO, QH0); \
	Q6TOK4(h, 0); \
	Q6GROUP(h, 1, 32, NIBLO, QH1); \
	Q6TOK4(h, 1); \
	Q6GROUP(h, 2, 0, NIBHI, QH2); \
	Q6TOK4(h, 2); \
	Q6GROUP(h, 3, 32, NIBHI, QH3); \
	Q6TOK4(h, 3)

// func dotQ6_Kx1VNNI(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotQ6_Kx1VNNI(SB), NOSPLIT, $0-40
	MOVQ    w+0(FP), SI
	MOVQ    rows+8(FP), BX
	MOVQ    out+32(FP), R13
	VMOVDQU lo4<>(SB), Y15
	TESTQ   BX, BX
	JZ      done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+24(FP), CX
	VXORPS Y0, Y0, Y0

sblk:
	VMOVDQU 192(SI), X14
	VPXOR   Y4, Y4, Y4
	VPXORD  Y16, Y16, Y16
	Q6HALF1(0)
	Q6HALF1(1)
	F16B(208(SI), X8, Y8)
	VPMOVSXBW X14, Y9
	VPADDD  Y16, Y4, Y4
	Q6FIN(XB0, Y4, Y0)
	ADDQ    $210, SI
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

// func dotQ6_Kx4VNNI(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotQ6_Kx4VNNI(SB), NOSPLIT, $0-48
	MOVQ    w+0(FP), SI
	MOVQ    rows+8(FP), BX
	MOVQ    xstride+24(FP), R8
	LEAQ    (R8)(R8*2), R9
	MOVQ    out+40(FP), R13
	VMOVDQU lo4<>(SB), Y15
	TESTQ   BX, BX
	JZ      done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sblk:
	VMOVDQU 192(SI), X14
	VPXOR   Y4, Y4, Y4
	VPXOR   Y5, Y5, Y5
	VPXOR   Y6, Y6, Y6
	VPXOR   Y7, Y7, Y7
	Q6HALF4(0)
	Q6HALF4(1)
	F16B(208(SI), X8, Y8)
	VPMOVSXBW X14, Y9
	Q6FIN(XB0, Y4, Y0)
	Q6FIN(XB1, Y5, Y1)
	Q6FIN(XB2, Y6, Y2)
	Q6FIN(XB3, Y7, Y3)
	ADDQ    $210, SI
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
