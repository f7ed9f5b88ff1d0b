package kernel

import (
	"fmt"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// The activation conversions below produce exactly the bytes of
// quant.QuantizeActivation on both paths: for Q8_0 what ggml's AVX2
// quantize_row_q8_0 computes (multiplier 127/max, rounding half to even),
// which can differ from the reference quantize_row_q8_0_ref in the last
// bit of a quant, and for Q8_K the reference, which ggml runs on x86 too.
// Following the x86 build rather than the reference is what brought the
// perplexity of the quantized stories260K files to llama.cpp's to four
// decimals (Q8_0 4.1835 -> 4.1865, docs/QUALITY.md).

// roundF16 stores x rounded to half precision (and widened back) in dst:
// the values ggml's F16 dot product sees after converting the activation
// to F16. Multiplying with the widened values gives exactly the products
// of the F16×F16 dot product, without converting the activations again for
// every weight row.
func roundF16(dst, x []float32) {
	dst = dst[:len(x)]
	i := 0
	if useAVX2 && len(x) >= 8 {
		i = len(x) &^ 7
		roundF16AVX2(&dst[0], &x[0], i)
	}
	for ; i < len(x); i++ {
		dst[i] = quant.F16ToF32(quant.F32ToF16(x[i]))
	}
}

// roundBF16 is roundF16 for bfloat16.
func roundBF16(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = quant.BF16ToF32(quant.F32ToBF16(v))
	}
}

// quantizeQ8_0 encodes x as Q8_0 blocks in dst (ggml's AVX2
// quantize_row_q8_0, byte for byte) and stores each block's scale, as rounded to F16, in
// scales.
func quantizeQ8_0(dst []byte, scales []float32, x []float32) {
	nb := len(x) / 32
	if len(x)%32 != 0 || len(dst) != 34*nb || len(scales) != nb {
		panic(fmt.Sprintf("kernel: Q8_0 activation of %d values into %d bytes and %d scales", len(x), len(dst), len(scales)))
	}
	if nb == 0 {
		return
	}
	if useAVX2 {
		quantizeQ8_0AVX2(&x[0], nb, &dst[0], &scales[0])
		return
	}
	quantizeQ8_0Go(dst, scales, x)
}

// quantizeQ8_0Go is quantizeQ8_0 through package quant.
func quantizeQ8_0Go(dst []byte, scales []float32, x []float32) {
	if err := quant.QuantizeActivation(gguf.TypeQ8_0, x, dst); err != nil {
		panic(err)
	}
	for i := range scales {
		scales[i] = quant.F16ToF32(uint16(dst[34*i]) | uint16(dst[34*i+1])<<8)
	}
}

// quantizeQ8_K encodes x as Q8_K super-blocks in dst
// (quantize_row_q8_K_ref, byte for byte).
func quantizeQ8_K(dst []byte, x []float32) {
	nb := len(x) / 256
	if len(x)%256 != 0 || len(dst) != 292*nb {
		panic(fmt.Sprintf("kernel: Q8_K activation of %d values into %d bytes", len(x), len(dst)))
	}
	if nb == 0 {
		return
	}
	if useAVX2 {
		quantizeQ8_KAVX2(&x[0], nb, &dst[0])
		return
	}
	quantizeQ8_KGo(dst, x)
}

// quantizeQ8_KGo is quantizeQ8_K through the reference encoder.
func quantizeQ8_KGo(dst []byte, x []float32) {
	if err := quant.Quantize(gguf.TypeQ8_K, x, dst); err != nil {
		panic(err)
	}
}
