package kernel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
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

// BenchmarkRowKernel runs one weight tile through the row kernels with one
// (x1) and four (x4) activation rows, on one core and without the pool:
// the kernels' own speed, weights in cache. GB/s counts weight bytes per
// activation row, so x4 at the same GB/s as x1 would mean no gain.
func BenchmarkRowKernel(b *testing.B) {
	p := NewPool(1)
	defer p.Close()
	for _, t := range benchTypes {
		cols := 1024 // a typical embedding width: eight activation rows stay in L1
		if t == gguf.TypeF32 || t == gguf.TypeF16 || t == gguf.TypeBF16 {
			cols = 576
		}
		m := benchMatrix(b, t, 64, cols)
		for _, n := range []int{1, 4, 8} {
			if n == 8 && !(useAVX2 && m.kind.legacy()) {
				continue
			}
			b.Run(fmt.Sprintf("%s/x%d", t, n), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(2, 3))
				x := randomFloats(rng, n*cols)
				scratch := make([]byte, m.ActivationBytes(n))
				a := m.convert(p, x, n, scratch)
				out := make([]float32, 8*m.Rows)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU()
				for b.Loop() {
					switch n {
					case 1:
						m.dot1(out, 0, m.Rows, &a, 0)
					case 4:
						m.dot4(out, 0, m.Rows, &a, 0)
					default:
						m.dot8AVX2(out, 0, m.Rows, &a, 0)
					}
				}
				cpu := (threadCPU() - cpu0).Seconds() / float64(b.N)
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(n*len(m.Data))/sec/1e9, "GB/s")
				b.ReportMetric(float64(n*m.Rows*cols)/sec/1e9, "GMAC/s")
				if cpu > 0 {
					b.ReportMetric(float64(n*m.Rows*cols)/cpu/1e9, "GMAC/cpu-s")
				}
			})
		}
	}
}

// BenchmarkConvert is the activation conversion for each weight type, per
// 4096-element row.
func BenchmarkConvert(b *testing.B) {
	p := NewPool(1)
	defer p.Close()
	for _, t := range []gguf.TensorType{gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeF16, gguf.TypeBF16} {
		m := benchMatrix(b, t, 1, 4096)
		b.Run(t.String(), func(b *testing.B) {
			x := randomFloats(rand.New(rand.NewPCG(1, 1)), 4096)
			scratch := make([]byte, m.ActivationBytes(1))
			b.SetBytes(4 * 4096)
			for b.Loop() {
				m.convert(p, x, 1, scratch)
			}
		})
	}
}

// BenchmarkAttention is one query against 4096 cached F16 keys and values
// of a 64-wide head: the inner loops of decode at depth 4096.
func BenchmarkAttention(b *testing.B) {
	const d, n = 64, 4096
	rng := rand.New(rand.NewPCG(1, 2))
	q := randomFloats(rng, d)
	k, _ := randomHalves(rng, n*d)
	v, _ := randomHalves(rng, n*d)
	scores := make([]float32, n)
	out := make([]float32, d)
	b.Run("DotsF16", func(b *testing.B) {
		b.SetBytes(2 * n * d)
		for b.Loop() {
			DotsF16(scores, q, k, d)
		}
	})
	b.Run("Softmax", func(b *testing.B) {
		b.SetBytes(4 * n)
		for b.Loop() {
			DotsF16(scores, q, k, d)
			Softmax(scores)
		}
	})
	b.Run("WeightedSumF16", func(b *testing.B) {
		for i := range scores {
			scores[i] = 1 / float32(n)
		}
		b.SetBytes(2 * n * d)
		for b.Loop() {
			WeightedSumF16(out, scores, v, d)
		}
	})
	b.Run("DotsF16Group-7", func(b *testing.B) {
		q7 := randomFloats(rng, 7*d)
		s7 := make([]float32, 7*n)
		b.SetBytes(7 * 2 * n * d)
		for b.Loop() {
			DotsF16Group(s7, q7, 7, k, d)
		}
	})
	b.Run("DotF16-per-key", func(b *testing.B) {
		b.SetBytes(2 * n * d)
		for b.Loop() {
			for i := range n {
				scores[i] = DotF16(q, k[i*d:(i+1)*d])
			}
		}
	})
}

// BenchmarkElementwise covers the per-token vector operations at
// qwen2.5-0.5b sizes (896 embedding, 4864 FFN).
func BenchmarkElementwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x, w, out := randomFloats(rng, 896), randomFloats(rng, 896), make([]float32, 896)
	g, u := randomFloats(rng, 4864), randomFloats(rng, 4864)
	b.Run("RMSNorm/896", func(b *testing.B) {
		b.SetBytes(4 * 896)
		for b.Loop() {
			RMSNorm(out, x, w, 1e-6)
		}
	})
	b.Run("SwiGLU/4864", func(b *testing.B) {
		b.SetBytes(4 * 4864)
		gg := make([]float32, len(g))
		for b.Loop() {
			copy(gg, g)
			SwiGLU(gg, u)
		}
	})
	b.Run("Softmax/4864", func(b *testing.B) {
		b.SetBytes(4 * 4864)
		gg := make([]float32, len(g))
		for b.Loop() {
			copy(gg, g)
			Softmax(gg)
		}
	})
}

// BenchmarkWeightedSumPage is the value half of attention over one page
// as kv/quant runs it: 32 decoded rows (in L1) into one head's output, at
// the head sizes of the shipped shapes.
func BenchmarkWeightedSumPage(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, d := range []int{64, 128} {
		const n = 32
		v := randomFloats(rng, n*d)
		p := randomFloats(rng, n)
		y := make([]float32, d)
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			for b.Loop() {
				WeightedSum(y, p, v, d)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}

// BenchmarkWeightedSumHeads is the value half of attention for qwen2.5's 7
// query heads per KV head over a run of rows: one pass per head
// (WeightedSum, WeightedSumF16), the baseline, against WeightedSumHeads
// and WeightedSumHeadsF16, which take three heads per pass.
func BenchmarkWeightedSumHeads(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	const g = 7
	for _, d := range []int{64, 128} {
		for _, n := range []int{16, 32} {
			v := randomFloats(rng, n*d)
			vh := make([]uint16, n*d)
			ToF16(vh, v)
			p := randomFloats(rng, g*n)
			out := make([]float32, g*d)
			report := func(b *testing.B) {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*g), "ns/th")
			}
			b.Run(fmt.Sprintf("d=%d/n=%d/f32/per-head", d, n), func(b *testing.B) {
				for b.Loop() {
					for j := 0; j < g; j++ {
						WeightedSum(out[j*d:(j+1)*d], p[j*n:(j+1)*n], v, d)
					}
				}
				report(b)
			})
			b.Run(fmt.Sprintf("d=%d/n=%d/f32/heads", d, n), func(b *testing.B) {
				for b.Loop() {
					WeightedSumHeads(out, p, n, g, v, d)
				}
				report(b)
			})
			b.Run(fmt.Sprintf("d=%d/n=%d/f16/per-head", d, n), func(b *testing.B) {
				for b.Loop() {
					for j := 0; j < g; j++ {
						WeightedSumF16(out[j*d:(j+1)*d], p[j*n:(j+1)*n], vh, d)
					}
				}
				report(b)
			})
			b.Run(fmt.Sprintf("d=%d/n=%d/f16/heads", d, n), func(b *testing.B) {
				for b.Loop() {
					WeightedSumHeadsF16(out, p, n, g, vh, d)
				}
				report(b)
			})
		}
	}
}
