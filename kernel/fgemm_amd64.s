//go:build !kvgo_generic

#include "textflag.h"

// dotF16x44AVX512 multiplies four F16 weight rows with four float32
// activation rows at once: 16 accumulators (4 rows × 4 tokens) in the 32
// ymm registers of AVX512VL, each weight vector converted once and each
// activation vector loaded once per 8 columns for four multiply-adds,
// against one row's 4 (and a conversion per 4 products) in FX4 of
// fdot_amd64.s. Lanes run along the columns; each (row, token) sum is
// reduced across lanes at the end, so the order of additions differs from
// FX4's only in how the lanes are split (8 lanes, no second accumulator).
//
// rows must be a multiple of 4 and n of 8. out[r*ostride/4 + t] gets
// row r · token t.

// RED4 leaves the lane sums of a, b, c, d in lanes 0-3 of xa (a's low
// half); xt is scratch.
#define RED4(a, b, c, d, xa, xt) \
	VHADDPS      b, a, a; \
	VHADDPS      d, c, c; \
	VHADDPS      c, a, a; \
	VEXTRACTF128 $1, a, xt; \
	VADDPS       xt, xa, xa

// func dotF16x44AVX512(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride int)
TEXT ·dotF16x44AVX512(SB), NOSPLIT, $0-64
	MOVQ  w+0(FP), R12
	MOVQ  wstride+8(FP), R10
	LEAQ  (R10)(R10*2), R11
	MOVQ  rows+16(FP), BX
	MOVQ  xstride+32(FP), R8
	LEAQ  (R8)(R8*2), R9
	MOVQ  out+48(FP), R13
	MOVQ  ostride+56(FP), DX
	TESTQ BX, BX
	JZ    done

quad:
	MOVQ   R12, SI
	MOVQ   x+24(FP), DI
	MOVQ   n+40(FP), CX
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	VPXORD Y16, Y16, Y16
	VPXORD Y17, Y17, Y17
	VPXORD Y18, Y18, Y18
	VPXORD Y19, Y19, Y19
	VPXORD Y20, Y20, Y20
	VPXORD Y21, Y21, Y21
	VPXORD Y22, Y22, Y22
	VPXORD Y23, Y23, Y23

l8:
	VMOVUPS     (DI), Y0
	VMOVUPS     (DI)(R8*1), Y1
	VMOVUPS     (DI)(R8*2), Y2
	VMOVUPS     (DI)(R9*1), Y3
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   (SI)(R10*1), Y5
	VCVTPH2PS   (SI)(R10*2), Y6
	VCVTPH2PS   (SI)(R11*1), Y7
	VFMADD231PS Y0, Y4, Y8
	VFMADD231PS Y1, Y4, Y9
	VFMADD231PS Y2, Y4, Y10
	VFMADD231PS Y3, Y4, Y11
	VFMADD231PS Y0, Y5, Y12
	VFMADD231PS Y1, Y5, Y13
	VFMADD231PS Y2, Y5, Y14
	VFMADD231PS Y3, Y5, Y15
	VFMADD231PS Y0, Y6, Y16
	VFMADD231PS Y1, Y6, Y17
	VFMADD231PS Y2, Y6, Y18
	VFMADD231PS Y3, Y6, Y19
	VFMADD231PS Y0, Y7, Y20
	VFMADD231PS Y1, Y7, Y21
	VFMADD231PS Y2, Y7, Y22
	VFMADD231PS Y3, Y7, Y23
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JNZ         l8

	// Rows 2 and 3 move to registers VHADDPS can address.
	VMOVAPS Y16, Y0
	VMOVAPS Y17, Y1
	VMOVAPS Y18, Y2
	VMOVAPS Y19, Y3
	VMOVAPS Y20, Y4
	VMOVAPS Y21, Y5
	VMOVAPS Y22, Y6
	VMOVAPS Y23, Y7
	RED4(Y8, Y9, Y10, Y11, X8, X9)
	RED4(Y12, Y13, Y14, Y15, X12, X13)
	RED4(Y0, Y1, Y2, Y3, X0, X1)
	RED4(Y4, Y5, Y6, Y7, X4, X5)
	VMOVUPS X8, (R13)
	ADDQ    DX, R13
	VMOVUPS X12, (R13)
	ADDQ    DX, R13
	VMOVUPS X0, (R13)
	ADDQ    DX, R13
	VMOVUPS X4, (R13)
	ADDQ    DX, R13
	LEAQ    (R12)(R10*4), R12
	SUBQ    $4, BX
	JNZ     quad

done:
	VZEROUPPER
	RET
