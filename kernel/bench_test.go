package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// benchMatrix builds a rows×cols matrix of type t. Speed does not depend on
// the weight values, so a few quantized random rows are repeated to fill it
// (quantizing 4M elements to Q4_K with the reference encoder takes seconds).
func benchMatrix(tb testing.TB, t gguf.TensorType, rows, cols int) *Matrix {
	tb.Helper()
	rb, err := t.RowBytes(cols)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(t)))
	const distinct = 8
	src := make([]byte, distinct*rb)
	x := make([]float32, cols)
	for r := range distinct {
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		if err := quant.Quantize(t, x, src[r*rb:(r+1)*rb]); err != nil {
			tb.Fatal(err)
		}
	}
	data := make([]byte, rows*rb)
	for r := range rows {
		copy(data[r*rb:(r+1)*rb], src[(r%distinct)*rb:])
	}
	m, err := NewMatrix(t, rows, cols, data)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

type shape struct{ rows, cols int }

// benchShapes are real matrix shapes (Rows×Cols) per weight type. The
// legacy types use qwen2.5-0.5b's attention (896×896), FFN up/gate
// (4864×896) and FFN down (896×4864). K-quants need rows of whole 256-element
// super-blocks, so 896 columns fall back to Q5_0 in a Q4_K file (see
// synth's fallback); they use FFN down and qwen3-0.6b's 1024×1024 and
// 3072×1024.
func benchShapes(t gguf.TensorType) []shape {
	if t.BlockElems() == 256 {
		return []shape{{1024, 1024}, {3072, 1024}, {896, 4864}}
	}
	return []shape{{896, 896}, {4864, 896}, {896, 4864}}
}

var benchTypes = []gguf.TensorType{
	gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
	gguf.TypeF16, gguf.TypeBF16, gguf.TypeF32,
}

// BenchmarkMatMul reports the weight bytes streamed per second (GB/s) for
// decode (n=1) and the multiply-adds per second (GMAC/s) for prefill-sized
// batches.
func BenchmarkMatMul(b *testing.B) {
	p := NewPool(0)
	defer p.Close()
	for _, t := range benchTypes {
		for _, s := range benchShapes(t) {
			m := benchMatrix(b, t, s.rows, s.cols)
			for _, n := range []int{1, 64} {
				b.Run(fmt.Sprintf("%s/%dx%d/n=%d", t, s.rows, s.cols, n), func(b *testing.B) {
					x := make([]float32, n*s.cols)
					rng := rand.New(rand.NewPCG(2, 3))
					for i := range x {
						x[i] = float32(rng.NormFloat64())
					}
					out := make([]float32, n*s.rows)
					scratch := make([]byte, m.ActivationBytes(n))
					b.ResetTimer()
					for b.Loop() {
						m.MatMul(p, out, x, n, scratch)
					}
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(len(m.Data))/sec/1e9, "GB/s")
					b.ReportMetric(float64(n*s.rows*s.cols)/sec/1e9, "GMAC/s")
				})
			}
		}
	}
}
