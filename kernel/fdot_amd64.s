//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"

// Float kernels (AVX2, FMA, F16C): dot products of F32, F16 and BF16 rows
// with float32 vectors, for weight matrices (F16/BF16 weights meet
// activations already rounded to F16/BF16, see roundF16) and for attention
// (keys against a query), and the value accumulation of attention.
//
// The row kernels take rows rows of n elements, wstride bytes apart. The x1
// variants store out[r] = row r · x; the x4 variants store out[4r+t] = row
// r · x_t for four vectors xstride bytes apart. Any n works: the kernels
// run 32 (x1) or 16 (x4) elements per iteration, then 8, then one at a time.

#define LDW_F32(off, y) VMOVUPS off(SI), y
#define LDW_F16(off, y) VCVTPH2PS off(SI), y
#define LDW_BF16(off, y) VPMOVZXWD off(SI), y; VPSLLD $16, y, y
#define LDS_F32(x) VMOVSS (SI), x
#define LDS_F16(x) MOVWLZX (SI), AX; VMOVD AX, x; VCVTPH2PS x, x
#define LDS_BF16(x) MOVWLZX (SI), AX; SHLL $16, AX; VMOVD AX, x

// Arguments: w+0 wstride+8 rows+16 x+24 n+32 out+40.
#define FX1(LDW, LDS, es) \
	MOVQ        w+0(FP), R12; \
	MOVQ        rows+16(FP), BX; \
	MOVQ        out+40(FP), R13; \
	TESTQ       BX, BX; \
	JZ          done; \
row: \
	MOVQ        R12, SI; \
	MOVQ        x+24(FP), DI; \
	MOVQ        n+32(FP), CX; \
	VXORPS      Y0, Y0, Y0; \
	VXORPS      Y1, Y1, Y1; \
	VXORPS      Y2, Y2, Y2; \
	VXORPS      Y3, Y3, Y3; \
	CMPQ        CX, $32; \
	JL          l8; \
l32: \
	LDW(0, Y4); \
	LDW(8*es, Y5); \
	LDW(16*es, Y6); \
	LDW(24*es, Y7); \
	VFMADD231PS 0(DI), Y4, Y0; \
	VFMADD231PS 32(DI), Y5, Y1; \
	VFMADD231PS 64(DI), Y6, Y2; \
	VFMADD231PS 96(DI), Y7, Y3; \
	ADDQ        $(32*es), SI; \
	ADDQ        $128, DI; \
	SUBQ        $32, CX; \
	CMPQ        CX, $32; \
	JGE         l32; \
l8: \
	CMPQ        CX, $8; \
	JL          red; \
	LDW(0, Y4); \
	VFMADD231PS (DI), Y4, Y0; \
	ADDQ        $(8*es), SI; \
	ADDQ        $32, DI; \
	SUBQ        $8, CX; \
	JMP         l8; \
red: \
	VADDPS      Y1, Y0, Y0; \
	VADDPS      Y3, Y2, Y2; \
	VADDPS      Y2, Y0, Y0; \
	HSUM0; \
tail: \
	TESTQ       CX, CX; \
	JZ          store; \
	LDS(X1); \
	VFMADD231SS (DI), X1, X0; \
	ADDQ        $es, SI; \
	ADDQ        $4, DI; \
	DECQ        CX; \
	JMP         tail; \
store: \
	VMOVSS      X0, (R13); \
	ADDQ        $4, R13; \
	ADDQ        wstride+8(FP), R12; \
	DECQ        BX; \
	JNZ         row; \
done: \
	VZEROUPPER; \
	RET

// Results go to out + r*ostride + t*tstride (bytes): [4r+t] for a matrix
// tile (16, 4), [t*n+r] for the scores of four queries over n keys (4, 4n).
// Arguments: w+0 wstride+8 rows+16 x+24 xstride+32 n+40 out+48 ostride+56
// tstride+64.
#define FX4(LDW, LDS, es) \
	MOVQ        w+0(FP), R12; \
	MOVQ        rows+16(FP), BX; \
	MOVQ        xstride+32(FP), R8; \
	LEAQ        (R8)(R8*2), R9; \
	MOVQ        out+48(FP), R13; \
	MOVQ        tstride+64(FP), DX; \
	LEAQ        (DX)(DX*2), R10; \
	TESTQ       BX, BX; \
	JZ          done; \
row: \
	MOVQ        R12, SI; \
	MOVQ        x+24(FP), DI; \
	MOVQ        n+40(FP), CX; \
	VXORPS      Y0, Y0, Y0; \
	VXORPS      Y1, Y1, Y1; \
	VXORPS      Y2, Y2, Y2; \
	VXORPS      Y3, Y3, Y3; \
	VXORPS      Y4, Y4, Y4; \
	VXORPS      Y5, Y5, Y5; \
	VXORPS      Y6, Y6, Y6; \
	VXORPS      Y7, Y7, Y7; \
	CMPQ        CX, $16; \
	JL          l8; \
l16: \
	LDW(0, Y8); \
	LDW(8*es, Y9); \
	VFMADD231PS 0(DI), Y8, Y0; \
	VFMADD231PS 32(DI), Y9, Y4; \
	VFMADD231PS 0(DI)(R8*1), Y8, Y1; \
	VFMADD231PS 32(DI)(R8*1), Y9, Y5; \
	VFMADD231PS 0(DI)(R8*2), Y8, Y2; \
	VFMADD231PS 32(DI)(R8*2), Y9, Y6; \
	VFMADD231PS 0(DI)(R9*1), Y8, Y3; \
	VFMADD231PS 32(DI)(R9*1), Y9, Y7; \
	ADDQ        $(16*es), SI; \
	ADDQ        $64, DI; \
	SUBQ        $16, CX; \
	CMPQ        CX, $16; \
	JGE         l16; \
l8: \
	CMPQ        CX, $8; \
	JL          red; \
	LDW(0, Y8); \
	VFMADD231PS 0(DI), Y8, Y0; \
	VFMADD231PS 0(DI)(R8*1), Y8, Y1; \
	VFMADD231PS 0(DI)(R8*2), Y8, Y2; \
	VFMADD231PS 0(DI)(R9*1), Y8, Y3; \
	ADDQ        $(8*es), SI; \
	ADDQ        $32, DI; \
	SUBQ        $8, CX; \
red: \
	VADDPS      Y4, Y0, Y0; \
	VADDPS      Y5, Y1, Y1; \
	VADDPS      Y6, Y2, Y2; \
	VADDPS      Y7, Y3, Y3; \
	REDUCE4; \
tail: \
	TESTQ       CX, CX; \
	JZ          store; \
	LDS(X1); \
	VBROADCASTSS X1, X1; \
	VMOVSS      (DI), X2; \
	VINSERTPS   $0x10, (DI)(R8*1), X2, X2; \
	VINSERTPS   $0x20, (DI)(R8*2), X2, X2; \
	VINSERTPS   $0x30, (DI)(R9*1), X2, X2; \
	VFMADD231PS X2, X1, X0; \
	ADDQ        $es, SI; \
	ADDQ        $4, DI; \
	DECQ        CX; \
	JMP         tail; \
store: \
	VMOVSS      X0, (R13); \
	VEXTRACTPS  $1, X0, (R13)(DX*1); \
	VEXTRACTPS  $2, X0, (R13)(DX*2); \
	VEXTRACTPS  $3, X0, (R13)(R10*1); \
	ADDQ        ostride+56(FP), R13; \
	ADDQ        wstride+8(FP), R12; \
	DECQ        BX; \
	JNZ         row; \
done: \
	VZEROUPPER; \
	RET

// WSUM is the body of the weighted sums y[0:d] += Σ_r p[r]*v_r over rows
// rows of v vstride bytes apart, for d a multiple of 8. y is kept in
// registers 64 (then 32, then 8) elements at a time while all rows stream
// by: eight accumulators are eight independent chains of multiply-adds,
// enough to hide most of the FMA latency that four left exposed
// (BenchmarkWeightedSumPage decided this; figures in docs/PERFORMANCE.md);
// rows whose weight is ±0 are skipped, as a masked-out attention score must
// not turn an Inf in v into NaN.
// Arguments: y+0 p+8 v+16 vstride+24 rows+32 d+40.
#define WSUM(LDW, es) \
	MOVQ        y+0(FP), DI; \
	MOVQ        v+16(FP), R12; \
	MOVQ        vstride+24(FP), R8; \
	MOVQ        d+40(FP), CX; \
c64: \
	CMPQ        CX, $64; \
	JL          c32; \
	VMOVUPS     (DI), Y0; \
	VMOVUPS     32(DI), Y1; \
	VMOVUPS     64(DI), Y2; \
	VMOVUPS     96(DI), Y3; \
	VMOVUPS     128(DI), Y4; \
	VMOVUPS     160(DI), Y5; \
	VMOVUPS     192(DI), Y6; \
	VMOVUPS     224(DI), Y7; \
	MOVQ        p+8(FP), DX; \
	MOVQ        R12, SI; \
	MOVQ        rows+32(FP), BX; \
	TESTQ       BX, BX; \
	JZ          s64; \
r64: \
	MOVL        (DX), AX; \
	TESTL       $0x7fffffff, AX; \
	JZ          n64; \
	VBROADCASTSS (DX), Y8; \
	LDW(0, Y9); \
	LDW(8*es, Y10); \
	LDW(16*es, Y11); \
	LDW(24*es, Y12); \
	VFMADD231PS Y9, Y8, Y0; \
	VFMADD231PS Y10, Y8, Y1; \
	VFMADD231PS Y11, Y8, Y2; \
	VFMADD231PS Y12, Y8, Y3; \
	LDW(32*es, Y9); \
	LDW(40*es, Y10); \
	LDW(48*es, Y11); \
	LDW(56*es, Y12); \
	VFMADD231PS Y9, Y8, Y4; \
	VFMADD231PS Y10, Y8, Y5; \
	VFMADD231PS Y11, Y8, Y6; \
	VFMADD231PS Y12, Y8, Y7; \
n64: \
	ADDQ        $4, DX; \
	ADDQ        R8, SI; \
	DECQ        BX; \
	JNZ         r64; \
s64: \
	VMOVUPS     Y0, (DI); \
	VMOVUPS     Y1, 32(DI); \
	VMOVUPS     Y2, 64(DI); \
	VMOVUPS     Y3, 96(DI); \
	VMOVUPS     Y4, 128(DI); \
	VMOVUPS     Y5, 160(DI); \
	VMOVUPS     Y6, 192(DI); \
	VMOVUPS     Y7, 224(DI); \
	ADDQ        $256, DI; \
	ADDQ        $(64*es), R12; \
	SUBQ        $64, CX; \
	JMP         c64; \
c32: \
	CMPQ        CX, $32; \
	JL          c8; \
	VMOVUPS     (DI), Y0; \
	VMOVUPS     32(DI), Y1; \
	VMOVUPS     64(DI), Y2; \
	VMOVUPS     96(DI), Y3; \
	MOVQ        p+8(FP), DX; \
	MOVQ        R12, SI; \
	MOVQ        rows+32(FP), BX; \
	TESTQ       BX, BX; \
	JZ          s32; \
r32: \
	MOVL        (DX), AX; \
	TESTL       $0x7fffffff, AX; \
	JZ          n32; \
	VBROADCASTSS (DX), Y4; \
	LDW(0, Y5); \
	LDW(8*es, Y6); \
	LDW(16*es, Y7); \
	LDW(24*es, Y8); \
	VFMADD231PS Y5, Y4, Y0; \
	VFMADD231PS Y6, Y4, Y1; \
	VFMADD231PS Y7, Y4, Y2; \
	VFMADD231PS Y8, Y4, Y3; \
n32: \
	ADDQ        $4, DX; \
	ADDQ        R8, SI; \
	DECQ        BX; \
	JNZ         r32; \
s32: \
	VMOVUPS     Y0, (DI); \
	VMOVUPS     Y1, 32(DI); \
	VMOVUPS     Y2, 64(DI); \
	VMOVUPS     Y3, 96(DI); \
	ADDQ        $128, DI; \
	ADDQ        $(32*es), R12; \
	SUBQ        $32, CX; \
	JMP         c32; \
c8: \
	CMPQ        CX, $8; \
	JL          done; \
	VMOVUPS     (DI), Y0; \
	MOVQ        p+8(FP), DX; \
	MOVQ        R12, SI; \
	MOVQ        rows+32(FP), BX; \
	TESTQ       BX, BX; \
	JZ          s8; \
r8: \
	MOVL        (DX), AX; \
	TESTL       $0x7fffffff, AX; \
	JZ          n8; \
	VBROADCASTSS (DX), Y4; \
	LDW(0, Y5); \
	VFMADD231PS Y5, Y4, Y0; \
n8: \
	ADDQ        $4, DX; \
	ADDQ        R8, SI; \
	DECQ        BX; \
	JNZ         r8; \
s8: \
	VMOVUPS     Y0, (DI); \
	ADDQ        $32, DI; \
	ADDQ        $(8*es), R12; \
	SUBQ        $8, CX; \
	JMP         c8; \
done: \
	VZEROUPPER; \
	RET

// WSUM3 is WSUM for three heads at once: y_h += Σ_r p_h[r]·v_r for h = 0,
// 1, 2, where y_h is ystride bytes after y_{h-1} and p_h pstride bytes
// after p_{h-1}. Each value vector is loaded (and for F16 converted) once
// and used by all three heads, and the 32-column pass keeps 12 independent
// accumulators, against one head's 8: faster than a pass per head at
// g = 7 in every shape of BenchmarkWeightedSumHeads (figures in
// docs/PERFORMANCE.md); our reading, not measured apart, is that 8 FMA
// chains leave the FMA units waiting on latency.
// A row is skipped only when its weight is zero in all three heads; a head
// whose weight alone is zero adds 0·v, which for a finite v is exact.
// Arguments: y+0 ystride+8 p+16 pstride+24 v+32 vstride+40 rows+48 d+56.
#define WSUM3_ROWCHECK(skip) \
	MOVL        (DX), AX; \
	ORL         (DX)(R9*1), AX; \
	ORL         (DX)(R9*2), AX; \
	TESTL       $0x7fffffff, AX; \
	JZ          skip; \
	VBROADCASTSS (DX), Y12; \
	VBROADCASTSS (DX)(R9*1), Y13; \
	VBROADCASTSS (DX)(R9*2), Y14

#define WSUM3_COL(LDW, off, a0, a1, a2) \
	LDW(off, Y15); \
	VFMADD231PS Y15, Y12, a0; \
	VFMADD231PS Y15, Y13, a1; \
	VFMADD231PS Y15, Y14, a2

#define WSUM3(LDW, es) \
	MOVQ        y+0(FP), DI; \
	MOVQ        ystride+8(FP), R10; \
	MOVQ        pstride+24(FP), R9; \
	MOVQ        v+32(FP), R12; \
	MOVQ        vstride+40(FP), R8; \
	MOVQ        d+56(FP), CX; \
	LEAQ        (DI)(R10*2), R11; \
c32: \
	CMPQ        CX, $32; \
	JL          c8; \
	VMOVUPS     (DI), Y0; \
	VMOVUPS     32(DI), Y1; \
	VMOVUPS     64(DI), Y2; \
	VMOVUPS     96(DI), Y3; \
	VMOVUPS     (DI)(R10*1), Y4; \
	VMOVUPS     32(DI)(R10*1), Y5; \
	VMOVUPS     64(DI)(R10*1), Y6; \
	VMOVUPS     96(DI)(R10*1), Y7; \
	VMOVUPS     (R11), Y8; \
	VMOVUPS     32(R11), Y9; \
	VMOVUPS     64(R11), Y10; \
	VMOVUPS     96(R11), Y11; \
	MOVQ        p+16(FP), DX; \
	MOVQ        R12, SI; \
	MOVQ        rows+48(FP), BX; \
	TESTQ       BX, BX; \
	JZ          s32; \
r32: \
	WSUM3_ROWCHECK(n32); \
	WSUM3_COL(LDW, 0, Y0, Y4, Y8); \
	WSUM3_COL(LDW, 8*es, Y1, Y5, Y9); \
	WSUM3_COL(LDW, 16*es, Y2, Y6, Y10); \
	WSUM3_COL(LDW, 24*es, Y3, Y7, Y11); \
n32: \
	ADDQ        $4, DX; \
	ADDQ        R8, SI; \
	DECQ        BX; \
	JNZ         r32; \
s32: \
	VMOVUPS     Y0, (DI); \
	VMOVUPS     Y1, 32(DI); \
	VMOVUPS     Y2, 64(DI); \
	VMOVUPS     Y3, 96(DI); \
	VMOVUPS     Y4, (DI)(R10*1); \
	VMOVUPS     Y5, 32(DI)(R10*1); \
	VMOVUPS     Y6, 64(DI)(R10*1); \
	VMOVUPS     Y7, 96(DI)(R10*1); \
	VMOVUPS     Y8, (R11); \
	VMOVUPS     Y9, 32(R11); \
	VMOVUPS     Y10, 64(R11); \
	VMOVUPS     Y11, 96(R11); \
	ADDQ        $128, DI; \
	ADDQ        $128, R11; \
	ADDQ        $(32*es), R12; \
	SUBQ        $32, CX; \
	JMP         c32; \
c8: \
	CMPQ        CX, $8; \
	JL          done; \
	VMOVUPS     (DI), Y0; \
	VMOVUPS     (DI)(R10*1), Y4; \
	VMOVUPS     (R11), Y8; \
	MOVQ        p+16(FP), DX; \
	MOVQ        R12, SI; \
	MOVQ        rows+48(FP), BX; \
	TESTQ       BX, BX; \
	JZ          s8; \
r8: \
	WSUM3_ROWCHECK(n8); \
	WSUM3_COL(LDW, 0, Y0, Y4, Y8); \
n8: \
	ADDQ        $4, DX; \
	ADDQ        R8, SI; \
	DECQ        BX; \
	JNZ         r8; \
s8: \
	VMOVUPS     Y0, (DI); \
	VMOVUPS     Y4, (DI)(R10*1); \
	VMOVUPS     Y8, (R11); \
	ADDQ        $32, DI; \
	ADDQ        $32, R11; \
	ADDQ        $(8*es), R12; \
	SUBQ        $8, CX; \
	JMP         c8; \
done: \
	VZEROUPPER; \
	RET

// func dotF32x1AVX2(w *float32, wstride int, rows int, x *float32, n int, out *float32)
TEXT ·dotF32x1AVX2(SB), NOSPLIT, $0-48
	FX1(LDW_F32, LDS_F32, 4)

// func dotF16x1AVX2(w *uint16, wstride int, rows int, x *float32, n int, out *float32)
TEXT ·dotF16x1AVX2(SB), NOSPLIT, $0-48
	FX1(LDW_F16, LDS_F16, 2)

// func dotBF16x1AVX2(w *uint16, wstride int, rows int, x *float32, n int, out *float32)
TEXT ·dotBF16x1AVX2(SB), NOSPLIT, $0-48
	FX1(LDW_BF16, LDS_BF16, 2)

// func dotF32x4AVX2(w *float32, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int)
TEXT ·dotF32x4AVX2(SB), NOSPLIT, $0-72
	FX4(LDW_F32, LDS_F32, 4)

// func dotF16x4AVX2(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int)
TEXT ·dotF16x4AVX2(SB), NOSPLIT, $0-72
	FX4(LDW_F16, LDS_F16, 2)

// func dotBF16x4AVX2(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int)
TEXT ·dotBF16x4AVX2(SB), NOSPLIT, $0-72
	FX4(LDW_BF16, LDS_BF16, 2)

// func axpyF32AVX2(y *float32, a float32, x *float32, n int)
//
// y += a*x for n a multiple of 8.
TEXT ·axpyF32AVX2(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	VBROADCASTSS a+8(FP), Y0
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX
	CMPQ         CX, $32
	JL           l8

l32:
	VMOVUPS     (DI), Y1
	VMOVUPS     32(DI), Y2
	VMOVUPS     64(DI), Y3
	VMOVUPS     96(DI), Y4
	VFMADD231PS (SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS     Y1, (DI)
	VMOVUPS     Y2, 32(DI)
	VMOVUPS     Y3, 64(DI)
	VMOVUPS     Y4, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         l32

l8:
	CMPQ        CX, $8
	JL          done
	VMOVUPS     (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         l8

done:
	VZEROUPPER
	RET

// func axpyF16AVX2(y *float32, a float32, x *uint16, n int)
//
// y += a*x for half x and n a multiple of 8.
TEXT ·axpyF16AVX2(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	VBROADCASTSS a+8(FP), Y0
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX
	CMPQ         CX, $32
	JL           l8

l32:
	VCVTPH2PS   (SI), Y5
	VCVTPH2PS   16(SI), Y6
	VCVTPH2PS   32(SI), Y7
	VCVTPH2PS   48(SI), Y8
	VMOVUPS     (DI), Y1
	VMOVUPS     32(DI), Y2
	VMOVUPS     64(DI), Y3
	VMOVUPS     96(DI), Y4
	VFMADD231PS Y5, Y0, Y1
	VFMADD231PS Y6, Y0, Y2
	VFMADD231PS Y7, Y0, Y3
	VFMADD231PS Y8, Y0, Y4
	VMOVUPS     Y1, (DI)
	VMOVUPS     Y2, 32(DI)
	VMOVUPS     Y3, 64(DI)
	VMOVUPS     Y4, 96(DI)
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         l32

l8:
	CMPQ        CX, $8
	JL          done
	VCVTPH2PS   (SI), Y5
	VMOVUPS     (DI), Y1
	VFMADD231PS Y5, Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         l8

done:
	VZEROUPPER
	RET

// func wsumF32AVX2(y *float32, p *float32, v *float32, vstride int, rows int, d int)
TEXT ·wsumF32AVX2(SB), NOSPLIT, $0-48
	WSUM(LDW_F32, 4)

// func wsumF16AVX2(y *float32, p *float32, v *uint16, vstride int, rows int, d int)
TEXT ·wsumF16AVX2(SB), NOSPLIT, $0-48
	WSUM(LDW_F16, 2)

// func wsum3F32AVX2(y *float32, ystride int, p *float32, pstride int, v *float32, vstride int, rows int, d int)
TEXT ·wsum3F32AVX2(SB), NOSPLIT, $0-64
	WSUM3(LDW_F32, 4)

// func wsum3F16AVX2(y *float32, ystride int, p *float32, pstride int, v *uint16, vstride int, rows int, d int)
TEXT ·wsum3F16AVX2(SB), NOSPLIT, $0-64
	WSUM3(LDW_F16, 2)
