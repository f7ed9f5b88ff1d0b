//go:build !kvgo_generic

#include "textflag.h"
#include "asm_amd64.h"

// Register-blocked matrix multiply for the legacy weight types (Q8_0,
// Q4_0, Q5_0) against Q8_0 activations, on AVX512-VNNI with 256-bit
// vectors (VPDPBUSD, EVEX-encoded; AVX512VL gives the 32 ymm registers).
// See gemm.go for the layout and the reasons.
//
// A weight tile of 16 rows is first repacked (repackQ*x8 below, 8 rows
// per call) so that the 4-byte groups of the rows sit side by side: for
// block b and 4-byte group k, 32 bytes hold the codes of rows 0-7 and the
// next 32 those of rows 8-15, each code unsigned (the weight plus 128, 8
// or 16). The 16 rows' block scales follow as float32. One
// block takes gemmBlockBytes = 8*64 + 64 = 576 bytes.
//
// The kernel then keeps 16 rows × 4 tokens of sums in registers: for each
// 4-byte group it loads the two row vectors once and multiplies them with
// each token's four activation bytes broadcast (VPDPBUSD: unsigned codes ×
// signed activations, summed in int32, exact). The int32 sums start each
// block at -offset·Σx (the acts.c4 table), which removes the code offset
// exactly, and then are scaled by dw·dx and added into 8 float32
// accumulators. Nothing is reduced horizontally: lane r of a token's
// accumulators is row r.

// ---- repacking: 8 rows × every block of a row, codes transposed ----

// T8 transposes the 8×8 dword matrix in Y0-Y7 (row i in Yi) into columns
// in Y8-Y15 (column j in Y(8+j)), i.e. 4-byte group j of the 8 rows.
#define T8 \
	VUNPCKLPS  Y1, Y0, Y8; \
	VUNPCKHPS  Y1, Y0, Y9; \
	VUNPCKLPS  Y3, Y2, Y10; \
	VUNPCKHPS  Y3, Y2, Y11; \
	VUNPCKLPS  Y5, Y4, Y12; \
	VUNPCKHPS  Y5, Y4, Y13; \
	VUNPCKLPS  Y7, Y6, Y14; \
	VUNPCKHPS  Y7, Y6, Y15; \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// STORE8 writes the 8 columns at DI, 64 bytes apart.
#define STORE8 \
	VMOVDQU Y8, 0(DI); \
	VMOVDQU Y9, 64(DI); \
	VMOVDQU Y10, 128(DI); \
	VMOVDQU Y11, 192(DI); \
	VMOVDQU Y12, 256(DI); \
	VMOVDQU Y13, 320(DI); \
	VMOVDQU Y14, 384(DI); \
	VMOVDQU Y15, 448(DI)

// The row pointers p[0..7] are kept in R8-R13, AX, DX.
#define LOADPTRS \
	MOVQ p+8(FP), SI; \
	MOVQ 0(SI), R8; \
	MOVQ 8(SI), R9; \
	MOVQ 16(SI), R10; \
	MOVQ 24(SI), R11; \
	MOVQ 32(SI), R12; \
	MOVQ 40(SI), R13; \
	MOVQ 48(SI), AX; \
	MOVQ 56(SI), DX

#define ADVANCE(bs) \
	ADDQ $bs, R8; \
	ADDQ $bs, R9; \
	ADDQ $bs, R10; \
	ADDQ $bs, R11; \
	ADDQ $bs, R12; \
	ADDQ $bs, R13; \
	ADDQ $bs, AX; \
	ADDQ $bs, DX

// Q8_0: codes are the weights plus 128 (the sign bit flipped).
#define LD_Q8(p, y) \
	VMOVDQU 2(p), y; \
	VPXOR   Y15, y, y

// Q4_0: codes are the nibbles (weight + 8), low nibbles of bytes 0-15 in
// bytes 0-15, high nibbles in bytes 16-31.
#define LD_Q4(p, y) \
	VBROADCASTI128 2(p), y; \
	VPSRLVQ        nibshift<>(SB), y, y; \
	VPAND          Y15, y, y

// Q5_0: the nibbles with the fifth bit from qh (weight + 16).
#define LD_Q5(p, y) \
	VBROADCASTI128 6(p), y; \
	VPSRLVQ        nibshift<>(SB), y, y; \
	VPAND          Y15, y, y; \
	VPBROADCASTD   2(p), Y14; \
	VPSHUFB        q5spread<>(SB), Y14, Y14; \
	VPAND          q5bit<>(SB), Y14, Y14; \
	VPCMPEQB       q5bit<>(SB), Y14, Y14; \
	VPAND          bit4<>(SB), Y14, Y14; \
	VPOR           Y14, y, y

DATA nibshift<>+0(SB)/8, $0
DATA nibshift<>+8(SB)/8, $0
DATA nibshift<>+16(SB)/8, $4
DATA nibshift<>+24(SB)/8, $4
GLOBL nibshift<>(SB), RODATA|NOPTR, $32

DATA signbits<>+0(SB)/8, $0x8080808080808080
DATA signbits<>+8(SB)/8, $0x8080808080808080
DATA signbits<>+16(SB)/8, $0x8080808080808080
DATA signbits<>+24(SB)/8, $0x8080808080808080
GLOBL signbits<>(SB), RODATA|NOPTR, $32

// SCALES8 stores the eight rows' block scales (the half at the start of
// each row's block) as float32 at 512(DI).
#define SCALES8 \
	VPINSRW   $0, (R8), X14, X14; \
	VPINSRW   $1, (R9), X14, X14; \
	VPINSRW   $2, (R10), X14, X14; \
	VPINSRW   $3, (R11), X14, X14; \
	VPINSRW   $4, (R12), X14, X14; \
	VPINSRW   $5, (R13), X14, X14; \
	VPINSRW   $6, (AX), X14, X14; \
	VPINSRW   $7, (DX), X14, X14; \
	VCVTPH2PS X14, Y14; \
	VMOVUPS   Y14, 512(DI)

// REPACK is the body of a repack function for block size bs whose rows'
// codes LD loads; CONST is the constant LD needs in Y15. It writes the
// codes and the scales of eight rows: dst is the tile (rows 0-7) or the
// tile plus 32 bytes (rows 8-15).
// Arguments: dst+0 p+8 nb+16.
#define REPACK(LD, CONST, bs) \
	MOVQ    dst+0(FP), DI; \
	MOVQ    nb+16(FP), CX; \
	LOADPTRS; \
	TESTQ   CX, CX; \
	JZ      done; \
blk: \
	VMOVDQU CONST, Y15; \
	LD(R8, Y0); \
	LD(R9, Y1); \
	LD(R10, Y2); \
	LD(R11, Y3); \
	LD(R12, Y4); \
	LD(R13, Y5); \
	LD(AX, Y6); \
	LD(DX, Y7); \
	T8; \
	STORE8; \
	SCALES8; \
	ADVANCE(bs); \
	ADDQ    $576, DI; \
	DECQ    CX; \
	JNZ     blk; \
done: \
	VZEROUPPER; \
	RET

// func repackQ8_0x8(dst *byte, p *[8]*byte, nb int)
TEXT ·repackQ8_0x8(SB), NOSPLIT, $0-24
	REPACK(LD_Q8, signbits<>(SB), 34)

// func repackQ4_0x8(dst *byte, p *[8]*byte, nb int)
TEXT ·repackQ4_0x8(SB), NOSPLIT, $0-24
	REPACK(LD_Q4, lo4<>(SB), 18)

// func repackQ5_0x8(dst *byte, p *[8]*byte, nb int)
TEXT ·repackQ5_0x8(SB), NOSPLIT, $0-24
	REPACK(LD_Q5, lo4<>(SB), 22)

// ---- the 16 rows × 4 tokens kernel ----

// K4 multiplies 4-byte group k of the block at SI (rows) and DI (tokens).
#define K4(k) \
	VMOVDQU      k*64(SI), Y8; \
	VMOVDQU      k*64+32(SI), Y9; \
	VPBROADCASTD 2+4*k(DI), Y12; \
	VPBROADCASTD 2+4*k(DI)(R8*1), Y13; \
	VPBROADCASTD 2+4*k(DI)(R8*2), Y14; \
	VPBROADCASTD 2+4*k(DI)(R9*1), Y15; \
	VPDPBUSD     Y12, Y8, Y0; \
	VPDPBUSD     Y12, Y9, Y1; \
	VPDPBUSD     Y13, Y8, Y2; \
	VPDPBUSD     Y13, Y9, Y3; \
	VPDPBUSD     Y14, Y8, Y4; \
	VPDPBUSD     Y14, Y9, Y5; \
	VPDPBUSD     Y15, Y8, Y6; \
	VPDPBUSD     Y15, Y9, Y7

// SCALE adds token i's block sums (lo, hi: rows 0-7, 8-15) times dw·dx
// into its accumulators fa, fb.
#define SCALE(i, lo, hi, fa, fb) \
	VBROADCASTSS 4*i(DX), Y12; \
	VMULPS       Y12, Y10, Y13; \
	VMULPS       Y12, Y11, Y14; \
	VCVTDQ2PS    lo, lo; \
	VCVTDQ2PS    hi, hi; \
	VFMADD231PS  Y13, lo, fa; \
	VFMADD231PS  Y14, hi, fb

// func gemmLegacyVNNI(w *byte, nb int, x *byte, xstride int, s4 *float32, c4 *int32, groups int, out *float32, ostride int)
//
// w is a repacked tile of 16 rows, x the first of groups*4 activation rows
// (xstride bytes apart), s4 and c4 the scale and offset tables of those
// groups (16*nb bytes per group each); out[t*ostride/4 + r] gets row r ·
// token t for r < 16.
TEXT ·gemmLegacyVNNI(SB), NOSPLIT, $0-72
	MOVQ    xstride+24(FP), R8
	LEAQ    (R8)(R8*2), R9
	MOVQ    x+16(FP), R11
	MOVQ    s4+32(FP), R12
	MOVQ    c4+40(FP), R13
	MOVQ    out+56(FP), AX
	MOVQ    ostride+64(FP), BX
	MOVQ    groups+48(FP), CX
	TESTQ   CX, CX
	JZ      done

grp:
	MOVQ    w+0(FP), SI
	MOVQ    R11, DI
	MOVQ    R12, DX
	MOVQ    R13, R10
	MOVQ    nb+8(FP), CX
	VPXORD  Y16, Y16, Y16
	VPXORD  Y17, Y17, Y17
	VPXORD  Y18, Y18, Y18
	VPXORD  Y19, Y19, Y19
	VPXORD  Y20, Y20, Y20
	VPXORD  Y21, Y21, Y21
	VPXORD  Y22, Y22, Y22
	VPXORD  Y23, Y23, Y23

blk:
	VPBROADCASTD 0(R10), Y0
	VPBROADCASTD 4(R10), Y2
	VPBROADCASTD 8(R10), Y4
	VPBROADCASTD 12(R10), Y6
	VMOVDQA      Y0, Y1
	VMOVDQA      Y2, Y3
	VMOVDQA      Y4, Y5
	VMOVDQA      Y6, Y7
	K4(0)
	K4(1)
	K4(2)
	K4(3)
	K4(4)
	K4(5)
	K4(6)
	K4(7)
	VMOVUPS      512(SI), Y10
	VMOVUPS      544(SI), Y11
	SCALE(0, Y0, Y1, Y16, Y17)
	SCALE(1, Y2, Y3, Y18, Y19)
	SCALE(2, Y4, Y5, Y20, Y21)
	SCALE(3, Y6, Y7, Y22, Y23)
	ADDQ         $576, SI
	ADDQ         $34, DI
	ADDQ         $16, DX
	ADDQ         $16, R10
	DECQ         CX
	JNZ          blk

	VMOVUPS Y16, (AX)
	VMOVUPS Y17, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y18, (AX)
	VMOVUPS Y19, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y20, (AX)
	VMOVUPS Y21, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y22, (AX)
	VMOVUPS Y23, 32(AX)
	ADDQ    BX, AX
	LEAQ    (R11)(R8*4), R11
	MOVQ    DX, R12
	MOVQ    R10, R13
	DECQ    groups+48(FP)
	JNZ     grp

done:
	VZEROUPPER
	RET

// ---- Q4_K: the same tile GEMM over 32-element sub-blocks ----
//
// A repacked Q4_K tile holds, per sub-block of 32 (gemmKBlockBytes = 640
// bytes): the 16 rows' codes as above (the nibbles, unsigned, no offset),
// then the rows' scales d·sc_j (16 float32) and minimums dmin·m_j (16
// float32). The activation is Q8_K; the kt table holds, per group of four
// tokens and sub-block, the four tokens' super-block scales dy and then
// dy·Σx over the sub-block (from the block sums). A token's sub-block adds
// (d·sc_j·dy)·Σ q·x - (dmin·m_j)·(dy·Σx) to each row.

// LD_Q4K loads sub-block j's codes of the row at p: 32 bytes of qs
// (chunk j/2), shifted right 4 for odd j, masked.
#define LD_Q4K_EVEN(p, o, y) \
	VMOVDQU 16+o(p), y; \
	VPAND   Y15, y, y

#define LD_Q4K_ODD(p, o, y) \
	VMOVDQU 16+o(p), y; \
	VPSRLW  $4, y, y; \
	VPAND   Y15, y, y

#define REPACK_K(LD, o) \
	VMOVDQU lo4<>(SB), Y15; \
	LD(R8, o, Y0); \
	LD(R9, o, Y1); \
	LD(R10, o, Y2); \
	LD(R11, o, Y3); \
	LD(R12, o, Y4); \
	LD(R13, o, Y5); \
	LD(AX, o, Y6); \
	LD(DX, o, Y7); \
	T8; \
	STORE8; \
	ADDQ    $640, DI

// func repackQ4_Kx8(dst *byte, p *[8]*byte, nb int)
//
// Codes only; the scales and minimums are written in Go.
TEXT ·repackQ4_Kx8(SB), NOSPLIT, $0-24
	MOVQ  dst+0(FP), DI
	MOVQ  nb+16(FP), CX
	LOADPTRS
	TESTQ CX, CX
	JZ    kdone

ksb:
	REPACK_K(LD_Q4K_EVEN, 0)
	REPACK_K(LD_Q4K_ODD, 0)
	REPACK_K(LD_Q4K_EVEN, 32)
	REPACK_K(LD_Q4K_ODD, 32)
	REPACK_K(LD_Q4K_EVEN, 64)
	REPACK_K(LD_Q4K_ODD, 64)
	REPACK_K(LD_Q4K_EVEN, 96)
	REPACK_K(LD_Q4K_ODD, 96)
	ADVANCE(144)
	DECQ  CX
	JNZ   ksb

kdone:
	VZEROUPPER
	RET

// KK4 is K4 for Q8_K activations (no scale before the quants).
#define KK4(k) \
	VMOVDQU      k*64(SI), Y8; \
	VMOVDQU      k*64+32(SI), Y9; \
	VPBROADCASTD 4*k(DI), Y12; \
	VPBROADCASTD 4*k(DI)(R8*1), Y13; \
	VPBROADCASTD 4*k(DI)(R8*2), Y14; \
	VPBROADCASTD 4*k(DI)(R9*1), Y15; \
	VPDPBUSD     Y12, Y8, Y0; \
	VPDPBUSD     Y12, Y9, Y1; \
	VPDPBUSD     Y13, Y8, Y2; \
	VPDPBUSD     Y13, Y9, Y3; \
	VPDPBUSD     Y14, Y8, Y4; \
	VPDPBUSD     Y14, Y9, Y5; \
	VPDPBUSD     Y15, Y8, Y6; \
	VPDPBUSD     Y15, Y9, Y7

// KSCALE is SCALE plus the minimums: mins in Y24, Y25, dy·Σx at 16+4i(DX).
#define KSCALE(i, lo, hi, fa, fb) \
	VBROADCASTSS   4*i(DX), Y12; \
	VMULPS         Y12, Y10, Y13; \
	VMULPS         Y12, Y11, Y14; \
	VCVTDQ2PS      lo, lo; \
	VCVTDQ2PS      hi, hi; \
	VFMADD231PS    Y13, lo, fa; \
	VFMADD231PS    Y14, hi, fb; \
	VBROADCASTSS   16+4*i(DX), Y12; \
	VFNMADD231PS   Y12, Y24, fa; \
	VFNMADD231PS   Y12, Y25, fb

// func gemmQ4_KVNNI(w *byte, nb int, x *byte, xstride int, kt *float32, groups int, out *float32, ostride int)
//
// w is a repacked Q4_K tile of 16 rows (nb super-blocks), x the first of
// groups*4 Q8_K activation rows; out as for gemmLegacyVNNI.
TEXT ·gemmQ4_KVNNI(SB), NOSPLIT, $0-64
	MOVQ    xstride+24(FP), R8
	LEAQ    (R8)(R8*2), R9
	MOVQ    x+16(FP), R11
	MOVQ    kt+32(FP), R12
	MOVQ    out+48(FP), AX
	MOVQ    ostride+56(FP), BX
	MOVQ    groups+40(FP), CX
	TESTQ   CX, CX
	JZ      qdone

qgrp:
	MOVQ    w+0(FP), SI
	LEAQ    4(R11), DI
	MOVQ    R12, DX
	MOVQ    nb+8(FP), CX
	VPXORD  Y16, Y16, Y16
	VPXORD  Y17, Y17, Y17
	VPXORD  Y18, Y18, Y18
	VPXORD  Y19, Y19, Y19
	VPXORD  Y20, Y20, Y20
	VPXORD  Y21, Y21, Y21
	VPXORD  Y22, Y22, Y22
	VPXORD  Y23, Y23, Y23

qsb:
	MOVQ    $8, R10

qblk:
	VPXOR   Y0, Y0, Y0
	VPXOR   Y1, Y1, Y1
	VPXOR   Y2, Y2, Y2
	VPXOR   Y3, Y3, Y3
	VPXOR   Y4, Y4, Y4
	VPXOR   Y5, Y5, Y5
	VPXOR   Y6, Y6, Y6
	VPXOR   Y7, Y7, Y7
	KK4(0)
	KK4(1)
	KK4(2)
	KK4(3)
	KK4(4)
	KK4(5)
	KK4(6)
	KK4(7)
	VMOVUPS 512(SI), Y10
	VMOVUPS 544(SI), Y11
	VMOVUPS 576(SI), Y24
	VMOVUPS 608(SI), Y25
	KSCALE(0, Y0, Y1, Y16, Y17)
	KSCALE(1, Y2, Y3, Y18, Y19)
	KSCALE(2, Y4, Y5, Y20, Y21)
	KSCALE(3, Y6, Y7, Y22, Y23)
	ADDQ    $640, SI
	ADDQ    $32, DI
	ADDQ    $32, DX
	DECQ    R10
	JNZ     qblk
	ADDQ    $36, DI
	DECQ    CX
	JNZ     qsb

	VMOVUPS Y16, (AX)
	VMOVUPS Y17, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y18, (AX)
	VMOVUPS Y19, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y20, (AX)
	VMOVUPS Y21, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y22, (AX)
	VMOVUPS Y23, 32(AX)
	ADDQ    BX, AX
	LEAQ    (R11)(R8*4), R11
	MOVQ    DX, R12
	DECQ    groups+40(FP)
	JNZ     qgrp

qdone:
	VZEROUPPER
	RET

// ---- Q6_K: 16-element sub-blocks, two per 32-element block ----
//
// A repacked Q6_K block of 32 elements (768 bytes) holds the 16 rows'
// codes (6 bits, unsigned: the weight plus 32), then for each of its two
// 16-element sub-blocks the rows' scales d·sc (16 float32) and offsets
// 32·d·sc (16 float32). Element 32k+l of a super-block comes from ql byte
// 64(k/4) + 32(k%2) + l (high nibble for k%4 >= 2) and bits 2(k%4) of qh
// byte 32(k/4) + l.

DATA threes<>+0(SB)/8, $0x0303030303030303
DATA threes<>+8(SB)/8, $0x0303030303030303
DATA threes<>+16(SB)/8, $0x0303030303030303
DATA threes<>+24(SB)/8, $0x0303030303030303
GLOBL threes<>(SB), RODATA|NOPTR, $32

#define LD_Q6_LO(p, ql, qh, sh, y) \
	VMOVDQU ql(p), y; \
	VPAND   Y15, y, y; \
	VMOVDQU 128+qh(p), Y14; \
	VPSRLW  $sh, Y14, Y14; \
	VPAND   threes<>(SB), Y14, Y14; \
	VPSLLW  $4, Y14, Y14; \
	VPOR    Y14, y, y

#define LD_Q6_HI(p, ql, qh, sh, y) \
	VMOVDQU ql(p), y; \
	VPSRLW  $4, y, y; \
	VPAND   Y15, y, y; \
	VMOVDQU 128+qh(p), Y14; \
	VPSRLW  $sh, Y14, Y14; \
	VPAND   threes<>(SB), Y14, Y14; \
	VPSLLW  $4, Y14, Y14; \
	VPOR    Y14, y, y

#define REPACK6(LD, ql, qh, sh) \
	VMOVDQU lo4<>(SB), Y15; \
	LD(R8, ql, qh, sh, Y0); \
	LD(R9, ql, qh, sh, Y1); \
	LD(R10, ql, qh, sh, Y2); \
	LD(R11, ql, qh, sh, Y3); \
	LD(R12, ql, qh, sh, Y4); \
	LD(R13, ql, qh, sh, Y5); \
	LD(AX, ql, qh, sh, Y6); \
	LD(DX, ql, qh, sh, Y7); \
	T8; \
	STORE8; \
	ADDQ    $768, DI

// func repackQ6_Kx8(dst *byte, p *[8]*byte, nb int)
//
// Codes only; the scales and offsets are written in Go.
TEXT ·repackQ6_Kx8(SB), NOSPLIT, $0-24
	MOVQ  dst+0(FP), DI
	MOVQ  nb+16(FP), CX
	LOADPTRS
	TESTQ CX, CX
	JZ    sdone

s6:
	REPACK6(LD_Q6_LO, 0, 0, 0)
	REPACK6(LD_Q6_LO, 32, 0, 2)
	REPACK6(LD_Q6_HI, 0, 0, 4)
	REPACK6(LD_Q6_HI, 32, 0, 6)
	REPACK6(LD_Q6_LO, 64, 32, 0)
	REPACK6(LD_Q6_LO, 96, 32, 2)
	REPACK6(LD_Q6_HI, 64, 32, 4)
	REPACK6(LD_Q6_HI, 96, 32, 6)
	ADVANCE(210)
	DECQ  CX
	JNZ   s6

sdone:
	VZEROUPPER
	RET

// ZERO8 clears the int32 sums.
#define ZERO8 \
	VPXOR Y0, Y0, Y0; \
	VPXOR Y1, Y1, Y1; \
	VPXOR Y2, Y2, Y2; \
	VPXOR Y3, Y3, Y3; \
	VPXOR Y4, Y4, Y4; \
	VPXOR Y5, Y5, Y5; \
	VPXOR Y6, Y6, Y6; \
	VPXOR Y7, Y7, Y7

// HALF6 scales the sums of one 16-element sub-block: its scales and
// offsets at so(SI), so+64(SI), the tokens' table at to(DX).
#define HALF6(so, to) \
	VMOVUPS so(SI), Y10; \
	VMOVUPS so+32(SI), Y11; \
	VMOVUPS so+64(SI), Y24; \
	VMOVUPS so+96(SI), Y25; \
	ADDQ    $to, DX; \
	KSCALE(0, Y0, Y1, Y16, Y17); \
	KSCALE(1, Y2, Y3, Y18, Y19); \
	KSCALE(2, Y4, Y5, Y20, Y21); \
	KSCALE(3, Y6, Y7, Y22, Y23)

// func gemmQ6_KVNNI(w *byte, nb int, x *byte, xstride int, kt *float32, groups int, out *float32, ostride int)
TEXT ·gemmQ6_KVNNI(SB), NOSPLIT, $0-64
	MOVQ    xstride+24(FP), R8
	LEAQ    (R8)(R8*2), R9
	MOVQ    x+16(FP), R11
	MOVQ    kt+32(FP), R12
	MOVQ    out+48(FP), AX
	MOVQ    ostride+56(FP), BX
	MOVQ    groups+40(FP), CX
	TESTQ   CX, CX
	JZ      q6done

q6grp:
	MOVQ    w+0(FP), SI
	LEAQ    4(R11), DI
	MOVQ    R12, DX
	MOVQ    nb+8(FP), CX
	VPXORD  Y16, Y16, Y16
	VPXORD  Y17, Y17, Y17
	VPXORD  Y18, Y18, Y18
	VPXORD  Y19, Y19, Y19
	VPXORD  Y20, Y20, Y20
	VPXORD  Y21, Y21, Y21
	VPXORD  Y22, Y22, Y22
	VPXORD  Y23, Y23, Y23

q6sb:
	MOVQ    $8, R10

q6blk:
	ZERO8
	KK4(0)
	KK4(1)
	KK4(2)
	KK4(3)
	HALF6(512, 0)
	ZERO8
	KK4(4)
	KK4(5)
	KK4(6)
	KK4(7)
	HALF6(640, 32)
	ADDQ    $32, DX
	ADDQ    $768, SI
	ADDQ    $32, DI
	DECQ    R10
	JNZ     q6blk
	ADDQ    $36, DI
	DECQ    CX
	JNZ     q6sb

	VMOVUPS Y16, (AX)
	VMOVUPS Y17, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y18, (AX)
	VMOVUPS Y19, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y20, (AX)
	VMOVUPS Y21, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y22, (AX)
	VMOVUPS Y23, 32(AX)
	ADDQ    BX, AX
	LEAQ    (R11)(R8*4), R11
	MOVQ    DX, R12
	DECQ    groups+40(FP)
	JNZ     q6grp

q6done:
	VZEROUPPER
	RET
