package gguf

import (
	"fmt"
	"strings"
)

// TensorType is a ggml tensor element type as stored in a GGUF tensor info.
// The numeric values are ggml's and appear on disk.
type TensorType uint32

// Tensor types kvgo knows. Types with no entry in typeTraits are recognized
// by number only and rejected when their data is needed.
const (
	TypeF32  TensorType = 0
	TypeF16  TensorType = 1
	TypeQ4_0 TensorType = 2
	TypeQ4_1 TensorType = 3
	TypeQ5_0 TensorType = 6
	TypeQ5_1 TensorType = 7
	TypeQ8_0 TensorType = 8
	TypeQ8_1 TensorType = 9
	TypeQ2_K TensorType = 10
	TypeQ3_K TensorType = 11
	TypeQ4_K TensorType = 12
	TypeQ5_K TensorType = 13
	TypeQ6_K TensorType = 14
	TypeQ8_K TensorType = 15
	// TypeIQ4_NL and TypeIQ4_XS are ggml's non-linear 4-bit types: 32- and
	// 256-element blocks of indices into a fixed 16-entry table.
	TypeIQ4_NL TensorType = 20
	TypeIQ4_XS TensorType = 23
	TypeI8     TensorType = 24
	TypeI16    TensorType = 25
	TypeI32    TensorType = 26
	TypeI64    TensorType = 27
	TypeF64    TensorType = 28
	TypeBF16   TensorType = 30
)

// QK_K is the number of elements in a K-quant super-block.
const QK_K = 256

type typeTraits struct {
	name       string
	blockElems int // elements per block
	blockBytes int // bytes per block
}

var traits = map[TensorType]typeTraits{
	TypeF32:  {"F32", 1, 4},
	TypeF16:  {"F16", 1, 2},
	TypeBF16: {"BF16", 1, 2},
	TypeF64:  {"F64", 1, 8},
	TypeI8:   {"I8", 1, 1},
	TypeI16:  {"I16", 1, 2},
	TypeI32:  {"I32", 1, 4},
	TypeI64:  {"I64", 1, 8},
	TypeQ4_0: {"Q4_0", 32, 2 + 16},
	TypeQ4_1: {"Q4_1", 32, 2 + 2 + 16},
	TypeQ5_0: {"Q5_0", 32, 2 + 4 + 16},
	TypeQ5_1: {"Q5_1", 32, 2 + 2 + 4 + 16},
	TypeQ8_0: {"Q8_0", 32, 2 + 32},
	TypeQ8_1: {"Q8_1", 32, 4 + 32},
	TypeQ2_K: {"Q2_K", QK_K, QK_K/16 + QK_K/4 + 2 + 2},
	TypeQ3_K: {"Q3_K", QK_K, QK_K/8 + QK_K/4 + 12 + 2},
	TypeQ4_K: {"Q4_K", QK_K, 2 + 2 + 12 + QK_K/2},
	TypeQ5_K: {"Q5_K", QK_K, 2 + 2 + 12 + QK_K/8 + QK_K/2},
	TypeQ6_K: {"Q6_K", QK_K, QK_K/2 + QK_K/4 + QK_K/16 + 2},
	TypeQ8_K: {"Q8_K", QK_K, 4 + QK_K + QK_K/16*2},
	// IQ4_NL: d f16, 16 bytes of nibbles. IQ4_XS: d f16, scales_h u16,
	// scales_l[4], 128 bytes of nibbles.
	TypeIQ4_NL: {"IQ4_NL", 32, 2 + 16},
	TypeIQ4_XS: {"IQ4_XS", QK_K, 2 + 2 + QK_K/64 + QK_K/2},
}

// otherNames are ggml's names of the types kvgo cannot read (i-quants,
// ternary and MXFP4 types, and the repacked layouts ggml no longer writes),
// so that an error names the type a user can look up.
var otherNames = map[TensorType]string{
	4: "Q4_2", 5: "Q4_3",
	16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 21: "IQ3_S", 22: "IQ2_S",
	29: "IQ1_M", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8", 34: "TQ1_0", 35: "TQ2_0",
	36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8", 39: "MXFP4",
}

// Known reports whether kvgo knows the block layout of t.
func (t TensorType) Known() bool { _, ok := traits[t]; return ok }

// String returns ggml's name for t, or "type(N)" for a type ggml does not
// name either.
func (t TensorType) String() string {
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	if n, ok := otherNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockElems is the number of elements in one block of t (1 for plain types).
// It is 0 for unknown types.
func (t TensorType) BlockElems() int { return traits[t].blockElems }

// BlockBytes is the size in bytes of one block of t. It is 0 for unknown types.
func (t TensorType) BlockBytes() int { return traits[t].blockBytes }

// RowBytes returns the bytes needed for n elements of type t, or an error if
// t is unknown or n is not a whole number of blocks.
func (t TensorType) RowBytes(n int) (int, error) {
	tr, ok := traits[t]
	if !ok {
		return 0, fmt.Errorf("unsupported tensor type %s", t)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative element count %d", n)
	}
	if n%tr.blockElems != 0 {
		return 0, fmt.Errorf("%d elements of %s are not a whole number of %d-element blocks", n, t, tr.blockElems)
	}
	return n / tr.blockElems * tr.blockBytes, nil
}

// ParseTensorType maps a ggml type name ("Q4_K", "f16", ...) to its TensorType.
func ParseTensorType(name string) (TensorType, error) {
	for t, tr := range traits {
		if strings.EqualFold(tr.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q", name)
}
