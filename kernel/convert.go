package kernel

import (
	"math"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// roundF16 stores x rounded to half precision (and widened back) in dst:
// the values ggml's F16 dot product sees after converting the activation
// to F16. Multiplying with the widened values gives exactly the products
// of the F16×F16 dot product, without converting the activations again for
// every weight row.
func roundF16(dst, x []float32) {
	for i, v := range x {
		dst[i] = quant.F16ToF32(quant.F32ToF16(v))
	}
}

// roundBF16 is roundF16 for bfloat16.
func roundBF16(dst, x []float32) {
	for i, v := range x {
		dst[i] = quant.BF16ToF32(quant.F32ToBF16(v))
	}
}

// quantizeQ8_0 encodes x as Q8_0 blocks in dst (quantize_row_q8_0_ref,
// byte for byte) and stores each block's scale, as rounded to F16, in
// scales.
func quantizeQ8_0(dst []byte, scales []float32, x []float32) {
	if err := quant.Quantize(gguf.TypeQ8_0, x, dst); err != nil {
		panic(err)
	}
	for i := range scales {
		scales[i] = quant.F16ToF32(uint16(dst[34*i]) | uint16(dst[34*i+1])<<8)
	}
}

// quantizeQ8_K encodes x as Q8_K super-blocks in dst
// (quantize_row_q8_K_ref, byte for byte).
func quantizeQ8_K(dst []byte, x []float32) {
	if err := quant.Quantize(gguf.TypeQ8_K, x, dst); err != nil {
		panic(err)
	}
}

var _ = math.Abs
