//go:build !kvgo_generic

#include "textflag.h"

// Constants of the planar-code kernels (file-local).
DATA nib<>+0(SB)/8, $0x000f000f000f000f
DATA nib<>+8(SB)/8, $0x000f000f000f000f
DATA nib<>+16(SB)/8, $0x000f000f000f000f
DATA nib<>+24(SB)/8, $0x000f000f000f000f
GLOBL nib<>(SB), RODATA|NOPTR, $32

DATA pair<>+0(SB)/8, $0x0003000300030003
DATA pair<>+8(SB)/8, $0x0003000300030003
DATA pair<>+16(SB)/8, $0x0003000300030003
DATA pair<>+24(SB)/8, $0x0003000300030003
GLOBL pair<>(SB), RODATA|NOPTR, $32

DATA absf<>+0(SB)/4, $0x7fffffff
GLOBL absf<>(SB), RODATA|NOPTR, $4

DATA i16max<>+0(SB)/4, $32767.0
GLOBL i16max<>(SB), RODATA|NOPTR, $4

DATA finf<>+0(SB)/4, $0x7f800000
GLOBL finf<>(SB), RODATA|NOPTR, $4

// HEAD multiplies the 64 codes of a chunk, widened to 16 bits in Y4
// (channels 0..15), Y5 (16..31), Y6 (32..47) and Y7 (48..63), with the
// 64 int16 query values at q+R13 and adds the eight dword pair sums into
// acc. VPMADDWD cannot overflow: |u·q| <= 15·32767, and a row's sum stays
// far inside int32 for any head size below 4096.
#define HEAD(q, acc) \
	VPMADDWD (q)(R13*1), Y4, Y8     \
	VPMADDWD 32(q)(R13*1), Y5, Y9   \
	VPADDD   Y9, Y8, Y8             \
	VPMADDWD 64(q)(R13*1), Y6, Y9   \
	VPADDD   Y9, Y8, Y8             \
	VPMADDWD 96(q)(R13*1), Y7, Y9   \
	VPADDD   Y9, Y8, Y8             \
	VPADDD   Y8, acc, acc

// UNPACK4 widens a 64-channel chunk of 4-bit planar codes (32 bytes at
// SI): byte m holds channel m (low nibble) and m+32 (high nibble).
#define UNPACK4 \
	VPMOVZXBW (SI), Y4      \
	VPMOVZXBW 16(SI), Y5    \
	VPSRLW    $4, Y4, Y6    \
	VPSRLW    $4, Y5, Y7    \
	VPAND     Y15, Y4, Y4   \
	VPAND     Y15, Y5, Y5   \
	ADDQ      $32, SI

// UNPACK2 widens a 64-channel chunk of 2-bit planar codes (16 bytes at
// SI): bit pair p of byte m is channel m+16p.
#define UNPACK2 \
	VPMOVZXBW (SI), Y7      \
	VPSRLW    $2, Y7, Y5    \
	VPSRLW    $4, Y7, Y6    \
	VPAND     Y15, Y7, Y4   \
	VPAND     Y15, Y5, Y5   \
	VPAND     Y15, Y6, Y6   \
	VPSRLW    $6, Y7, Y7    \
	ADDQ      $16, SI

// HEADH is HEAD for a half chunk: 32 codes in Y4 (channels 0..15) and Y5
// (16..31).
#define HEADH(q, acc) \
	VPMADDWD (q)(R13*1), Y4, Y8     \
	VPMADDWD 32(q)(R13*1), Y5, Y9   \
	VPADDD   Y9, Y8, Y8             \
	VPADDD   Y8, acc, acc

// UNPACK4H widens the 32-channel chunk that ends a row of d = 64k+32
// 4-bit codes (16 bytes: byte m holds channels m and m+16).
#define UNPACK4H \
	VPMOVZXBW (SI), Y4      \
	VPSRLW    $4, Y4, Y5    \
	VPAND     Y15, Y4, Y4   \
	ADDQ      $16, SI

// UNPACK2H widens the 32-channel chunk that ends a row of 2-bit codes (8
// bytes: bit pair p of byte m is channel m+8p). Only those 8 bytes are
// read: the row may end the page's memory.
#define UNPACK2H \
	VMOVQ        (SI), X7          \
	VPMOVZXBW    X7, Y7            \
	VPSRLW       $2, Y7, Y5        \
	VPSRLW       $4, Y7, Y6        \
	VPSRLW       $6, Y7, Y9        \
	VPAND        Y15, Y7, Y4       \
	VPAND        Y15, Y5, Y5       \
	VPAND        Y15, Y6, Y6       \
	VINSERTI128  $1, X5, Y4, Y4    \
	VINSERTI128  $1, X9, Y6, Y5    \
	ADDQ         $8, SI

// DOTS4 is the body of the four-head kernels: for each of n rows, the
// chunks are unpacked once and multiplied with the four heads' queries
// (BX, R10, R11, R12; R13 the byte offset into them, 128 per chunk), the
// four sums are reduced together, scaled, biased and stored to the heads'
// rows (DI, R8, R9, R14), one float each. DX is the query's size in bytes,
// AX the bytes of its whole 64-channel chunks; a row of d = 64k+32 ends
// with a half chunk (UNPACKH).
#define DOTS4(UNPACK, UNPACKH, HEAD4, HEADH4, STORE4) \
	MOVQ    codes+0(FP), SI          \
	MOVQ    n+8(FP), CX              \
	MOVQ    d+16(FP), DX             \
	SHLQ    $1, DX                   \
	MOVQ    qs+24(FP), AX            \
	MOVQ    0(AX), BX                \
	MOVQ    8(AX), R10               \
	MOVQ    16(AX), R11              \
	MOVQ    24(AX), R12              \
	MOVQ    sb+32(FP), AX            \
	VMOVUPS (AX), X10                \
	VMOVUPS 16(AX), X11              \
	MOVQ    outs+40(FP), AX          \
	MOVQ    0(AX), DI                \
	MOVQ    8(AX), R8                \
	MOVQ    16(AX), R9               \
	MOVQ    24(AX), R14              \
	MOVQ    DX, AX                   \
	ANDQ    $-128, AX                \
	TESTQ   CX, CX                   \
	JZ      done                     \
row:                                 \
	VPXOR Y0, Y0, Y0                 \
	VPXOR Y1, Y1, Y1                 \
	VPXOR Y2, Y2, Y2                 \
	VPXOR Y3, Y3, Y3                 \
	XORQ  R13, R13                   \
	CMPQ  R13, AX                    \
	JEQ   half                       \
chunk:                               \
	UNPACK                           \
	HEAD(BX, Y0)                     \
	HEAD(R10, Y1)                    \
	HEAD(R11, Y2)                    \
	HEAD4                            \
	ADDQ $128, R13                   \
	CMPQ R13, AX                     \
	JLT  chunk                       \
half:                                \
	CMPQ R13, DX                     \
	JEQ  reduce                      \
	UNPACKH                          \
	HEADH(BX, Y0)                    \
	HEADH(R10, Y1)                   \
	HEADH(R11, Y2)                   \
	HEADH4                           \
reduce:                              \
	VPHADDD      Y1, Y0, Y0          \
	VPHADDD      Y3, Y2, Y2          \
	VPHADDD      Y2, Y0, Y0          \
	VEXTRACTI128 $1, Y0, X1          \
	VPADDD       X1, X0, X0          \
	VCVTDQ2PS    X0, X0              \
	VMULPS       X10, X0, X0         \
	VADDPS       X11, X0, X0         \
	VMOVSS       X0, (DI)            \
	VEXTRACTPS   $1, X0, (R8)        \
	VEXTRACTPS   $2, X0, (R9)        \
	STORE4                           \
	ADDQ         $4, DI              \
	ADDQ         $4, R8              \
	ADDQ         $4, R9              \
	DECQ         CX                  \
	JNZ          row                 \
done:                                \
	VZEROUPPER                       \
	RET

// The fourth head of DOTS4, or none (three-head kernels: Y3 stays zero and
// only three sums are stored).
#define HEAD4ON HEAD(R12, Y3)
#define HEADH4ON HEADH(R12, Y3)
#define STORE4ON VEXTRACTPS $3, X0, (R14); ADDQ $4, R14
#define NONE

// DOTS1 is DOTS4 for one head (q at BX, output row at DI): for g = 1
// (multi-head attention) and the fifth, ninth, ... head of a group.
#define DOTS1(UNPACK, UNPACKH) \
	MOVQ         codes+0(FP), SI  \
	MOVQ         n+8(FP), CX      \
	MOVQ         d+16(FP), DX     \
	SHLQ         $1, DX           \
	MOVQ         q+24(FP), BX     \
	VMOVSS       scale+32(FP), X10 \
	VMOVSS       bias+36(FP), X11 \
	MOVQ         out+40(FP), DI   \
	MOVQ         DX, AX           \
	ANDQ         $-128, AX        \
	TESTQ        CX, CX           \
	JZ           done1            \
row1:                             \
	VPXOR        Y0, Y0, Y0       \
	XORQ         R13, R13         \
	CMPQ         R13, AX          \
	JEQ          half1            \
chunk1:                           \
	UNPACK                        \
	HEAD(BX, Y0)                  \
	ADDQ         $128, R13        \
	CMPQ         R13, AX          \
	JLT          chunk1           \
half1:                            \
	CMPQ         R13, DX          \
	JEQ          reduce1          \
	UNPACKH                       \
	HEADH(BX, Y0)                 \
reduce1:                          \
	VEXTRACTI128 $1, Y0, X1       \
	VPADDD       X1, X0, X0       \
	VPHADDD      X0, X0, X0       \
	VPHADDD      X0, X0, X0       \
	VCVTDQ2PS    X0, X0           \
	VMULSS       X10, X0, X0      \
	VADDSS       X11, X0, X0      \
	VMOVSS       X0, (DI)         \
	ADDQ         $4, DI           \
	DECQ         CX               \
	JNZ          row1             \
done1:                            \
	VZEROUPPER                    \
	RET

// func dotsPlanar4x4AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)
TEXT ·dotsPlanar4x4AVX2(SB), NOSPLIT, $0-48
	VMOVDQU nib<>(SB), Y15
	DOTS4(UNPACK4, UNPACK4H, HEAD4ON, HEADH4ON, STORE4ON)

// func dotsPlanar4x3AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)
//
// dotsPlanar4x4AVX2 for three heads (qs[3], outs[3] unused): g = 7 is 4+3.
TEXT ·dotsPlanar4x3AVX2(SB), NOSPLIT, $0-48
	VMOVDQU nib<>(SB), Y15
	DOTS4(UNPACK4, UNPACK4H, NONE, NONE, NONE)

// func dotsPlanar2x3AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)
TEXT ·dotsPlanar2x3AVX2(SB), NOSPLIT, $0-48
	VMOVDQU pair<>(SB), Y15
	DOTS4(UNPACK2, UNPACK2H, NONE, NONE, NONE)

// func dotsPlanar2x4AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)
TEXT ·dotsPlanar2x4AVX2(SB), NOSPLIT, $0-48
	VMOVDQU pair<>(SB), Y15
	DOTS4(UNPACK2, UNPACK2H, HEAD4ON, HEADH4ON, STORE4ON)

// func dotsPlanar4x1AVX2(codes *byte, n, d int, q *int16, scale, bias float32, out *float32)
TEXT ·dotsPlanar4x1AVX2(SB), NOSPLIT, $0-48
	VMOVDQU nib<>(SB), Y15
	DOTS1(UNPACK4, UNPACK4H)

// func dotsPlanar2x1AVX2(codes *byte, n, d int, q *int16, scale, bias float32, out *float32)
TEXT ·dotsPlanar2x1AVX2(SB), NOSPLIT, $0-48
	VMOVDQU pair<>(SB), Y15
	DOTS1(UNPACK2, UNPACK2H)

// func quantHeadsI16AVX2(dst *int16, x, mul, scales *float32, d, heads int)
// QuantizeScaledI16 for g heads of d (a multiple of 8, > 0) values in one
// call: per head, the largest |x·mul| (amax), scales[j] = amax/32767 and
// codes round(x·mul·(32767/amax)); zero codes and scale for an amax that
// is 0, NaN or +Inf, as the Go code does.
TEXT ·quantHeadsI16AVX2(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         scales+24(FP), R8
	MOVQ         heads+40(FP), BX
	VBROADCASTSS absf<>(SB), Y4
	VMOVSS       i16max<>(SB), X5
	VMOVSS       finf<>(SB), X6
	VXORPS       X7, X7, X7

head:
	MOVQ   mul+16(FP), DX
	MOVQ   d+32(FP), CX
	SHRQ   $3, CX
	MOVQ   SI, R9
	VXORPS Y0, Y0, Y0

hmax:
	VMOVUPS (R9), Y1
	VMULPS  (DX), Y1, Y1
	VANDPS  Y4, Y1, Y1
	VMAXPS  Y0, Y1, Y0
	ADDQ    $32, R9
	ADDQ    $32, DX
	DECQ    CX
	JNZ     hmax
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VUCOMISS     X7, X0
	JBE          zero
	VUCOMISS     X6, X0
	JAE          zero
	VDIVSS       X5, X0, X1
	VMOVSS       X1, (R8)
	VDIVSS       X0, X5, X2
	VBROADCASTSS X2, Y2
	MOVQ         mul+16(FP), DX
	MOVQ         d+32(FP), CX
	SHRQ         $3, CX

	// Sixteen values per step: one 256-bit pack of two vectors, its
	// 64-bit quarters put back in order by VPERMQ, one store.
hq16:
	CMPQ         CX, $2
	JL           hq
	VMOVUPS      (SI), Y0
	VMOVUPS      32(SI), Y1
	VMULPS       (DX), Y0, Y0
	VMULPS       32(DX), Y1, Y1
	VMULPS       Y2, Y0, Y0
	VMULPS       Y2, Y1, Y1
	VCVTPS2DQ    Y0, Y0
	VCVTPS2DQ    Y1, Y1
	VPACKSSDW    Y1, Y0, Y0
	VPERMQ       $0xd8, Y0, Y0
	VMOVDQU      Y0, (DI)
	ADDQ         $64, SI
	ADDQ         $64, DX
	ADDQ         $32, DI
	SUBQ         $2, CX
	JMP          hq16

hq:
	TESTQ        CX, CX
	JZ           next
	VMOVUPS      (SI), Y0
	VMULPS       (DX), Y0, Y0
	VMULPS       Y2, Y0, Y0
	VCVTPS2DQ    Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW    X1, X0, X0
	VMOVDQU      X0, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DX
	ADDQ         $16, DI
	DECQ         CX
	JMP          hq

zero:
	VMOVSS X7, (R8)
	MOVQ   d+32(FP), CX
	SHRQ   $3, CX
	VPXOR  X0, X0, X0

hz:
	VMOVDQU X0, (DI)
	ADDQ    $32, SI
	ADDQ    $16, DI
	DECQ    CX
	JNZ     hz

next:
	ADDQ $4, R8
	DECQ BX
	JNZ  head
	VZEROUPPER
	RET
