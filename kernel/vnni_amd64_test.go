//go:build !kvgo_generic

package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

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
}

var legacyPairs = []legacyKernels{
	{gguf.TypeQ8_0, 34, dotQ8_0x1AVX2, dotQ8_0x1VNNI, dotQ8_0x4AVX2, dotQ8_0x4VNNI, dotQ8_0x8AVX2, dotQ8_0x8VNNI},
	{gguf.TypeQ4_0, 18, dotQ4_0x1AVX2, dotQ4_0x1VNNI, dotQ4_0x4AVX2, dotQ4_0x4VNNI, dotQ4_0x8AVX2, dotQ4_0x8VNNI},
	{gguf.TypeQ5_0, 22, dotQ5_0x1AVX2, dotQ5_0x1VNNI, dotQ5_0x4AVX2, dotQ5_0x4VNNI, dotQ5_0x8AVX2, dotQ5_0x8VNNI},
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
					}
				})
			}
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

// BenchmarkLegacyVNNI runs the AVX2 and VNNI kernels alternately on one
// cache tile of 64 weight rows (qwen2.5-0.5b's widths: 896 for attention
// and FFN up/gate, 4864 for FFN down), weights in cache: the kernels' own
// speed. Compare avx2 and vnni of the same line; GMAC/s counts
// multiply-adds per second.
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
			for _, n := range []int{1, 4, 8} {
				for _, impl := range []string{"avx2", "vnni"} {
					b.Run(fmt.Sprintf("%s/%d/x%d/%s", k.typ, cols, n, impl), func(b *testing.B) {
						x1, x4, x8 := k.x1AVX2, k.x4AVX2, k.x8AVX2
						if impl == "vnni" {
							x1, x4, x8 = k.x1VNNI, k.x4VNNI, k.x8VNNI
						}
						for b.Loop() {
							switch n {
							case 1:
								x1(&w[0], rows, &x[0], &s[0], nb, &out[0])
							case 4:
								x4(&w[0], rows, &x[0], stride, &s4[0], nb, &out[0])
							default:
								x8(&w[0], rows, &x[0], stride, &s4[0], nb, &out[0])
							}
						}
						b.ReportMetric(float64(n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
					})
				}
			}
		}
	}
}
