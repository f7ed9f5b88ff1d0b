// Package quant implements ggml's tensor element formats: the plain F32, F16
// and BF16 types, the legacy 32-element block quants (Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q8_1), the 256-element K-quants (Q2_K ... Q6_K, Q8_K) and the
// non-linear IQ4_NL and IQ4_XS (read only, see iq4.go), as defined
// by llama.cpp (ggml-common.h, ggml-quants.c, ggml-cpu-quants.c at commit
// c392e509, the one that made the test goldens).
//
// Dequantize follows ggml's dequantize_row_* and Quantize its reference
// quantizers quantize_row_*_ref (the ones llama-quantize uses without an
// importance matrix, with make_qx_quants, make_q3_quants and
// make_qkx2_quants for the K-quants). Dot is the slow, readable reference
// for the dot product kernels: it computes what ggml's scalar ("generic")
// ggml_vec_dot_* functions compute, operation by operation in float32, so
// SIMD kernels can be tested against it.
//
// # Floating-point contraction
//
// C compilers may fuse a*b+c into one fused multiply-add (FMA), and the
// bytes ggml's quantizers produce depend on it. GCC, which builds llama.cpp
// on Linux, contracts freely in its default GNU C mode when FMA is enabled
// (GGML_NATIVE on a modern x86-64), and for reductions inside loops the
// choice even depends on -mtune. This package therefore pins the rounding:
//
//   - Q4_0, Q4_1, Q5_0, Q5_1: "x*id + c" is evaluated as one fused
//     multiply-add before truncation, as GCC builds with FMA do (that is how
//     the stories260K Q4_0 goldens were made) and as gguf-py's reference
//     emulates for Q4_0 and Q5_0.
//   - Everything else (Q8_0, Q8_1, the K-quants, Q8_K, all dequantizers and
//     dot products) rounds every operation separately, as the C source reads
//     under ISO C semantics (-ffp-contract=off). Compilers that contract give
//     different bytes for a minority of K-quant super-blocks.
//
// Go itself may fuse a*b+c on arm64, ppc64, s390x and riscv64; every product
// that feeds an addition is wrapped in an explicit float32(...) conversion,
// which the Go specification guarantees is not fused away, so results are
// the same on every architecture.
package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kvgo/kvgo/gguf"
)

// qk is the element count of a legacy block (QK4_0 = QK4_1 = QK5_0 = QK5_1 =
// QK8_0 = QK8_1 = 32 in ggml-common.h).
const qk = 32

// qkK is the element count of a K-quant super-block (QK_K).
const qkK = gguf.QK_K

// RowBytes returns the number of bytes that n elements of type t occupy. It
// fails for unknown types, for negative n and for n that is not a whole
// number of blocks.
func RowBytes(t gguf.TensorType, n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("quant: %s: negative element count %d", t, n)
	}
	b, err := t.RowBytes(n)
	if err != nil {
		return 0, fmt.Errorf("quant: %s: %w", t, err)
	}
	return b, nil
}

// supported reports whether Quantize and Dequantize handle t.
func supported(t gguf.TensorType) bool {
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
		gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1,
		gguf.TypeQ8_0, gguf.TypeQ8_1,
		gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K,
		gguf.TypeQ6_K, gguf.TypeQ8_K, gguf.TypeIQ4_NL, gguf.TypeIQ4_XS:
		return true
	}
	return false
}

// Supported reports whether t is one of the types this package can
// dequantize; all of them but IQ4_NL and IQ4_XS can also be quantized.
func Supported(t gguf.TensorType) bool { return supported(t) }

// checkSizes validates that t is supported, that n elements form whole
// blocks and that the encoded buffer holds exactly RowBytes(t, n) bytes.
func checkSizes(t gguf.TensorType, n, nbytes int) error {
	if !supported(t) {
		return fmt.Errorf("quant: unsupported tensor type %s", t)
	}
	want, err := RowBytes(t, n)
	if err != nil {
		return err
	}
	if nbytes != want {
		return fmt.Errorf("quant: %s: %d elements need %d bytes, got %d", t, n, want, nbytes)
	}
	return nil
}

// Dequantize decodes len(dst) elements of type t from src into dst, using
// ggml's dequantize_row_* formulas. src must hold exactly RowBytes(t,
// len(dst)) bytes. It returns an error, leaving dst untouched, for
// unsupported types and wrong sizes; any bytes of the right size decode
// without panicking (NaN and Inf scales decode to NaN and Inf).
func Dequantize(t gguf.TensorType, src []byte, dst []float32) error {
	if err := checkSizes(t, len(dst), len(src)); err != nil {
		return err
	}
	switch t {
	case gguf.TypeF32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case gguf.TypeF16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case gguf.TypeBF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	default:
		dec := blockDecoders[t]
		be, bb := t.BlockElems(), t.BlockBytes()
		for i := 0; i < len(dst)/be; i++ {
			dec(src[i*bb:(i+1)*bb], dst[i*be:(i+1)*be])
		}
	}
	return nil
}

// Quantize encodes src as type t into dst, which must be exactly
// RowBytes(t, len(src)) bytes long. The quantized types use ggml's reference
// quantizers (quantize_row_*_ref), the ones llama-quantize uses when no
// importance matrix is given; see the per-type functions for the exact
// rounding.
func Quantize(t gguf.TensorType, src []float32, dst []byte) error {
	if err := checkSizes(t, len(src), len(dst)); err != nil {
		return err
	}
	switch t {
	case gguf.TypeF32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case gguf.TypeF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(v))
		}
	case gguf.TypeBF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(v))
		}
	default:
		enc := blockEncoders[t]
		if enc == nil {
			return fmt.Errorf("quant: quantizing to %s is not supported (kvgo reads %s files made by llama-quantize)", t, t)
		}
		be, bb := t.BlockElems(), t.BlockBytes()
		for i := 0; i < len(src)/be; i++ {
			enc(src[i*be:(i+1)*be], dst[i*bb:(i+1)*bb])
		}
	}
	return nil
}

// blockDecoders and blockEncoders map each block type to the function that
// handles one block. They are read-only after package initialisation.
var blockDecoders = map[gguf.TensorType]func(b []byte, y []float32){
	gguf.TypeQ4_0:   decodeQ4_0,
	gguf.TypeQ4_1:   decodeQ4_1,
	gguf.TypeQ5_0:   decodeQ5_0,
	gguf.TypeQ5_1:   decodeQ5_1,
	gguf.TypeQ8_0:   decodeQ8_0,
	gguf.TypeQ8_1:   decodeQ8_1,
	gguf.TypeQ2_K:   decodeQ2_K,
	gguf.TypeQ3_K:   decodeQ3_K,
	gguf.TypeQ4_K:   decodeQ4_K,
	gguf.TypeQ5_K:   decodeQ5_K,
	gguf.TypeQ6_K:   decodeQ6_K,
	gguf.TypeQ8_K:   decodeQ8_K,
	gguf.TypeIQ4_NL: decodeIQ4_NL,
	gguf.TypeIQ4_XS: decodeIQ4_XS,
}

var blockEncoders = map[gguf.TensorType]func(x []float32, b []byte){
	gguf.TypeQ4_0: encodeQ4_0,
	gguf.TypeQ4_1: encodeQ4_1,
	gguf.TypeQ5_0: encodeQ5_0,
	gguf.TypeQ5_1: encodeQ5_1,
	gguf.TypeQ8_0: encodeQ8_0,
	gguf.TypeQ8_1: encodeQ8_1,
	gguf.TypeQ2_K: encodeQ2_K,
	gguf.TypeQ3_K: encodeQ3_K,
	gguf.TypeQ4_K: encodeQ4_K,
	gguf.TypeQ5_K: encodeQ5_K,
	gguf.TypeQ6_K: encodeQ6_K,
	gguf.TypeQ8_K: encodeQ8_K,
}

// VecDotType returns the type ggml converts the activation vector to before
// taking its dot product with a row of type t (the vec_dot_type of ggml-cpu's
// type_traits_cpu): F32, F16 and BF16 pair with themselves, Q4_0, Q5_0,
// Q8_0 and IQ4_NL with Q8_0, Q4_1 and Q5_1 with Q8_1, and the K-quants and
// IQ4_XS with Q8_K.
//
// Types without a dot product kernel (Q8_1, Q8_K, unknown types) are
// returned unchanged; Dot rejects them.
func VecDotType(t gguf.TensorType) gguf.TensorType {
	switch t {
	case gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ8_0, gguf.TypeIQ4_NL:
		return gguf.TypeQ8_0
	case gguf.TypeQ4_1, gguf.TypeQ5_1:
		return gguf.TypeQ8_1
	case gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeIQ4_XS:
		return gguf.TypeQ8_K
	}
	return t
}

// QuantizeActivation encodes the activation vector x as VecDotType(t) into
// dst (exactly RowBytes(VecDotType(t), len(x)) bytes), ready for Dot with a
// row of type t, as ggml's CPU backend converts activations on x86 with
// AVX2 (see activation.go): Q8_0 and Q8_1 (which also stores s = d*sum(q)
// per block) with the multiplier 127/max|x| and rounding half to even, Q8_K
// with quantize_row_q8_K_ref (float32 d, int8 quants and int16 sums of each
// 16 quants). Quantize, which writes files, keeps the reference quantizers.
func QuantizeActivation(t gguf.TensorType, x []float32, dst []byte) error {
	if !hasDot(t) {
		return fmt.Errorf("quant: %s: no dot product kernel for this type", t)
	}
	vt := VecDotType(t)
	var enc func(x []float32, b []byte)
	switch vt {
	case gguf.TypeQ8_0:
		enc = encodeQ8_0Act
	case gguf.TypeQ8_1:
		enc = encodeQ8_1Act
	default:
		return Quantize(vt, x, dst)
	}
	if err := checkSizes(vt, len(x), len(dst)); err != nil {
		return err
	}
	for i := 0; i < len(x)/qk; i++ {
		enc(x[i*qk:(i+1)*qk], dst[i*vt.BlockBytes():(i+1)*vt.BlockBytes()])
	}
	return nil
}

// f16at reads the little-endian half stored at b[0:2] as float32.
func f16at(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

// putF16 stores f as a little-endian half at b[0:2].
func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, F32ToF16(f)) }
