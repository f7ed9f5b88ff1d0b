//go:build !kvgo_generic

#include "textflag.h"

// Dot products of quantized weight rows with quantized activations
// (AVX2, FMA, F16C). See qdot_amd64.go for the Go declarations and
// qdot.go for the pure-Go reference each one is tested against.
//
// Every function takes `rows` consecutive weight rows of nb blocks at w.
// The x1 variants multiply each row with one activation row and store
// out[r]; the x4 and x8 variants multiply each row with four or eight
// activation rows (xstride bytes apart) and store out[4r+t] or out[8r+t].
// Keeping several tokens per pass over a weight block is what makes
// prefill compute-bound rather than bandwidth-bound: the weight unpacking
// is done once for all of them.
//
// Integer products use VPMADDUBSW (unsigned bytes times signed bytes, pairs
// summed to int16), which is exact for every operand range used here, and
// VPMADDWD to widen to int32. The legacy formats (Q8_0, Q4_0, Q5_0) make
// the weight unsigned with the sign trick |w| * (y * sign(w)).

#include "asm_amd64.h"

#include "legacy_amd64.h"

// func dotQ8_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ8_0x1AVX2(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q8_0, 34)

// func dotQ4_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ4_0x1AVX2(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q4_0, 18)

// func dotQ5_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
TEXT ·dotQ5_0x1AVX2(SB), NOSPLIT, $0-48
	LEGACYX1(PREP_Q5_0, 22)

// func dotQ8_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ8_0x4AVX2(SB), NOSPLIT, $0-56
	LEGACYX4(PREP_Q8_0, 34)

// func dotQ8_0x8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ8_0x8AVX2(SB), NOSPLIT, $0-56
	LEGACYX8(PREP_Q8_0, 34)

// func dotQ4_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ4_0x4AVX2(SB), NOSPLIT, $0-56
	LEGACYX4(PREP_Q4_0, 18)

// func dotQ4_0x8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ4_0x8AVX2(SB), NOSPLIT, $0-56
	LEGACYX8(PREP_Q4_0, 18)

// func dotQ5_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ5_0x4AVX2(SB), NOSPLIT, $0-56
	LEGACYX4(PREP_Q5_0, 22)

// func dotQ5_0x8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
TEXT ·dotQ5_0x8AVX2(SB), NOSPLIT, $0-56
	LEGACYX8(PREP_Q5_0, 22)
