//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"

// Element-wise kernels (AVX2, FMA): RMSNorm's sum of squares and scaling,
// SwiGLU, softmax's exponentials, scaling and addition. Each takes n, a
// multiple of 8; the Go wrappers in ops.go do the remaining elements.

DATA log2e<>+0(SB)/4, $0x3fb8aa3b
GLOBL log2e<>(SB), RODATA|NOPTR, $4

// ln 2 split in a part with trailing zero bits (so k*ln2hi is exact for
// |k| <= 128) and the rest.
DATA ln2hi<>+0(SB)/4, $0x3f317200
GLOBL ln2hi<>(SB), RODATA|NOPTR, $4
DATA ln2lo<>+0(SB)/4, $0x35bfbe8e
GLOBL ln2lo<>(SB), RODATA|NOPTR, $4

// Taylor coefficients 1/7! ... 1/2!, 8 lanes each.
#define VEC8(name, bits) \
	DATA name+0(SB)/8, $(bits<<32 | bits); \
	DATA name+8(SB)/8, $(bits<<32 | bits); \
	DATA name+16(SB)/8, $(bits<<32 | bits); \
	DATA name+24(SB)/8, $(bits<<32 | bits); \
	GLOBL name(SB), RODATA|NOPTR, $32

VEC8(inv6f<>, 0x3ab60b61)
VEC8(inv5f<>, 0x3c088889)
VEC8(inv4f<>, 0x3d2aaaab)
VEC8(inv3f<>, 0x3e2aaaab)
VEC8(inv2f<>, 0x3f000000)
VEC8(posinf<>, 0x7f800000)
DATA inv7f<>+0(SB)/4, $0x39500d01
GLOBL inv7f<>(SB), RODATA|NOPTR, $4

// ln(FLT_MIN) and ln(FLT_MAX): below the first exp returns 0, above the
// second +Inf.
DATA explo<>+0(SB)/4, $0xc2aeac50
GLOBL explo<>(SB), RODATA|NOPTR, $4
DATA exphi<>+0(SB)/4, $0x42b17218
GLOBL exphi<>(SB), RODATA|NOPTR, $4

DATA bias127<>+0(SB)/8, $0x0000007f0000007f
DATA bias127<>+8(SB)/8, $0x0000007f0000007f
DATA bias127<>+16(SB)/8, $0x0000007f0000007f
DATA bias127<>+24(SB)/8, $0x0000007f0000007f
GLOBL bias127<>(SB), RODATA|NOPTR, $32

// EXP replaces the lanes of v by e^v, to about one ulp: v = k ln2 + r with
// |r| <= ln2/2 (Cody-Waite), e^r by its Taylor polynomial of degree 7,
// times 2^k applied as 2^(k/2) twice so that both factors stay normal
// floats for every k in [-126, 128]. Inputs below ln(FLT_MIN) give 0 (so
// -Inf gives 0), above ln(FLT_MAX) +Inf. Uses t0-t3 and the constants
// Y9-Y15 that EXPCONST loads.
#define EXPCONST \
	VBROADCASTSS log2e<>(SB), Y9; \
	VBROADCASTSS ln2hi<>(SB), Y10; \
	VBROADCASTSS ln2lo<>(SB), Y11; \
	VBROADCASTSS explo<>(SB), Y12; \
	VBROADCASTSS exphi<>(SB), Y13; \
	VBROADCASTSS inv7f<>(SB), Y14; \
	VBROADCASTSS onef<>(SB), Y15

#define EXP(v, t0, t1, t2, t3) \
	VCMPPS       $1, Y12, v, t3; \
	VCMPPS       $0x1e, Y13, v, t2; \
	VMAXPS       Y12, v, v; \
	VMINPS       Y13, v, v; \
	VMULPS       Y9, v, t0; \
	VROUNDPS     $0, t0, t0; \
	VFNMADD231PS Y10, t0, v; \
	VFNMADD231PS Y11, t0, v; \
	VMOVAPS      Y14, t1; \
	VFMADD213PS  inv6f<>(SB), v, t1; \
	VFMADD213PS  inv5f<>(SB), v, t1; \
	VFMADD213PS  inv4f<>(SB), v, t1; \
	VFMADD213PS  inv3f<>(SB), v, t1; \
	VFMADD213PS  inv2f<>(SB), v, t1; \
	VFMADD213PS  Y15, v, t1; \
	VFMADD213PS  Y15, v, t1; \
	VCVTPS2DQ    t0, t0; \
	VPSRAD       $1, t0, v; \
	VPSUBD       v, t0, t0; \
	VPADDD       bias127<>(SB), v, v; \
	VPSLLD       $23, v, v; \
	VMULPS       v, t1, t1; \
	VPADDD       bias127<>(SB), t0, t0; \
	VPSLLD       $23, t0, t0; \
	VMULPS       t0, t1, v; \
	VANDNPS      v, t3, v; \
	VANDPS       posinf<>(SB), t2, t2; \
	VORPS        t2, v, v

// func sumSquaresAVX2(x *float32, n int) float64
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-24
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	SHRQ   $3, CX
	JZ     done

loop:
	VCVTPS2PD   (SI), Y2
	VCVTPS2PD   16(SI), Y3
	VFMADD231PD Y2, Y2, Y0
	VFMADD231PD Y3, Y3, Y1
	ADDQ        $32, SI
	DECQ        CX
	JNZ         loop

done:
	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VUNPCKHPD    X0, X0, X1
	VADDSD       X1, X0, X0
	VMOVSD       X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleMulAVX2(out, x, w *float32, scale float32, n int)
//
// out = x*scale*w, rounded after each product (RMSNorm's last step).
TEXT ·scaleMulAVX2(SB), NOSPLIT, $0-40
	MOVQ         out+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         w+16(FP), DX
	VBROADCASTSS scale+24(FP), Y0
	MOVQ         n+32(FP), CX
	SHRQ         $3, CX
	JZ           done

loop:
	VMULPS  (SI), Y0, Y1
	VMULPS  (DX), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func scaleAVX2(x *float32, a float32, n int)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), DI
	VBROADCASTSS a+8(FP), Y0
	MOVQ         n+16(FP), CX
	SHRQ         $3, CX
	JZ           done

loop:
	VMULPS  (DI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func addAVX2(dst, src *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   done

loop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func swigluAVX2(gate, up *float32, n int)
//
// gate = gate/(1+e^-gate) * up.
TEXT ·swigluAVX2(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), DI
	MOVQ up+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONST
	SHRQ $3, CX
	JZ   done

loop:
	VMOVUPS (DI), Y0
	VXORPS  Y1, Y1, Y1
	VSUBPS  Y0, Y1, Y1
	EXP(Y1, Y2, Y3, Y4, Y5)
	VADDPS  Y15, Y1, Y1
	VDIVPS  Y1, Y0, Y0
	VMULPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func expSubAVX2(x *float32, m float32, n int) float64
//
// x = e^(x-m), returning the sum of the results accumulated in float64.
TEXT ·expSubAVX2(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), DI
	VBROADCASTSS m+8(FP), Y8
	MOVQ         n+16(FP), CX
	EXPCONST
	VXORPD       Y6, Y6, Y6
	VXORPD       Y7, Y7, Y7
	SHRQ         $3, CX
	JZ           done

loop:
	VMOVUPS      (DI), Y0
	VSUBPS       Y8, Y0, Y0
	EXP(Y0, Y2, Y3, Y4, Y5)
	VMOVUPS      Y0, (DI)
	VCVTPS2PD    X0, Y1
	VADDPD       Y1, Y6, Y6
	VEXTRACTF128 $1, Y0, X0
	VCVTPS2PD    X0, Y1
	VADDPD       Y1, Y7, Y7
	ADDQ         $32, DI
	DECQ         CX
	JNZ          loop

done:
	VADDPD       Y7, Y6, Y6
	VEXTRACTF128 $1, Y6, X1
	VADDPD       X1, X6, X6
	VUNPCKHPD    X6, X6, X1
	VADDSD       X1, X6, X6
	VMOVSD       X6, ret+24(FP)
	VZEROUPPER
	RET

DATA neginf<>+0(SB)/4, $0xff800000
GLOBL neginf<>(SB), RODATA|NOPTR, $4

// func maxAVX2(x *float32, n int) float32
//
// The largest of n (a multiple of 8) values, starting from -Inf. NaNs are
// skipped, as in the Go loop: the running maximum is VMAXPS's second
// operand, which it returns when the other one is a NaN.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS neginf<>(SB), Y0
	VMOVAPS      Y0, Y1
	CMPQ         CX, $16
	JL           l8

l16:
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3
	VMAXPS  Y0, Y2, Y0
	VMAXPS  Y1, Y3, Y1
	ADDQ    $64, SI
	SUBQ    $16, CX
	CMPQ    CX, $16
	JGE     l16

l8:
	CMPQ    CX, $8
	JL      done
	VMOVUPS (SI), Y2
	VMAXPS  Y0, Y2, Y0
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     l8

done:
	VMAXPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// EXPNEG is EXP for lanes v <= 0 (the shifted scores of an online
// softmax): with no input above 0 there is no overflow to clamp, and 2^k
// for k in [-126, 0] is a normal float, so it is applied in one step.
// Inputs below ln(FLT_MIN) (and -Inf) give 0. About two thirds of EXP's
// instructions. Uses t0, t1, t3 and the constants of EXPCONST.
#define EXPNEG(v, t0, t1, t3) \
	VCMPPS       $1, Y12, v, t3; \
	VMAXPS       Y12, v, v; \
	VMULPS       Y9, v, t0; \
	VROUNDPS     $0, t0, t0; \
	VFNMADD231PS Y10, t0, v; \
	VFNMADD231PS Y11, t0, v; \
	VMOVAPS      Y14, t1; \
	VFMADD213PS  inv6f<>(SB), v, t1; \
	VFMADD213PS  inv5f<>(SB), v, t1; \
	VFMADD213PS  inv4f<>(SB), v, t1; \
	VFMADD213PS  inv3f<>(SB), v, t1; \
	VFMADD213PS  inv2f<>(SB), v, t1; \
	VFMADD213PS  Y15, v, t1; \
	VFMADD213PS  Y15, v, t1; \
	VCVTPS2DQ    t0, t0; \
	VPADDD       bias127<>(SB), t0, t0; \
	VPSLLD       $23, t0, t0; \
	VMULPS       t0, t1, v; \
	VANDNPS      v, t3, v

// func expShiftAVX2(x *float32, m float32, n int) float64
//
// x = e^(x-m) for x <= m, returning the sum of the results accumulated in
// float64: summed so, a row's total hardly depends on the order of its
// terms, and a prompt token's attention stays the same however the prompt
// was cut into batches (pages of 4 and of 32 tokens sum its scores in
// other orders; a float32 sum moved stories260K's logits by 5.6e-4 in
// kv/reuse/prefix's TestReusedPrefixGivesTheSameLogits).
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), DI
	VBROADCASTSS m+8(FP), Y8
	MOVQ         n+16(FP), CX
	EXPCONST
	VXORPD       Y6, Y6, Y6
	VXORPD       Y7, Y7, Y7
	SHRQ         $3, CX
	JZ           done

loop:
	VMOVUPS      (DI), Y0
	VSUBPS       Y8, Y0, Y0
	EXPNEG(Y0, Y2, Y3, Y4)
	VMOVUPS      Y0, (DI)
	VCVTPS2PD    X0, Y1
	VADDPD       Y1, Y6, Y6
	VEXTRACTF128 $1, Y0, X0
	VCVTPS2PD    X0, Y1
	VADDPD       Y1, Y7, Y7
	ADDQ         $32, DI
	DECQ         CX
	JNZ          loop

done:
	VADDPD       Y7, Y6, Y6
	VEXTRACTF128 $1, Y6, X1
	VADDPD       X1, X6, X6
	VUNPCKHPD    X6, X6, X1
	VADDSD       X1, X6, X6
	VMOVSD       X6, ret+24(FP)
	VZEROUPPER
	RET
