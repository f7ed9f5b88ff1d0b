//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"

// Activation conversions (AVX2, F16C). Each produces exactly the bytes of
// its twin in package quant; see convert.go.

// func quantizeQ8_0AVX2(x *float32, nb int, dst *byte, scales *float32)
//
// ggml's AVX2 quantize_row_q8_0: d = max|x|/127 stored as F16, q =
// round(x * (127/max|x|)) half to even. The F16 scale is also stored
// widened in scales.
TEXT ·quantizeQ8_0AVX2(SB), NOSPLIT, $0-32
	MOVQ    x+0(FP), SI
	MOVQ    nb+8(FP), CX
	MOVQ    dst+16(FP), DI
	MOVQ    scales+24(FP), DX
	VMOVUPS absmask<>(SB), Y15
	VMOVDQU packperm<>(SB), Y14
	TESTQ   CX, CX
	JZ      done

blk:
	VMOVUPS      0(SI), Y0
	VMOVUPS      32(SI), Y1
	VMOVUPS      64(SI), Y2
	VMOVUPS      96(SI), Y3
	VANDPS       Y15, Y0, Y4
	VANDPS       Y15, Y1, Y5
	VMAXPS       Y5, Y4, Y4
	VANDPS       Y15, Y2, Y5
	VANDPS       Y15, Y3, Y6
	VMAXPS       Y6, Y5, Y5
	VMAXPS       Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VMOVHLPS     X4, X4, X5
	VMAXPS       X5, X4, X4
	VMOVSHDUP    X4, X5
	VMAXSS       X5, X4, X4
	VMOVAPS      X4, X8
	VDIVSS       f127<>(SB), X4, X4
	VCVTPS2PH    $0, X4, X5
	VMOVD        X5, AX
	MOVW         AX, (DI)
	VCVTPH2PS    X5, X5
	VMOVSS       X5, (DX)
	VMOVSS       f127<>(SB), X6
	VDIVSS       X8, X6, X6
	VXORPS       X7, X7, X7
	VCMPSS       $4, X7, X8, X7
	VANDPS       X7, X6, X6
	VBROADCASTSS X6, Y6
	VMULPS       Y6, Y0, Y0
	VMULPS       Y6, Y1, Y1
	VMULPS       Y6, Y2, Y2
	VMULPS       Y6, Y3, Y3
	VCVTPS2DQ    Y0, Y0
	VCVTPS2DQ    Y1, Y1
	VCVTPS2DQ    Y2, Y2
	VCVTPS2DQ    Y3, Y3
	PACK8(Y0, Y1, Y2, Y3)
	VMOVDQU      Y0, 2(DI)
	ADDQ         $128, SI
	ADDQ         $34, DI
	ADDQ         $4, DX
	DECQ         CX
	JNZ          blk

done:
	VZEROUPPER
	RET

// Q8KCHUNK quantizes the 32 elements at c*128(SI) with the scale in Y6
// (round to nearest even, at most 127) into 4+32c(DI), and stores their two
// sums of 16 at 260+4c(DI).
#define Q8KCHUNK(c) \
	VMULPS        c*128(SI), Y6, Y0; \
	VMULPS        c*128+32(SI), Y6, Y1; \
	VMULPS        c*128+64(SI), Y6, Y2; \
	VMULPS        c*128+96(SI), Y6, Y3; \
	VROUNDPS      $0, Y0, Y0; \
	VROUNDPS      $0, Y1, Y1; \
	VROUNDPS      $0, Y2, Y2; \
	VROUNDPS      $0, Y3, Y3; \
	VMINPS        f127<>(SB), Y0, Y0; \
	VMINPS        f127<>(SB), Y1, Y1; \
	VMINPS        f127<>(SB), Y2, Y2; \
	VMINPS        f127<>(SB), Y3, Y3; \
	VCVTPS2DQ     Y0, Y0; \
	VCVTPS2DQ     Y1, Y1; \
	VCVTPS2DQ     Y2, Y2; \
	VCVTPS2DQ     Y3, Y3; \
	PACK8(Y0, Y1, Y2, Y3); \
	VMOVDQU       Y0, 4+32*c(DI); \
	VPMADDUBSW    Y0, Y13, Y1; \
	VPMADDWD      Y12, Y1, Y1; \
	VEXTRACTI128  $1, Y1, X2; \
	VPHADDD       X2, X1, X1; \
	VPHADDD       X1, X1, X1; \
	VPACKSSDW     X1, X1, X1; \
	VMOVD         X1, AX; \
	MOVL          AX, 260+4*c(DI)

// func quantizeQ8_KAVX2(x *float32, nb int, dst *byte)
//
// quantize_row_q8_K_ref: with max the element of largest magnitude (the
// first one on ties), iscale = -127/max, q = min(127, round-to-even(x *
// iscale)), d = 1/iscale as float32, and the sums of each 16 quants.
TEXT ·quantizeQ8_KAVX2(SB), NOSPLIT, $0-24
	MOVQ    x+0(FP), SI
	MOVQ    nb+8(FP), CX
	MOVQ    dst+16(FP), DI
	VMOVUPS absmask<>(SB), Y15
	VMOVDQU packperm<>(SB), Y14
	VMOVDQU ones8<>(SB), Y13
	VMOVDQU ones16<>(SB), Y12
	TESTQ   CX, CX
	JZ      done

blk:
	// amax over the 256 elements
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	MOVQ   SI, R8
	MOVQ   $8, BX

amax:
	VANDPS  0(R8), Y15, Y0
	VANDPS  32(R8), Y15, Y1
	VANDPS  64(R8), Y15, Y2
	VANDPS  96(R8), Y15, Y3
	VMAXPS  Y0, Y4, Y4
	VMAXPS  Y1, Y5, Y5
	VMAXPS  Y2, Y4, Y4
	VMAXPS  Y3, Y5, Y5
	ADDQ    $128, R8
	DECQ    BX
	JNZ     amax
	VMAXPS       Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VMOVHLPS     X4, X4, X5
	VMAXPS       X5, X4, X4
	VMOVSHDUP    X4, X5
	VMAXSS       X5, X4, X4
	VXORPS       X5, X5, X5
	VUCOMISS     X5, X4
	JEQ          zero

	// the first element whose magnitude is amax
	// (Only a NaN can make the search fail; amax then stands in for max.)
	VMOVAPS      X4, X0
	VBROADCASTSS X4, Y4
	MOVQ         SI, R8
	MOVQ         $32, BX

find:
	VANDPS    (R8), Y15, Y1
	VCMPPS    $0, Y4, Y1, Y1
	VMOVMSKPS Y1, AX
	TESTL     AX, AX
	JNZ       found
	ADDQ      $32, R8
	DECQ      BX
	JNZ       find
	JMP       scale

found:
	BSFL         AX, AX
	VMOVSS       (R8)(AX*4), X0

scale:
	VMOVSS       fm127<>(SB), X6
	VDIVSS       X0, X6, X6
	VMOVSS       onef<>(SB), X7
	VDIVSS       X6, X7, X7
	VMOVSS       X7, (DI)
	VBROADCASTSS X6, Y6
	Q8KCHUNK(0)
	Q8KCHUNK(1)
	Q8KCHUNK(2)
	Q8KCHUNK(3)
	Q8KCHUNK(4)
	Q8KCHUNK(5)
	Q8KCHUNK(6)
	Q8KCHUNK(7)
	JMP next

zero:
	VXORPS  Y0, Y0, Y0
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y0, 32(DI)
	VMOVDQU Y0, 64(DI)
	VMOVDQU Y0, 96(DI)
	VMOVDQU Y0, 128(DI)
	VMOVDQU Y0, 160(DI)
	VMOVDQU Y0, 192(DI)
	VMOVDQU Y0, 224(DI)
	VMOVDQU Y0, 256(DI)
	VMOVDQU X0, 276(DI)

next:
	ADDQ $1024, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  blk

done:
	VZEROUPPER
	RET

// func roundF16AVX2(dst, x *float32, n int)
//
// dst = float32(float16(x)) with round-to-nearest-even (F16C), for n a
// multiple of 8.
TEXT ·roundF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   done

loop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VCVTPH2PS X1, Y1
	VMOVUPS   Y1, (DI)
	ADDQ      $32, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       loop

done:
	VZEROUPPER
	RET

// func f32ToF16AVX2(dst *uint16, x *float32, n int)
//
// Halves with round-to-nearest-even, for n a multiple of 8.
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   done

loop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VMOVDQU   X1, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	DECQ      CX
	JNZ       loop

done:
	VZEROUPPER
	RET

// func f16ToF32AVX2(dst *float32, x *uint16, n int)
//
// Widens halves, for n a multiple of 8.
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   done

loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       loop

done:
	VZEROUPPER
	RET
