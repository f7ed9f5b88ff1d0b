//go:build !kvgo_generic

package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// legacyKernels pairs each VNNI kernel with its AVX2 twin.
type legacyKernels struct {
	typ            gguf.TensorType
	bs             int // weight block bytes
	x1AVX2, x1VNNI legacyX1
	x4AVX2, x4VNNI legacyX4
	x8AVX2, x8VNNI legacyX4
	// The unsigned-weight kernels of vnniu_amd64.s.
	x4U, x8U legacyX4
}

var legacyPairs = []legacyKernels{
	{gguf.TypeQ8_0, 34, dotQ8_0x1AVX2, dotQ8_0x1VNNI, dotQ8_0x4AVX2, dotQ8_0x4VNNI, dotQ8_0x8AVX2, dotQ8_0x8VNNI, dotQ8_0x4VNNIU, dotQ8_0x8VNNIU},
	{gguf.TypeQ4_0, 18, dotQ4_0x1AVX2, dotQ4_0x1VNNI, dotQ4_0x4AVX2, dotQ4_0x4VNNI, dotQ4_0x8AVX2, dotQ4_0x8VNNI, dotQ4_0x4VNNIU, dotQ4_0x8VNNIU},
	{gguf.TypeQ5_0, 22, dotQ5_0x1AVX2, dotQ5_0x1VNNI, dotQ5_0x4AVX2, dotQ5_0x4VNNI, dotQ5_0x8AVX2, dotQ5_0x8VNNI, dotQ5_0x4VNNIU, dotQ5_0x8VNNIU},
}

func skipWithoutVNNI(tb testing.TB) {
	tb.Helper()
	if !haveVNNI {
		tb.Skip("CPU lacks AVX512F/BW/VL and AVX512_VNNI: the VNNI kernels cannot run here")
	}
}

// fillExtreme fills b with one of several byte patterns: random bytes, or
// one value throughout (the extremes of int8, zero, and for packed
// nibbles all-0 and all-15).
func fillExtreme(rng *rand.Rand, b []byte, mode int) {
	for i := range b {
		switch mode {
		case 0, 1, 2:
			b[i] = byte(rng.Uint32())
		case 3:
			b[i] = 0x80 // -128, or nibbles 0 and 8
		case 4:
			b[i] = 0x7f // 127
		case 5:
			b[i] = 0
		case 6:
			b[i] = 0xff // -1, or nibbles 15
		}
	}
}

// randomHalf is a finite f16 scale, zero one time in ten.
func randomHalf(rng *rand.Rand) uint16 {
	if rng.IntN(10) == 0 {
		return 0
	}
	return quant.F32ToF16(float32(rng.NormFloat64() * 0.05))
}

// legacyData makes rows weight rows of nb blocks of block size bs and
// eight activation rows (Q8_0 blocks, with their scales as float32 by
// token, s, and by group of four tokens, s4), the block quants drawn
// block by block from fillExtreme's patterns.
func legacyData(rng *rand.Rand, bs, rows, nb int) (w, x []byte, s, s4 []float32) {
	w = make([]byte, rows*nb*bs)
	for b := 0; b < rows*nb; b++ {
		blk := w[b*bs : (b+1)*bs]
		fillExtreme(rng, blk, rng.IntN(7))
		h := randomHalf(rng)
		blk[0], blk[1] = byte(h), byte(h>>8)
	}
	const n = 8
	x = make([]byte, n*nb*34)
	s = make([]float32, n*nb)
	for b := 0; b < n*nb; b++ {
		blk := x[b*34 : (b+1)*34]
		fillExtreme(rng, blk, rng.IntN(7))
		h := randomHalf(rng)
		blk[0], blk[1] = byte(h), byte(h>>8)
		s[b] = quant.F16ToF32(h)
	}
	s4 = make([]float32, n*nb)
	for g := 0; g < n; g += 4 {
		for b := range nb {
			for i := range 4 {
				s4[g*nb+4*b+i] = s[(g+i)*nb+b]
			}
		}
	}
	return w, x, s, s4
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: out[%d] = %g (%#08x), AVX2 kernel gives %g (%#08x)",
				what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestVNNIMatchesAVX2 runs every VNNI kernel and its AVX2 twin on the same
// random and extreme data (int8 -128 and 127, all-zero blocks, zero
// scales) for several row and block counts, and requires the same float32
// bits.
func TestVNNIMatchesAVX2(t *testing.T) {
	skipWithoutVNNI(t)
	rng := rand.New(rand.NewPCG(41, 42))
	for _, k := range legacyPairs {
		for _, nb := range []int{1, 2, 3, 7, 28} {
			for _, rows := range []int{1, 2, 5, 64} {
				t.Run(fmt.Sprintf("%s/nb=%d/rows=%d", k.typ, nb, rows), func(t *testing.T) {
					for range 8 {
						w, x, s, s4 := legacyData(rng, k.bs, rows, nb)
						stride := nb * 34
						want := make([]float32, 8*rows)
						got := make([]float32, 8*rows)
						for tok := range 8 {
							xt, st := &x[tok*stride], &s[tok*nb]
							k.x1AVX2(&w[0], rows, xt, st, nb, &want[0])
							k.x1VNNI(&w[0], rows, xt, st, nb, &got[0])
							sameBits(t, fmt.Sprintf("x1 token %d", tok), got[:rows], want[:rows])
						}
						for g := 0; g < 8; g += 4 {
							k.x4AVX2(&w[0], rows, &x[g*stride], stride, &s4[g*nb], nb, &want[0])
							k.x4VNNI(&w[0], rows, &x[g*stride], stride, &s4[g*nb], nb, &got[0])
							sameBits(t, fmt.Sprintf("x4 tokens %d-%d", g, g+3), got[:4*rows], want[:4*rows])
						}
						k.x8AVX2(&w[0], rows, &x[0], stride, &s4[0], nb, &want[0])
						k.x8VNNI(&w[0], rows, &x[0], stride, &s4[0], nb, &got[0])
						sameBits(t, "x8", got, want)

						// The unsigned-weight kernels, on activations
						// as quantizeQ8_0 makes them: no -128.
						noMin128(x)
						for g := 0; g < 8; g += 4 {
							k.x4AVX2(&w[0], rows, &x[g*stride], stride, &s4[g*nb], nb, &want[0])
							k.x4U(&w[0], rows, &x[g*stride], stride, &s4[g*nb], nb, &got[0])
							sameBits(t, fmt.Sprintf("unsigned x4 tokens %d-%d", g, g+3), got[:4*rows], want[:4*rows])
						}
						k.x8AVX2(&w[0], rows, &x[0], stride, &s4[0], nb, &want[0])
						k.x8U(&w[0], rows, &x[0], stride, &s4[0], nb, &got[0])
						sameBits(t, "unsigned x8", got, want)
					}
				})
			}
		}
	}
}

// noMin128 replaces the activation quants -128 of Q8_0 blocks x by -127.
func noMin128(x []byte) {
	for b := 0; b+34 <= len(x); b += 34 {
		for i := b + 2; i < b+34; i++ {
			if x[i] == 0x80 {
				x[i] = 0x81
			}
		}
	}
}

// TestVNNILongRows runs the kernels the dispatch uses on rows longer than
// the unsigned-weight kernels' tables (which then hand over to the
// sign-trick ones) and just within them.
func TestVNNILongRows(t *testing.T) {
	skipWithoutVNNI(t)
	if !useVNNI {
		t.Skip("KVGO_NO_AVX512 is set: the dispatch uses the AVX2 kernels")
	}
	rng := rand.New(rand.NewPCG(45, 46))
	dispatched := map[gguf.TensorType][3]any{
		gguf.TypeQ8_0: {dotQ8_0x1, dotQ8_0x4, dotQ8_0x8},
		gguf.TypeQ4_0: {dotQ4_0x1, dotQ4_0x4, dotQ4_0x8},
		gguf.TypeQ5_0: {dotQ5_0x1, dotQ5_0x4, dotQ5_0x8},
	}
	for _, k := range legacyPairs {
		for _, nb := range []int{vnniMaxBlocks, vnniMaxBlocks + 1} {
			const rows = 2
			w, x, s, s4 := legacyData(rng, k.bs, rows, nb)
			noMin128(x)
			stride := nb * 34
			f := dispatched[k.typ]
			want := make([]float32, 8*rows)
			got := make([]float32, 8*rows)
			k.x1AVX2(&w[0], rows, &x[0], &s[0], nb, &want[0])
			f[0].(legacyX1)(&w[0], rows, &x[0], &s[0], nb, &got[0])
			sameBits(t, fmt.Sprintf("%s nb=%d x1", k.typ, nb), got[:rows], want[:rows])
			k.x4AVX2(&w[0], rows, &x[0], stride, &s4[0], nb, &want[0])
			f[1].(legacyX4)(&w[0], rows, &x[0], stride, &s4[0], nb, &got[0])
			sameBits(t, fmt.Sprintf("%s nb=%d x4", k.typ, nb), got[:4*rows], want[:4*rows])
			k.x8AVX2(&w[0], rows, &x[0], stride, &s4[0], nb, &want[0])
			f[2].(legacyX4)(&w[0], rows, &x[0], stride, &s4[0], nb, &got[0])
			sameBits(t, fmt.Sprintf("%s nb=%d x8", k.typ, nb), got, want)
		}
	}
}

// TestVNNIZeroRows checks that the kernels return at once for rows = 0
// without touching out.
func TestVNNIZeroRows(t *testing.T) {
	skipWithoutVNNI(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range legacyPairs {
		w, x, s, s4 := legacyData(rng, k.bs, 1, 1)
		out := []float32{42}
		k.x1VNNI(&w[0], 0, &x[0], &s[0], 1, &out[0])
		k.x4VNNI(&w[0], 0, &x[0], 34, &s4[0], 1, &out[0])
		k.x8VNNI(&w[0], 0, &x[0], 34, &s4[0], 1, &out[0])
		if out[0] != 42 {
			t.Fatalf("%s: rows=0 wrote %g", k.typ, out[0])
		}
	}
}

// pairedMin times avx2 and vnni alternately, call by call, and reports
// each one's fastest call and their ratio (speedup > 1: VNNI faster). On a
// machine shared with other work, where a call's time depends on what else
// runs, the fastest of many calls taken in the same stretch of time is the
// kernel's own speed, and far steadier than two wall-clock benchmarks run
// one after the other.
func pairedMin(b *testing.B, avx2, vnni func()) {
	run := func(f func()) time.Duration {
		t0 := time.Now()
		f()
		return time.Since(t0)
	}
	ta, tv := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for b.Loop() {
		ta = min(ta, run(avx2))
		tv = min(tv, run(vnni))
	}
	b.ReportMetric(float64(ta.Nanoseconds())/1e3, "avx2-min-µs")
	b.ReportMetric(float64(tv.Nanoseconds())/1e3, "vnni-min-µs")
	b.ReportMetric(ta.Seconds()/tv.Seconds(), "speedup")
}

// BenchmarkLegacyVNNI compares the legacy-block kernels on one cache tile
// of 64 weight rows (qwen2.5-0.5b's widths: 896 for attention and FFN
// up/gate, 4864 for FFN down), weights in cache: the kernels' own speed.
func BenchmarkLegacyVNNI(b *testing.B) {
	skipWithoutVNNI(b)
	rng := rand.New(rand.NewPCG(5, 6))
	const rows = 64
	for _, k := range legacyPairs {
		for _, cols := range []int{896, 4864} {
			nb := cols / 32
			w, x, s, s4 := legacyData(rng, k.bs, rows, nb)
			stride := nb * 34
			out := make([]float32, 8*rows)
			b.Run(fmt.Sprintf("%s/%d/x1", k.typ, cols), func(b *testing.B) {
				pairedMin(b,
					func() { k.x1AVX2(&w[0], rows, &x[0], &s[0], nb, &out[0]) },
					func() { k.x1VNNI(&w[0], rows, &x[0], &s[0], nb, &out[0]) })
			})
			b.Run(fmt.Sprintf("%s/%d/x4", k.typ, cols), func(b *testing.B) {
				pairedMin(b,
					func() { k.x4AVX2(&w[0], rows, &x[0], stride, &s4[0], nb, &out[0]) },
					func() { k.x4U(&w[0], rows, &x[0], stride, &s4[0], nb, &out[0]) })
			})
			b.Run(fmt.Sprintf("%s/%d/x8", k.typ, cols), func(b *testing.B) {
				pairedMin(b,
					func() { k.x8AVX2(&w[0], rows, &x[0], stride, &s4[0], nb, &out[0]) },
					func() { k.x8U(&w[0], rows, &x[0], stride, &s4[0], nb, &out[0]) })
			})
		}
	}
}

// useAVX2Kernels points the dispatch's kernel variables at the AVX2
// kernels and returns a function that restores them (benchmarks only,
// between MatMul calls).
func useAVX2Kernels() (restore func()) {
	l1 := []*legacyX1{&dotQ8_0x1, &dotQ4_0x1, &dotQ5_0x1}
	l4 := []*legacyX4{&dotQ8_0x4, &dotQ4_0x4, &dotQ5_0x4, &dotQ8_0x8, &dotQ4_0x8, &dotQ5_0x8}
	var s1 []legacyX1
	var s4 []legacyX4
	for _, p := range l1 {
		s1 = append(s1, *p)
	}
	for _, p := range l4 {
		s4 = append(s4, *p)
	}
	for i, f := range []legacyX1{dotQ8_0x1AVX2, dotQ4_0x1AVX2, dotQ5_0x1AVX2} {
		*l1[i] = f
	}
	for i, f := range []legacyX4{dotQ8_0x4AVX2, dotQ4_0x4AVX2, dotQ5_0x4AVX2, dotQ8_0x8AVX2, dotQ4_0x8AVX2, dotQ5_0x8AVX2} {
		*l4[i] = f
	}
	return func() {
		for i, p := range l1 {
			*p = s1[i]
		}
		for i, p := range l4 {
			*p = s4[i]
		}
	}
}

// BenchmarkMatMulVNNI runs whole MatMuls on two threads with the
// dispatch's VNNI kernels and with the AVX2 ones in turn (pairedMin):
// decode (n=1) for the legacy types (their batches go through the tile GEMM
// either way). The shape is qwen2.5-0.5b's FFN up (4864x896): 2.5-4.6 MB of
// weights, past L2.
func BenchmarkMatMulVNNI(b *testing.B) {
	skipWithoutVNNI(b)
	if !useVNNI {
		b.Skip("KVGO_NO_AVX512 is set")
	}
	p := NewPool(2)
	defer p.Close()
	cases := []struct {
		t          gguf.TensorType
		rows, cols int
		n          int
	}{
		{gguf.TypeQ8_0, 4864, 896, 1}, {gguf.TypeQ4_0, 4864, 896, 1}, {gguf.TypeQ5_0, 4864, 896, 1},
	}
	for _, c := range cases {
		m := benchMatrix(b, c.t, c.rows, c.cols)
		rng := rand.New(rand.NewPCG(9, 10))
		x := randomFloats(rng, c.n*c.cols)
		out := make([]float32, c.n*c.rows)
		scratch := make([]byte, m.ActivationBytes(c.n))
		b.Run(fmt.Sprintf("%s/%dx%d/n=%d", c.t, c.rows, c.cols, c.n), func(b *testing.B) {
			pairedMin(b,
				func() {
					restore := useAVX2Kernels()
					m.MatMul(p, out, x, c.n, scratch)
					restore()
				},
				func() { m.MatMul(p, out, x, c.n, scratch) })
		})
	}
}
