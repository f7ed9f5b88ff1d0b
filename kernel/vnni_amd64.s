//go:build !kvgo_generic

#include "textflag.h"

// AVX-512 VNNI versions of the legacy-block kernels of qdot_amd64.s (Q8_0,
// Q4_0 and Q5_0 weights against Q8_0 activations), one, four and eight
// tokens per weight row. See vnni_amd64.go for the Go declarations and the
// CPU check.
//
// Each kernel computes exactly what its AVX2 twin computes, bit for bit:
// the weights are unpacked and made unsigned by the same sign trick
// (|w| * (x * sign(w))), and the products are summed into the same int32
// lanes (lane k of a 32-byte block holds bytes 4k..4k+3), only with one
// VPDPBUSD (four unsigned-by-signed byte products summed into each int32,
// never saturating) instead of VPMADDUBSW + VPMADDWD. Integer sums are
// exact in any order, so the float32 operations that follow (conversion,
// scale product, multiply-add into the same accumulators, final additions)
// see the same inputs in the same order. The vectors stay 256 bits wide
// (AVX512VL encodings) so the lane layout, and hence every rounding, is
// the AVX2 kernel's. TestVNNIMatchesAVX2 holds them to that.

#include "asm_amd64.h"

DATA nibshift<>+0(SB)/8, $0
DATA nibshift<>+8(SB)/8, $0
DATA nibshift<>+16(SB)/8, $4
DATA nibshift<>+24(SB)/8, $4
GLOBL nibshift<>(SB), RODATA|NOPTR, $32

// The PREP macros are those of qdot_amd64.s: signed weights in Y4, their
// absolute values in Y5, the weight scale in all lanes of Y6.

#define PREP_Q8_0(o) \
	VMOVDQU o+2(SI), Y4; \
	VPABSB  Y4, Y5; \
	F16B(o(SI), X6, Y6)

#define PREP_Q4_0(o) \
	VBROADCASTI128 o+2(SI), Y4; \
	VPSRLVQ        nibshift<>(SB), Y4, Y4; \
	VPAND          lo4<>(SB), Y4, Y4; \
	VPSUBB      eights<>(SB), Y4, Y4; \
	VPABSB      Y4, Y5; \
	F16B(o(SI), X6, Y6)

// PREP_Q5_0 takes each weight's fifth bit straight from the 32-bit qh
// into a mask register (bit j belongs to byte j, element j, of the
// unpacked nibbles) and adds 16 under it: w = nibble - 16 + 16*bit, in
// seven instructions where the AVX2 kernel spreads the bits with a
// shuffle, a test and a blend.
#define PREP_Q5_0(o) \
	VBROADCASTI128 o+6(SI), Y4; \
	VPSRLVQ        nibshift<>(SB), Y4, Y4; \
	VPAND          lo4<>(SB), Y4, Y4; \
	KMOVD          o+2(SI), K1; \
	VPSUBB         bit4<>(SB), Y4, Y4; \
	VPADDB         bit4<>(SB), Y4, K1, Y4; \
	VPABSB         Y4, Y5; \
	F16B(o(SI), X6, Y6)

// DOTI leaves one token's block product, as eight int32 partial sums, in i
// (t is a scratch register): the token's quants at xa, signed by the
// weights, times |w|.
#define DOTI(xa, t, i) \
	VMOVDQU  xa, t; \
	VPSIGNB  Y4, t, t; \
	VPXOR    i, i, i; \
	VPDPBUSD t, Y5, i

#define LTOK(xa, sa, acc) \
	DOTI(xa, Y7, Y9); \
	VCVTDQ2PS    Y9, Y7; \
	VBROADCASTSS sa, Y8; \
	VMULPS       Y6, Y8, Y8; \
	VFMADD231PS  Y8, Y7, acc

// LEGACYX1 is the one-token body of qdot_amd64.s with DOTI.
// Arguments: w+0 rows+8 x+16 xs+24 nb+32 out+40.
#define LEGACYX1(PREP, bs) \
	MOVQ     w+0(FP), SI; \
	MOVQ     rows+8(FP), BX; \
	MOVQ     out+40(FP), R13; \
	TESTQ    BX, BX; \
	JZ       done; \
row: \
	MOVQ     x+16(FP), DI; \
	MOVQ     xs+24(FP), DX; \
	MOVQ     nb+32(FP), CX; \
	VXORPS   Y0, Y0, Y0; \
	VXORPS   Y1, Y1, Y1; \
	CMPQ     CX, $2; \
	JL       one; \
pair: \
	PREP(0); \
	LTOK(2(DI), (DX), Y0); \
	PREP(bs); \
	LTOK(36(DI), 4(DX), Y1); \
	ADDQ     $(2*bs), SI; \
	ADDQ     $68, DI; \
	ADDQ     $8, DX; \
	SUBQ     $2, CX; \
	CMPQ     CX, $2; \
	JGE      pair; \
one: \
	TESTQ    CX, CX; \
	JZ       sum; \
	PREP(0); \
	LTOK(2(DI), (DX), Y0); \
	ADDQ     $bs, SI; \
sum: \
	VADDPS   Y1, Y0, Y0; \
	HSUM0; \
	VMOVSS   X0, (R13); \
	ADDQ     $4, R13; \
	DECQ     BX; \
	JNZ      row; \
done: \
	VZEROUPPER; \
	RET

// LGROUP adds the block products of four tokens (the int32 vectors in Y8,
// Y9, Y10, Y11) times dw (Y6) times their scales (four float32 at sa) into
// acc, as qdot_amd64.s's LGROUP does. (Three VPHADDD would do the same
// reduction in fewer instructions but measured 10% slower.)
#define LGROUP(sa, acc) \
	VPUNPCKLDQ     Y9, Y8, Y12; \
	VPUNPCKHDQ     Y9, Y8, Y13; \
	VPADDD         Y13, Y12, Y12; \
	VPUNPCKLDQ     Y11, Y10, Y13; \
	VPUNPCKHDQ     Y11, Y10, Y14; \
	VPADDD         Y14, Y13, Y13; \
	VPUNPCKLQDQ    Y13, Y12, Y14; \
	VPUNPCKHQDQ    Y13, Y12, Y12; \
	VPADDD         Y14, Y12, Y12; \
	VCVTDQ2PS      Y12, Y12; \
	VBROADCASTF128 sa, Y13; \
	VMULPS         Y6, Y13, Y13; \
	VFMADD231PS    Y13, Y12, acc

#define LFOLD(y, x, t) \
	VEXTRACTF128 $1, y, t; \
	VADDPS       t, x, x

#define LGROUP4(o, xb, sa, acc) \
	DOTI(o+2 xb, Y7, Y8); \
	DOTI(o+2 xb(R8*1), Y7, Y9); \
	DOTI(o+2 xb(R8*2), Y7, Y10); \
	DOTI(o+2 xb(R9*1), Y7, Y11); \
	LGROUP(sa, acc)

// LEGACYX4 is the four-token body of qdot_amd64.s.
// Arguments: w+0 rows+8 x+16 xstride+24 xs4+32 nb+40 out+48.
#define LEGACYX4(PREP, bs) \
	MOVQ    w+0(FP), SI; \
	MOVQ    rows+8(FP), BX; \
	MOVQ    xstride+24(FP), R8; \
	LEAQ    (R8)(R8*2), R9; \
	MOVQ    out+48(FP), R13; \
	TESTQ   BX, BX; \
	JZ      done; \
row: \
	MOVQ    x+16(FP), DI; \
	MOVQ    xs4+32(FP), DX; \
	MOVQ    nb+40(FP), CX; \
	VXORPS  Y0, Y0, Y0; \
	VXORPS  Y1, Y1, Y1; \
	CMPQ    CX, $2; \
	JL      one; \
pair: \
	PREP(0); \
	LGROUP4(0, (DI), (DX), Y0); \
	PREP(bs); \
	LGROUP4(34, (DI), 16(DX), Y1); \
	ADDQ    $(2*bs), SI; \
	ADDQ    $68, DI; \
	ADDQ    $32, DX; \
	SUBQ    $2, CX; \
	CMPQ    CX, $2; \
	JGE     pair; \
one: \
	TESTQ   CX, CX; \
	JZ      sum; \
	PREP(0); \
	LGROUP4(0, (DI), (DX), Y0); \
	ADDQ    $bs, SI; \
sum: \
	VADDPS  Y1, Y0, Y0; \
	LFOLD(Y0, X0, X1); \
	VMOVUPS X0, (R13); \
	ADDQ    $16, R13; \
	DECQ    BX; \
	JNZ     row; \
done: \
	VZEROUPPER; \
	RET

// LEGACYX8 is the eight-token body of qdot_amd64.s.
// Arguments: w+0 rows+8 x+16 xstride+24 xs4+32 nb+40 out+48.
#define LEGACYX8(PREP, bs) \
	MOVQ         w+0(FP), SI; \
	MOVQ         rows+8(FP), BX; \
	MOVQ         xstride+24(FP), R8; \
	LEAQ         (R8)(R8*2), R9; \
	MOVQ         nb+40(FP), R11; \
	SHLQ         $4, R11; \
	TESTQ        BX, BX; \
	JZ           done; \
row: \
	MOVQ         x+16(FP), DI; \
	LEAQ         (DI)(R8*4), R10; \
	MOVQ         xs4+32(FP), DX; \
	LEAQ         (DX)(R11*1), R13; \
	MOVQ         nb+40(FP), CX; \
	VXORPS       Y0, Y0, Y0; \
	VXORPS       Y1, Y1, Y1; \
blk: \
	PREP(0); \
	LGROUP4(0, (DI), (DX), Y0); \
	LGROUP4(0, (R10), (R13), Y1); \
	ADDQ         $bs, SI; \
	ADDQ         $34, DI; \
	ADDQ         $34, R10; \
	ADDQ         $16, DX; \
	ADDQ         $16, R13; \
	DECQ         CX; \
	JNZ          blk; \
	LFOLD(Y0, X0, X2); \
	LFOLD(Y1, X1, X2); \
	MOVQ         out+48(FP), AX; \
	VMOVUPS      X0, (AX); \
	VMOVUPS      X1, 16(AX); \
	ADDQ         $32, AX; \
	MOVQ         AX, out+48(FP); \
	DECQ         BX; \
	JNZ          row; \
done: \
	VZEROUPPER; \
	RET

// func dotQ8_0x1VNNI(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ8_0x1VNNI(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q8_0, 34)

// func dotQ4_0x1VNNI(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ4_0x1VNNI(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q4_0, 18)

// func dotQ5_0x1VNNI(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ5_0x1VNNI(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q5_0, 22)

// func dotQ8_0x4VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ8_0x4VNNI(SB), NOSPLIT, $0-56
	LEGACYX4(PREP_Q8_0, 34)

// func dotQ8_0x8VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ8_0x8VNNI(SB), NOSPLIT, $0-56
	LEGACYX8(PREP_Q8_0, 34)

// func dotQ4_0x4VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ4_0x4VNNI(SB), NOSPLIT, $0-56
	LEGACYX4(PREP_Q4_0, 18)

// func dotQ4_0x8VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ4_0x8VNNI(SB), NOSPLIT, $0-56
	LEGACYX8(PREP_Q4_0, 18)

// func dotQ5_0x4VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ5_0x4VNNI(SB), NOSPLIT, $0-56
	LEGACYX4(PREP_Q5_0, 22)

// func dotQ5_0x8VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ5_0x8VNNI(SB), NOSPLIT, $0-56
	LEGACYX8(PREP_Q5_0, 22)
