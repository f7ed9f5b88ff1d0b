// Constants and macros shared by the assembly files of package kernel.
// Each file that includes this gets its own (file-local) copy of the
// constants.

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

// F16B converts the half at addr to float32 in all lanes of ymm y: eight
// copies of the half (in xmm x, the low half of y) widened at once.
#define F16B(addr, x, y) \
	VPBROADCASTW addr, x; \
	VCVTPH2PS    x, y


// float32 constants
DATA absmask<>+0(SB)/8, $0x7fffffff7fffffff
DATA absmask<>+8(SB)/8, $0x7fffffff7fffffff
DATA absmask<>+16(SB)/8, $0x7fffffff7fffffff
DATA absmask<>+24(SB)/8, $0x7fffffff7fffffff
GLOBL absmask<>(SB), RODATA|NOPTR, $32

DATA signmask<>+0(SB)/8, $0x8000000080000000
DATA signmask<>+8(SB)/8, $0x8000000080000000
DATA signmask<>+16(SB)/8, $0x8000000080000000
DATA signmask<>+24(SB)/8, $0x8000000080000000
GLOBL signmask<>(SB), RODATA|NOPTR, $32

DATA half<>+0(SB)/8, $0x3f0000003f000000
DATA half<>+8(SB)/8, $0x3f0000003f000000
DATA half<>+16(SB)/8, $0x3f0000003f000000
DATA half<>+24(SB)/8, $0x3f0000003f000000
GLOBL half<>(SB), RODATA|NOPTR, $32

DATA onef<>+0(SB)/8, $0x3f8000003f800000
DATA onef<>+8(SB)/8, $0x3f8000003f800000
DATA onef<>+16(SB)/8, $0x3f8000003f800000
DATA onef<>+24(SB)/8, $0x3f8000003f800000
GLOBL onef<>(SB), RODATA|NOPTR, $32

// 127.0
DATA f127<>+0(SB)/8, $0x42fe000042fe0000
DATA f127<>+8(SB)/8, $0x42fe000042fe0000
DATA f127<>+16(SB)/8, $0x42fe000042fe0000
DATA f127<>+24(SB)/8, $0x42fe000042fe0000
GLOBL f127<>(SB), RODATA|NOPTR, $32

// -127.0
DATA fm127<>+0(SB)/4, $0xc2fe0000
GLOBL fm127<>(SB), RODATA|NOPTR, $4

DATA ones8<>+0(SB)/8, $0x0101010101010101
DATA ones8<>+8(SB)/8, $0x0101010101010101
DATA ones8<>+16(SB)/8, $0x0101010101010101
DATA ones8<>+24(SB)/8, $0x0101010101010101
GLOBL ones8<>(SB), RODATA|NOPTR, $32

// VPERMD order that undoes the lane interleaving of VPACKSSDW+VPACKSSWB.
DATA packperm<>+0(SB)/8, $0x0000000400000000
DATA packperm<>+8(SB)/8, $0x0000000500000001
DATA packperm<>+16(SB)/8, $0x0000000600000002
DATA packperm<>+24(SB)/8, $0x0000000700000003
GLOBL packperm<>(SB), RODATA|NOPTR, $32

// PACK8 packs the int32 lanes of a, b, c, d (8 each, in that order) into
// 32 int8s in a, saturating.
#define PACK8(a, b, c, d) \
	VPACKSSDW b, a, a; \
	VPACKSSDW d, c, c; \
	VPACKSSWB c, a, a; \
	VPERMD    a, Y14, a
