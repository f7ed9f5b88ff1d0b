//go:build !kvgo_generic

#include "textflag.h"

// Dot products of quantized weight rows with quantized activations
// (AVX2, FMA, F16C). See qdot_amd64.go for the Go declarations and
// qdot.go for the pure-Go reference each one is tested against.
//
// Every function takes `rows` consecutive weight rows of nb blocks at w.
// The x1 variants multiply each row with one activation row and store
// out[r]; the x4 variants multiply each row with four activation rows
// (xstride bytes apart) and store out[4r+t]. Keeping four tokens per pass
// over a weight block is what makes prefill compute-bound rather than
// bandwidth-bound: the weight unpacking is done once for four tokens.
//
// Integer products use VPMADDUBSW (unsigned bytes times signed bytes, pairs
// summed to int16), which is exact for every operand range used here, and
// VPMADDWD to widen to int32. The legacy formats (Q8_0, Q4_0, Q5_0) make
// the weight unsigned with the sign trick |w| * (y * sign(w)).

#include "asm_amd64.h"

// ---- Legacy 32-element blocks against Q8_0 activations ----
//
// The PREP macros leave the block's signed weights in Y4, their absolute
// values in Y5 and the weight scale in all lanes of Y6. LTOK then adds one
// token's block product into acc: xa addresses the token's 32 quants, sa
// its float32 scale.

#define PREP_Q8_0(o) \
	VMOVDQU o+2(SI), Y4; \
	VPSIGNB Y4, Y4, Y5; \
	F16B(o(SI), X6, Y6)

#define PREP_Q4_0(o) \
	VMOVDQU     o+2(SI), X4; \
	VPSRLW      $4, X4, X5; \
	VINSERTI128 $1, X5, Y4, Y4; \
	VPAND       lo4<>(SB), Y4, Y4; \
	VPSUBB      eights<>(SB), Y4, Y4; \
	VPSIGNB     Y4, Y4, Y5; \
	F16B(o(SI), X6, Y6)

#define PREP_Q5_0(o) \
	VMOVDQU      o+6(SI), X4; \
	VPSRLW       $4, X4, X5; \
	VINSERTI128  $1, X5, Y4, Y4; \
	VPAND        lo4<>(SB), Y4, Y4; \
	VPBROADCASTD o+2(SI), Y5; \
	VPSHUFB      q5spread<>(SB), Y5, Y5; \
	VPAND        q5bit<>(SB), Y5, Y5; \
	VPCMPEQB     q5bit<>(SB), Y5, Y5; \
	VPANDN       hi4<>(SB), Y5, Y5; \
	VPOR         Y5, Y4, Y4; \
	VPSIGNB      Y4, Y4, Y5; \
	F16B(o(SI), X6, Y6)

#define LTOK(xa, sa, acc) \
	VMOVDQU      xa, Y7; \
	VPSIGNB      Y4, Y7, Y7; \
	VPMADDUBSW   Y7, Y5, Y7; \
	VPMADDWD     Y15, Y7, Y7; \
	VCVTDQ2PS    Y7, Y7; \
	VBROADCASTSS sa, Y8; \
	VMULPS       Y6, Y8, Y8; \
	VFMADD231PS  Y8, Y7, acc

// LEGACYX1 is the body of a one-token legacy kernel with block size bs:
// two blocks per iteration into two accumulators.
// Arguments: w+0 rows+8 x+16 xs+24 nb+32 out+40.
#define LEGACYX1(PREP, bs) \
	MOVQ     w+0(FP), SI; \
	MOVQ     rows+8(FP), BX; \
	MOVQ     out+40(FP), R13; \
	VMOVDQU  ones16<>(SB), Y15; \
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

// LEGACYX4 is the body of a four-token legacy kernel.
// Arguments: w+0 rows+8 x+16 xstride+24 xs+32 xsstride+40 nb+48 out+56.
#define LEGACYX4(PREP, bs) \
	MOVQ    w+0(FP), SI; \
	MOVQ    rows+8(FP), BX; \
	MOVQ    xstride+24(FP), R8; \
	LEAQ    (R8)(R8*2), R9; \
	MOVQ    xsstride+40(FP), R10; \
	LEAQ    (R10)(R10*2), R11; \
	MOVQ    out+56(FP), R13; \
	VMOVDQU ones16<>(SB), Y15; \
	TESTQ   BX, BX; \
	JZ      done; \
row: \
	MOVQ    x+16(FP), DI; \
	MOVQ    xs+32(FP), DX; \
	MOVQ    nb+48(FP), CX; \
	VXORPS  Y0, Y0, Y0; \
	VXORPS  Y1, Y1, Y1; \
	VXORPS  Y2, Y2, Y2; \
	VXORPS  Y3, Y3, Y3; \
blk: \
	PREP(0); \
	LTOK(2(DI), (DX), Y0); \
	LTOK(2(DI)(R8*1), (DX)(R10*1), Y1); \
	LTOK(2(DI)(R8*2), (DX)(R10*2), Y2); \
	LTOK(2(DI)(R9*1), (DX)(R11*1), Y3); \
	ADDQ    $bs, SI; \
	ADDQ    $34, DI; \
	ADDQ    $4, DX; \
	DECQ    CX; \
	JNZ     blk; \
	REDUCE4; \
	VMOVUPS X0, (R13); \
	ADDQ    $16, R13; \
	DECQ    BX; \
	JNZ     row; \
done: \
	VZEROUPPER; \
	RET

// func dotQ8_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ8_0x1AVX2(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q8_0, 34)

// func dotQ8_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs *float32, xsstride int, nb int, out *float32)
TEXT ·dotQ8_0x4AVX2(SB), NOSPLIT, $0-64
	LEGACYX4(PREP_Q8_0, 34)

// func dotQ4_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ4_0x1AVX2(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q4_0, 18)

// func dotQ4_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs *float32, xsstride int, nb int, out *float32)
TEXT ·dotQ4_0x4AVX2(SB), NOSPLIT, $0-64
	LEGACYX4(PREP_Q4_0, 18)

// func dotQ5_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ5_0x1AVX2(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q5_0, 22)

// func dotQ5_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs *float32, xsstride int, nb int, out *float32)
TEXT ·dotQ5_0x4AVX2(SB), NOSPLIT, $0-64
	LEGACYX4(PREP_Q5_0, 22)
