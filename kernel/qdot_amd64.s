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

// 16-bit lanes of 1, for VPMADDWD as a pairwise widening add.
DATA ones16<>+0(SB)/8, $0x0001000100010001
DATA ones16<>+8(SB)/8, $0x0001000100010001
DATA ones16<>+16(SB)/8, $0x0001000100010001
DATA ones16<>+24(SB)/8, $0x0001000100010001
GLOBL ones16<>(SB), RODATA|NOPTR, $32

DATA lo4<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA lo4<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA lo4<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA lo4<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL lo4<>(SB), RODATA|NOPTR, $32

DATA eights<>+0(SB)/8, $0x0808080808080808
DATA eights<>+8(SB)/8, $0x0808080808080808
DATA eights<>+16(SB)/8, $0x0808080808080808
DATA eights<>+24(SB)/8, $0x0808080808080808
GLOBL eights<>(SB), RODATA|NOPTR, $32

DATA hi4<>+0(SB)/8, $0xf0f0f0f0f0f0f0f0
DATA hi4<>+8(SB)/8, $0xf0f0f0f0f0f0f0f0
DATA hi4<>+16(SB)/8, $0xf0f0f0f0f0f0f0f0
DATA hi4<>+24(SB)/8, $0xf0f0f0f0f0f0f0f0
GLOBL hi4<>(SB), RODATA|NOPTR, $32

DATA bit4<>+0(SB)/8, $0x1010101010101010
DATA bit4<>+8(SB)/8, $0x1010101010101010
DATA bit4<>+16(SB)/8, $0x1010101010101010
DATA bit4<>+24(SB)/8, $0x1010101010101010
GLOBL bit4<>(SB), RODATA|NOPTR, $32

DATA bits45<>+0(SB)/8, $0x3030303030303030
DATA bits45<>+8(SB)/8, $0x3030303030303030
DATA bits45<>+16(SB)/8, $0x3030303030303030
DATA bits45<>+24(SB)/8, $0x3030303030303030
GLOBL bits45<>(SB), RODATA|NOPTR, $32

// Q5_0: spread the 32 high bits qh (broadcast to every dword) so that byte
// j holds byte j/8 of qh, then test bit j%8.
DATA q5spread<>+0(SB)/8, $0x0000000000000000
DATA q5spread<>+8(SB)/8, $0x0101010101010101
DATA q5spread<>+16(SB)/8, $0x0202020202020202
DATA q5spread<>+24(SB)/8, $0x0303030303030303
GLOBL q5spread<>(SB), RODATA|NOPTR, $32

DATA q5bit<>+0(SB)/8, $0x8040201008040201
DATA q5bit<>+8(SB)/8, $0x8040201008040201
DATA q5bit<>+16(SB)/8, $0x8040201008040201
DATA q5bit<>+24(SB)/8, $0x8040201008040201
GLOBL q5bit<>(SB), RODATA|NOPTR, $32

// Q6_K: VPSHUFB controls that pick scale bytes 2k (8 times) and 2k+1 (8
// times) out of the 16 scales, for the 32-element group k.
DATA q6sc<>+0(SB)/8, $0x0000000000000000
DATA q6sc<>+8(SB)/8, $0x0101010101010101
DATA q6sc<>+16(SB)/8, $0x0202020202020202
DATA q6sc<>+24(SB)/8, $0x0303030303030303
DATA q6sc<>+32(SB)/8, $0x0404040404040404
DATA q6sc<>+40(SB)/8, $0x0505050505050505
DATA q6sc<>+48(SB)/8, $0x0606060606060606
DATA q6sc<>+56(SB)/8, $0x0707070707070707
DATA q6sc<>+64(SB)/8, $0x0808080808080808
DATA q6sc<>+72(SB)/8, $0x0909090909090909
DATA q6sc<>+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA q6sc<>+88(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA q6sc<>+96(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6sc<>+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA q6sc<>+112(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA q6sc<>+120(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL q6sc<>(SB), RODATA|NOPTR, $128

// HSUM0 leaves the sum of the eight lanes of Y0 in X0 (lane 0).
#define HSUM0 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVHLPS     X0, X0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSHDUP    X0, X1; \
	VADDSS       X1, X0, X0

// REDUCE4 leaves the lane sums of Y0..Y3 in X0 lanes 0..3.
#define REDUCE4 \
	VHADDPS      Y1, Y0, Y0; \
	VHADDPS      Y3, Y2, Y2; \
	VHADDPS      Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0

// F16B converts the half at addr to float32 and broadcasts it into ymm y
// (through AX and xmm x, the low half of y).
#define F16B(addr, x, y) \
	MOVWLZX      addr, AX; \
	VMOVD        AX, x; \
	VCVTPH2PS    x, x; \
	VBROADCASTSS x, y

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
