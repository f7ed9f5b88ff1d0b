//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"
#include "legacy_amd64.h"

// Dot products of IQ4_NL and IQ4_XS weight rows (AVX2, FMA, F16C). The
// calling conventions are those of qdot_amd64.s (IQ4_NL, against Q8_0
// activations and their float32 scales) and kdot_amd64.s (IQ4_XS, against
// Q8_K activations). See iq4.go for the pure-Go twins they are tested
// against.
//
// A 4-bit index becomes its signed table value with one VPSHUFB against
// ggml's kvalues_iq4nl, held in both 128-bit lanes of a register; the
// products then go through the sign trick of the legacy kernels
// (|w| * (y * sign(w)), exact: |w| <= 127). ggml's AVX2 kernels build the
// same values and take the same integer sums, and for IQ4_NL add alternate
// blocks into two accumulators as LEGACYX1 does.

// kvalues_iq4nl: -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38,
// 53, 69, 89, 113.
DATA iq4tab<>+0(SB)/8, $0xf6eaddcfbfad9881
DATA iq4tab<>+8(SB)/8, $0x7159453526190d01
GLOBL iq4tab<>(SB), RODATA|NOPTR, $16

// PREP_IQ4_NL is the PREP of the legacy macros for an IQ4_NL block: signed
// weights in Y4, their absolute values in Y5, d in Y6. Y3 holds the table.
#define PREP_IQ4_NL(o) \
	VBROADCASTI128 o+2(SI), Y4; \
	VPSRLVQ        nibshift<>(SB), Y4, Y4; \
	VPAND          lo4<>(SB), Y4, Y4; \
	VBROADCASTI128 iq4tab<>(SB), Y3; \
	VPSHUFB        Y4, Y3, Y4; \
	VPSIGNB        Y4, Y4, Y5; \
	F16B(o(SI), X6, Y6)

// func dotIQ4_NLx1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotIQ4_NLx1AVX2(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_IQ4_NL, 18)

// func dotIQ4_NLx4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotIQ4_NLx4AVX2(SB), NOSPLIT, $0-56
	LEGACYX4(PREP_IQ4_NL, 18)

// func dotIQ4_NLx8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotIQ4_NLx8AVX2(SB), NOSPLIT, $0-56
	LEGACYX8(PREP_IQ4_NL, 18)

// ---- IQ4_XS: d f16 at 0, scales_h at 2, scales_l[4] at 4, nibbles at 8;
// 136 bytes. Group g (32 elements) has the nibbles at 8+16g and the scale
// ls = (scales_l[g/2] >> 4(g%2) & 15) | (scales_h >> 2g & 3) << 4; its
// values are d*(ls-32)*table[q].
//
// Registers: Y0-Y3 float accumulators (one per token), Y4-Y7 int32 sums of
// the super-block, Y8 signed weights of the group, Y9 their absolute
// values, Y10 the group scale (ls-32, 16-bit lanes), Y11 the table, Y12
// and Y13 scratch.

// The token addresses: activation row t is at DI + t*xstride.
#define XB0 (DI)
#define XB1 (DI)(R8*1)
#define XB2 (DI)(R8*2)
#define XB3 (DI)(R9*1)

// XSPREP(g, soff, lsh, hsh) prepares group g, whose low scale bits are
// byte soff of the block shifted right by lsh, the high ones scales_h
// shifted right by hsh.
#define XSPREP(g, soff, lsh, hsh) \
	VBROADCASTI128 8+16*g(SI), Y8; \
	VPSRLVQ        nibshift<>(SB), Y8, Y8; \
	VPAND          lo4<>(SB), Y8, Y8; \
	VPSHUFB        Y8, Y11, Y8; \
	VPSIGNB        Y8, Y8, Y9; \
	MOVBLZX        soff(SI), AX; \
	SHRL           $lsh, AX; \
	ANDL           $15, AX; \
	MOVWLZX        2(SI), DX; \
	SHRL           $hsh, DX; \
	ANDL           $3, DX; \
	SHLL           $4, DX; \
	ORL            DX, AX; \
	SUBL           $32, AX; \
	VMOVD          AX, X10; \
	VPBROADCASTW   X10, Y10

// XSTOK adds one token's products of group g (its quants at 4+32g of the
// Q8_K block at xb) into sumi.
#define XSTOK(g, xb, sumi) \
	VMOVDQU    4+32*g xb, Y12; \
	VPSIGNB    Y8, Y12, Y12; \
	VPMADDUBSW Y12, Y9, Y12; \
	VPMADDWD   Y10, Y12, Y12; \
	VPADDD     Y12, sumi, sumi

// XSFIN adds one token's super-block into acc: (d*dy)*sumi. Y13 holds d.
#define XSFIN(xb, sumi, acc) \
	VBROADCASTSS xb, Y12; \
	VMULPS       Y13, Y12, Y12; \
	VCVTDQ2PS    sumi, sumi; \
	VFMADD231PS  Y12, sumi, acc

#define XSGROUPS(TOKS) \
	XSPREP(0, 4, 0, 0); \
	TOKS(0); \
	XSPREP(1, 4, 4, 2); \
	TOKS(1); \
	XSPREP(2, 5, 0, 4); \
	TOKS(2); \
	XSPREP(3, 5, 4, 6); \
	TOKS(3); \
	XSPREP(4, 6, 0, 8); \
	TOKS(4); \
	XSPREP(5, 6, 4, 10); \
	TOKS(5); \
	XSPREP(6, 7, 0, 12); \
	TOKS(6); \
	XSPREP(7, 7, 4, 14); \
	TOKS(7)

#define XSTOK1(g) XSTOK(g, XB0, Y4)

#define XSTOK4(g) \
	XSTOK(g, XB0, Y4); \
	XSTOK(g, XB1, Y5); \
	XSTOK(g, XB2, Y6); \
	XSTOK(g, XB3, Y7)

// func dotIQ4_XSx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)
TEXT ·dotIQ4_XSx1AVX2(SB), NOSPLIT, $0-40
	MOVQ           w+0(FP), SI
	MOVQ           rows+8(FP), BX
	MOVQ           out+32(FP), R13
	VBROADCASTI128 iq4tab<>(SB), Y11
	TESTQ          BX, BX
	JZ             done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+24(FP), CX
	VXORPS Y0, Y0, Y0

sblk:
	VPXOR Y4, Y4, Y4
	XSGROUPS(XSTOK1)
	F16B(0(SI), X13, Y13)
	XSFIN(XB0, Y4, Y0)
	ADDQ  $136, SI
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

// func dotIQ4_XSx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
TEXT ·dotIQ4_XSx4AVX2(SB), NOSPLIT, $0-48
	MOVQ           w+0(FP), SI
	MOVQ           rows+8(FP), BX
	MOVQ           xstride+24(FP), R8
	LEAQ           (R8)(R8*2), R9
	MOVQ           out+40(FP), R13
	VBROADCASTI128 iq4tab<>(SB), Y11
	TESTQ          BX, BX
	JZ             done

row:
	MOVQ   x+16(FP), DI
	MOVQ   nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sblk:
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	XSGROUPS(XSTOK4)
	F16B(0(SI), X13, Y13)
	XSFIN(XB0, Y4, Y0)
	XSFIN(XB1, Y5, Y1)
	XSFIN(XB2, Y6, Y2)
	XSFIN(XB3, Y7, Y3)
	ADDQ  $136, SI
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
