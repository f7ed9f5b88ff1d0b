//go:build !kvgo_generic

package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// withGEMM runs f with the tile GEMM switched on or off.
func withGEMM(on bool, f func()) {
	old := useGEMM
	useGEMM = on && haveVNNI
	defer func() { useGEMM = old }()
	f()
}

// TestGEMMMatchesReference compares the tile GEMM with package quant's
// dot products, within the bound of TestMatMulMatchesReference, on batches
// of every remainder modulo 4, row counts on and off the 16-row tile, and
// 512 tokens.
func TestGEMMMatchesReference(t *testing.T) {
	if !haveVNNI {
		t.Skip("no AVX512-VNNI on this CPU")
	}
	p := NewPool(2)
	defer p.Close()
	rng := rand.New(rand.NewPCG(3, 5))
	for _, typ := range []gguf.TensorType{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		shapes := []shape{{16, 32}, {33, 64}, {70, 896}, {128, 4864}}
		ns := []int{16, 17, 18, 19, 32, 512}
		if typ.BlockElems() == 256 {
			shapes = []shape{{16, 256}, {33, 512}, {70, 2048}}
			ns = []int{32, 33, 35, 512}
		}
		for _, s := range shapes {
			m := randomMatrix(t, rng, typ, s.rows, s.cols)
			for _, n := range ns {
				if n == 512 && s.cols > 1000 {
					continue
				}
				x := randomFloats(rng, n*s.cols)
				got := make([]float32, n*s.rows)
				withGEMM(true, func() { m.MatMul(p, got, x, n, make([]byte, m.ActivationBytes(n))) })
				want, mag := refMatMul(t, m, x, n)
				for i := range want {
					// Integer sums are exact; the float additions of
					// blocks (and for Q4_K of sub-blocks) round in
					// another order, within the reference test's bound.
					if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-5*float64(mag[i])+1e-6) {
						t.Fatalf("%s %dx%d n=%d: out[%d] = %g, want %g (magnitude %g)", typ, s.rows, s.cols, n, i, got[i], want[i], mag[i])
					}
				}
			}
		}
	}
}

// BenchmarkGEMM compares the tile GEMM with the AVX2 multi-token kernels
// on qwen2.5-0.5b's matrix shapes, at batch-decode and prefill sizes, on
// one thread (locked, so the thread's CPU time is reported beside the
// wall clock: on a shared machine it leaves out the time spent waiting for
// a core); run with -count to alternate the two.
func BenchmarkGEMM(b *testing.B) {
	if !haveVNNI {
		b.Skip("no AVX512-VNNI on this CPU")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p := NewPool(1)
	defer p.Close()
	for _, typ := range []gguf.TensorType{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		for _, s := range benchShapes(typ) {
			m := benchMatrix(b, typ, s.rows, s.cols)
			for _, n := range []int{4, 8, 16, 64, 512} {
				x := make([]float32, n*s.cols)
				rng := rand.New(rand.NewPCG(2, 3))
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				out := make([]float32, n*s.rows)
				scratch := make([]byte, m.ActivationBytes(n))
				for _, on := range []bool{false, true} {
					name := map[bool]string{false: "avx2", true: "gemm"}[on]
					b.Run(fmt.Sprintf("%s/%dx%d/n=%d/%s", typ, s.rows, s.cols, n, name), func(b *testing.B) {
						var cpu float64
						withGEMM(on, func() {
							cpu0 := threadCPU()
							for b.Loop() {
								m.MatMul(p, out, x, n, scratch)
							}
							cpu = (threadCPU() - cpu0).Seconds() / float64(b.N)
						})
						sec := b.Elapsed().Seconds() / float64(b.N)
						b.ReportMetric(float64(n*s.rows*s.cols)/sec/1e9, "GMAC/s")
						if cpu > 0 {
							b.ReportMetric(float64(n*s.rows*s.cols)/cpu/1e9, "GMAC/cpu-s")
						}
					})
				}
			}
		}
	}
}

// TestF16x44MatchesX4 compares the four-row F16 kernel with the one-row
// kernel on real row lengths and row counts off the multiple of four.
func TestF16x44MatchesX4(t *testing.T) {
	if !haveVNNI {
		t.Skip("no AVX512 on this CPU")
	}
	p := NewPool(2)
	defer p.Close()
	rng := rand.New(rand.NewPCG(9, 5))
	for _, s := range []shape{{4, 8}, {70, 896}, {33, 2048 + 24}} {
		m := randomMatrix(t, rng, gguf.TypeF16, s.rows, s.cols)
		n := 12
		x := randomFloats(rng, n*s.cols)
		var got, want []float32
		for _, on := range []bool{true, false} {
			out := make([]float32, n*s.rows)
			old := useF16x44
			useF16x44 = on
			m.MatMul(p, out, x, n, make([]byte, m.ActivationBytes(n)))
			useF16x44 = old
			if on {
				got = out
			} else {
				want = out
			}
		}
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*math.Abs(float64(want[i]))+1e-4 {
				t.Fatalf("%dx%d: out[%d] = %g, want %g", s.rows, s.cols, i, got[i], want[i])
			}
		}
	}
}

// BenchmarkF16x44 compares the four-row F16 kernel with the one-row one
// on qwen2.5-0.5b's shapes at 64 tokens, one locked thread.
func BenchmarkF16x44(b *testing.B) {
	if !haveVNNI {
		b.Skip("no AVX512 on this CPU")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p := NewPool(1)
	defer p.Close()
	for _, s := range benchShapes(gguf.TypeF16) {
		m := benchMatrix(b, gguf.TypeF16, s.rows, s.cols)
		n := 64
		x := make([]float32, n*s.cols)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		out := make([]float32, n*s.rows)
		scratch := make([]byte, m.ActivationBytes(n))
		for _, on := range []bool{false, true} {
			name := map[bool]string{false: "x4", true: "x44"}[on]
			b.Run(fmt.Sprintf("%dx%d/%s", s.rows, s.cols, name), func(b *testing.B) {
				old := useF16x44
				useF16x44 = on
				defer func() { useF16x44 = old }()
				cpu0 := threadCPU()
				for b.Loop() {
					m.MatMul(p, out, x, n, scratch)
				}
				cpu := (threadCPU() - cpu0).Seconds() / float64(b.N)
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(n*s.rows*s.cols)/sec/1e9, "GMAC/s")
				if cpu > 0 {
					b.ReportMetric(float64(n*s.rows*s.cols)/cpu/1e9, "GMAC/cpu-s")
				}
			})
		}
	}
}

// TestGEMMDoesNotAllocate: after the first call has grown the workers'
// tiles, the tile GEMM allocates nothing.
func TestGEMMDoesNotAllocate(t *testing.T) {
	if !haveVNNI {
		t.Skip("no AVX512-VNNI on this CPU")
	}
	p := NewPool(2)
	defer p.Close()
	rng := rand.New(rand.NewPCG(4, 4))
	for _, typ := range []gguf.TensorType{gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		m := randomMatrix(t, rng, typ, 256, 512)
		n := 32
		x := randomFloats(rng, n*512)
		out := make([]float32, n*m.Rows)
		scratch := make([]byte, m.ActivationBytes(n))
		withGEMM(true, func() {
			if a := testing.AllocsPerRun(20, func() { m.MatMul(p, out, x, n, scratch) }); a != 0 {
				t.Errorf("%s: MatMul allocates %v times per call", typ, a)
			}
		})
	}
}
