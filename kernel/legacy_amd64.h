// Macros of the kernels of 32-element blocks against Q8_0 activations
// (Q8_0, Q4_0, Q5_0 in qdot_amd64.s, IQ4_NL in iq4_amd64.s). A file that
// includes this must include asm_amd64.h first.

// ---- Legacy 32-element blocks against Q8_0 activations ----
//
// The 16 nibble bytes of Q4_0/Q5_0 are loaded into both halves of a ymm
// and the upper half shifted right by 4 (VPSRLVQ by 0, 0, 4, 4): after
// masking, bytes 0-15 hold elements 0-15 and bytes 16-31 elements 16-31.
DATA nibshift<>+0(SB)/8, $0
DATA nibshift<>+8(SB)/8, $0
DATA nibshift<>+16(SB)/8, $4
DATA nibshift<>+24(SB)/8, $4
GLOBL nibshift<>(SB), RODATA|NOPTR, $32

// The PREP macros leave the block's signed weights in Y4, their absolute
// values in Y5 and the weight scale in all lanes of Y6. LTOK then adds one
// token's block product into acc: xa addresses the token's 32 quants, sa
// its float32 scale.

#define PREP_Q8_0(o) \
	VMOVDQU o+2(SI), Y4; \
	VPSIGNB Y4, Y4, Y5; \
	F16B(o(SI), X6, Y6)

#define PREP_Q4_0(o) \
	VBROADCASTI128 o+2(SI), Y4; \
	VPSRLVQ        nibshift<>(SB), Y4, Y4; \
	VPAND          lo4<>(SB), Y4, Y4; \
	VPSUBB      eights<>(SB), Y4, Y4; \
	VPSIGNB     Y4, Y4, Y5; \
	F16B(o(SI), X6, Y6)

#define PREP_Q5_0(o) \
	VBROADCASTI128 o+6(SI), Y4; \
	VPSRLVQ      nibshift<>(SB), Y4, Y4; \
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

// The multi-token legacy kernels (x4, x8) keep the four int32
// vectors of a token group's block products apart only until they are
// transposed and added into one vector whose lanes are
// [t0 t1 t2 t3 | t0 t1 t2 t3]: one conversion, one scale product and one
// multiply-add then serve four tokens instead of one. This needs the
// activation scales of the four tokens next to each other, block by block
// (the xs4 table, see acts.s4).
//
// LTOKI leaves one token's block product, as eight int32 partial sums, in i.
#define LTOKI(xa, i) \
	VMOVDQU    xa, i; \
	VPSIGNB    Y4, i, i; \
	VPMADDUBSW i, Y5, i; \
	VPMADDWD   Y15, i, i

// LGROUP adds the block products of four tokens (the int32 vectors in Y8,
// Y9, Y10, Y11) times dw (Y6) times their scales (four float32 at sa) into
// acc. Uses Y12-Y14.
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

// LFOLD adds the two 128-bit halves of ymm y into its low half x.
#define LFOLD(y, x, t) \
	VEXTRACTF128 $1, y, t; \
	VADDPS       t, x, x

#define LGROUP4(o, xb, sa, acc) \
	LTOKI(o+2 xb, Y8); \
	LTOKI(o+2 xb(R8*1), Y9); \
	LTOKI(o+2 xb(R8*2), Y10); \
	LTOKI(o+2 xb(R9*1), Y11); \
	LGROUP(sa, acc)

// LEGACYX4 is the body of the four-token kernels: two accumulators taking alternate blocks to hide
// the multiply-add latency.
// Arguments: w+0 rows+8 x+16 xstride+24 xs4+32 nb+40 out+48.
#define LEGACYX4(PREP, bs) \
	MOVQ    w+0(FP), SI; \
	MOVQ    rows+8(FP), BX; \
	MOVQ    xstride+24(FP), R8; \
	LEAQ    (R8)(R8*2), R9; \
	MOVQ    out+48(FP), R13; \
	VMOVDQU ones16<>(SB), Y15; \
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

// LEGACYX8 is the body of the eight-token kernels: two token groups sharing each unpacked weight
// block, which matters most for Q4_0 and Q5_0, whose unpacking costs about
// as much as a group's products. Tokens 4-7 are addressed from R10 = x +
// 4*xstride, their scales from R13 = xs4 + 16*nb.
// Arguments: w+0 rows+8 x+16 xstride+24 xs4+32 nb+40 out+48.
#define LEGACYX8(PREP, bs) \
	MOVQ         w+0(FP), SI; \
	MOVQ         rows+8(FP), BX; \
	MOVQ         xstride+24(FP), R8; \
	LEAQ         (R8)(R8*2), R9; \
	MOVQ         nb+40(FP), R11; \
	SHLQ         $4, R11; \
	VMOVDQU      ones16<>(SB), Y15; \
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
