//go:build !kvgo_generic

#include "textflag.h"

// AVX-512 VNNI kernels for the legacy blocks (Q8_0, Q4_0, Q5_0 weights
// against Q8_0 activations) that make the weights unsigned by an offset
// instead of by the sign trick, so that each token's block costs one
// VPDPBUSD on the activation quants as they are in memory, with no
// per-token VPSIGNB (which measured about a quarter of the kernels' time).
//
// With u = w + c, an unsigned byte (c = 128 for Q8_0, whose codes are
// stored two's complement, 8 for Q4_0 and 16 for Q5_0, whose codes are
// stored with that offset already), Σ w·x = Σ u·x - c·Σ x. The sums c·Σ x
// depend on the activations only, so each kernel computes them once per
// call, for every block of its tokens, into a table on its stack frame,
// and every weight row then adds them. All
// of this is integer arithmetic and exact; the int32 lanes and the float32
// operations after them are those of qdot_amd64.s's kernels, so the
// results are the AVX2 kernels', bit for bit, for every activation that
// quantizeQ8_0 produces (quants in [-127, 127]). An activation quant of
// -128 is the one difference: the AVX2 sign trick negates it to itself,
// these kernels multiply it exactly.
//
// The table takes 32 bytes per block (x4: the reduced
// [t0 t1 t2 t3 | t0 t1 t2 t3] lanes) or 64 (x8), for at most
// vnniMaxBlocks = 1024 blocks (32768 columns); the Go side sends longer
// rows to the sign-trick kernels of vnni_amd64.s.

#include "asm_amd64.h"

DATA unibshift<>+0(SB)/8, $0
DATA unibshift<>+8(SB)/8, $0
DATA unibshift<>+16(SB)/8, $4
DATA unibshift<>+24(SB)/8, $4
GLOBL unibshift<>(SB), RODATA|NOPTR, $32

DATA signbits<>+0(SB)/8, $0x8080808080808080
DATA signbits<>+8(SB)/8, $0x8080808080808080
DATA signbits<>+16(SB)/8, $0x8080808080808080
DATA signbits<>+24(SB)/8, $0x8080808080808080
GLOBL signbits<>(SB), RODATA|NOPTR, $32

// The PREPU macros leave the block's unsigned weights u in Y5 and the
// weight scale in all lanes of Y6.

#define PREPU_Q8_0(o) \
	VMOVDQU o+2(SI), Y5; \
	VPXOR   signbits<>(SB), Y5, Y5; \
	F16B(o(SI), X6, Y6)

#define PREPU_Q4_0(o) \
	VBROADCASTI128 o+2(SI), Y5; \
	VPSRLVQ        unibshift<>(SB), Y5, Y5; \
	VPAND          lo4<>(SB), Y5, Y5; \
	F16B(o(SI), X6, Y6)

// PREPU_Q5_0 adds the fifth bits as 16 under a mask loaded straight from
// qh (see vnni_amd64.s's PREP_Q5_0).
#define PREPU_Q5_0(o) \
	VBROADCASTI128 o+6(SI), Y5; \
	VPSRLVQ        unibshift<>(SB), Y5, Y5; \
	VPAND          lo4<>(SB), Y5, Y5; \
	KMOVD          o+2(SI), K1; \
	VPADDB         bit4<>(SB), Y5, K1, Y5; \
	F16B(o(SI), X6, Y6)

// XSUM leaves in i the eight int32 sums of four consecutive quants of the
// 32 at xa (Y15 holds bytes of 1).
#define XSUM(xa, i) \
	VPXOR    i, i, i; \
	VPDPBUSD xa, Y15, i

// NEGSHIFT turns sums s into -(s << sh), the table entries.
#define NEGSHIFT(sh, i) \
	VPSLLD $sh, i, i; \
	VPXOR  Y14, Y14, Y14; \
	VPSUBD i, Y14, i

// RED4 reduces the int32 vectors Y8-Y11 of four tokens to Y12 =
// [t0 t1 t2 t3 | t0 t1 t2 t3], the sums of each token's lanes 0-3 and
// 4-7 (qdot_amd64.s's LGROUP). Uses Y13, Y14.
#define RED4 \
	VPUNPCKLDQ  Y9, Y8, Y12; \
	VPUNPCKHDQ  Y9, Y8, Y13; \
	VPADDD      Y13, Y12, Y12; \
	VPUNPCKLDQ  Y11, Y10, Y13; \
	VPUNPCKHDQ  Y11, Y10, Y14; \
	VPADDD      Y14, Y13, Y13; \
	VPUNPCKLQDQ Y13, Y12, Y14; \
	VPUNPCKHQDQ Y13, Y12, Y12; \
	VPADDD      Y14, Y12, Y12

// XSUM4 stores the table entry of the four tokens at xb, xb+R8, xb+2*R8,
// xb+R9 for the block whose quants are at offset 2 into dst.
#define XSUM4(xb, sh, dst) \
	XSUM(2 xb, Y8); \
	XSUM(2 xb(R8*1), Y9); \
	XSUM(2 xb(R8*2), Y10); \
	XSUM(2 xb(R9*1), Y11); \
	RED4; \
	NEGSHIFT(sh, Y12); \
	VMOVDQU Y12, dst

// UDOT leaves one token's block product, before the offset correction,
// as eight int32 partial sums in i.
#define UDOT(xa, i) \
	VPXOR    i, i, i; \
	VPDPBUSD xa, Y5, i

// UGROUP4 adds the block products of the four tokens at xb... (see XSUM4)
// times dw (Y6) times their scales (four float32 at sa) into acc; ta is
// the group's table entry.
#define UGROUP4(o, xb, ta, sa, acc) \
	UDOT(o+2 xb, Y8); \
	UDOT(o+2 xb(R8*1), Y9); \
	UDOT(o+2 xb(R8*2), Y10); \
	UDOT(o+2 xb(R9*1), Y11); \
	RED4; \
	VPADDD         ta, Y12, Y12; \
	VCVTDQ2PS      Y12, Y12; \
	VBROADCASTF128 sa, Y13; \
	VMULPS         Y6, Y13, Y13; \
	VFMADD231PS    Y13, Y12, acc

#define LFOLD(y, x, t) \
	VEXTRACTF128 $1, y, t; \
	VADDPS       t, x, x

// ULEGACYX4 is LEGACYX4 of qdot_amd64.s on unsigned weights. The table is
// at 0(SP), 32 bytes per block.
// Arguments: w+0 rows+8 x+16 xstride+24 xs4+32 nb+40 out+48.
#define ULEGACYX4(PREP, bs, sh) \
	MOVQ    xstride+24(FP), R8; \
	LEAQ    (R8)(R8*2), R9; \
	MOVQ    x+16(FP), DI; \
	MOVQ    nb+40(FP), CX; \
	VMOVDQU ones8<>(SB), Y15; \
	XORQ    R12, R12; \
	TESTQ   CX, CX; \
	JZ      start; \
xsum: \
	XSUM4((DI), sh, (SP)(R12*1)); \
	ADDQ    $34, DI; \
	ADDQ    $32, R12; \
	DECQ    CX; \
	JNZ     xsum; \
start: \
	MOVQ    w+0(FP), SI; \
	MOVQ    rows+8(FP), BX; \
	MOVQ    out+48(FP), R13; \
	TESTQ   BX, BX; \
	JZ      done; \
row: \
	MOVQ    x+16(FP), DI; \
	MOVQ    xs4+32(FP), DX; \
	MOVQ    nb+40(FP), CX; \
	XORQ    R12, R12; \
	VXORPS  Y0, Y0, Y0; \
	VXORPS  Y1, Y1, Y1; \
	CMPQ    CX, $2; \
	JL      one; \
pair: \
	PREP(0); \
	UGROUP4(0, (DI), (SP)(R12*1), (DX), Y0); \
	PREP(bs); \
	UGROUP4(34, (DI), 32(SP)(R12*1), 16(DX), Y1); \
	ADDQ    $(2*bs), SI; \
	ADDQ    $68, DI; \
	ADDQ    $32, DX; \
	ADDQ    $64, R12; \
	SUBQ    $2, CX; \
	CMPQ    CX, $2; \
	JGE     pair; \
one: \
	TESTQ   CX, CX; \
	JZ      sum; \
	PREP(0); \
	UGROUP4(0, (DI), (SP)(R12*1), (DX), Y0); \
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

// ULEGACYX8 is LEGACYX8 of qdot_amd64.s on unsigned weights. The table is
// at 0(SP), 64 bytes per block: tokens 0-3, then 4-7.
// Arguments: w+0 rows+8 x+16 xstride+24 xs4+32 nb+40 out+48.
#define ULEGACYX8(PREP, bs, sh) \
	MOVQ         xstride+24(FP), R8; \
	LEAQ         (R8)(R8*2), R9; \
	MOVQ         x+16(FP), DI; \
	LEAQ         (DI)(R8*4), R10; \
	MOVQ         nb+40(FP), CX; \
	VMOVDQU      ones8<>(SB), Y15; \
	XORQ         R12, R12; \
	TESTQ        CX, CX; \
	JZ           start; \
xsum: \
	XSUM4((DI), sh, (SP)(R12*1)); \
	XSUM4((R10), sh, 32(SP)(R12*1)); \
	ADDQ         $34, DI; \
	ADDQ         $34, R10; \
	ADDQ         $64, R12; \
	DECQ         CX; \
	JNZ          xsum; \
start: \
	MOVQ         w+0(FP), SI; \
	MOVQ         rows+8(FP), BX; \
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
	XORQ         R12, R12; \
	VXORPS       Y0, Y0, Y0; \
	VXORPS       Y1, Y1, Y1; \
blk: \
	PREP(0); \
	UGROUP4(0, (DI), (SP)(R12*1), (DX), Y0); \
	UGROUP4(0, (R10), 32(SP)(R12*1), (R13), Y1); \
	ADDQ         $bs, SI; \
	ADDQ         $34, DI; \
	ADDQ         $34, R10; \
	ADDQ         $16, DX; \
	ADDQ         $16, R13; \
	ADDQ         $64, R12; \
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

// Frames: 32 bytes (x4) or 64 bytes (x8) per block for 1024 blocks.
//
// There is no x1 kernel: one token's table costs as much as the sign
// trick it saves when the rows are few, and an x1 version with the
// table measured 10% slower than vnni_amd64.s's.

// func dotQ8_0x4VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ8_0x4VNNIU(SB), 0, $32768-56
	ULEGACYX4(PREPU_Q8_0, 34, 7)

// func dotQ4_0x4VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ4_0x4VNNIU(SB), 0, $32768-56
	ULEGACYX4(PREPU_Q4_0, 18, 3)

// func dotQ5_0x4VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ5_0x4VNNIU(SB), 0, $32768-56
	ULEGACYX4(PREPU_Q5_0, 22, 4)

// func dotQ8_0x8VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ8_0x8VNNIU(SB), 0, $65536-56
	ULEGACYX8(PREPU_Q8_0, 34, 7)

// func dotQ4_0x8VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ4_0x8VNNIU(SB), 0, $65536-56
	ULEGACYX8(PREPU_Q4_0, 18, 3)

// func dotQ5_0x8VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ5_0x8VNNIU(SB), 0, $65536-56
	ULEGACYX8(PREPU_Q5_0, 22, 4)
