package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkEqual allows the one rounding a fused multiply-add saves.
func checkEqual(t *testing.T, name string, n int, got, want []float32) {
	t.Helper()
	for i := range want {
		d := got[i] - want[i]
		if d < 0 {
			d = -d
		}
		a := want[i]
		if a < 0 {
			a = -a
		}
		if d > 1e-6*a+1e-6 {
			t.Fatalf("%s n=%d: value %d = %g, want %g", name, n, i, got[i], want[i])
		}
	}
}

// TestDequantBlocksMatchesGo checks the block-run decoder against the
// definition for every format, block sizes the assembly takes (multiples
// of 16) and ones it leaves to Go, and several blocks with their own
// scales and offsets.
func TestDequantBlocksMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	type format struct {
		bits   int
		signed bool
	}
	for _, f := range []format{{8, true}, {8, false}, {4, false}, {2, false}} {
		for _, bs := range []int{4, 8, 16, 32, 48, 64, 96} {
			if bs*f.bits%8 != 0 {
				continue
			}
			for _, nblk := range []int{0, 1, 3, 16} {
				bb := bs * f.bits / 8
				src := make([]byte, nblk*bb)
				for i := range src {
					src[i] = byte(rng.IntN(256))
				}
				sm := make([]float32, 2*nblk)
				for i := range sm {
					sm[i] = float32(rng.NormFloat64())
				}
				got, want := make([]float32, nblk*bs), make([]float32, nblk*bs)
				DequantBlocks(got, src, sm, bs, f.bits, f.signed)
				for b := 0; b < nblk; b++ {
					for c := 0; c < bs; c++ {
						var u float32
						switch {
						case f.bits == 8 && f.signed:
							u = float32(int8(src[b*bb+c]))
						case f.bits == 8:
							u = float32(src[b*bb+c])
						default:
							per := 8 / f.bits
							u = float32(src[b*bb+c/per] >> (f.bits * (c % per)) & (1<<f.bits - 1))
						}
						want[b*bs+c] = u*sm[2*b] + sm[2*b+1]
					}
				}
				checkEqual(t, fmt.Sprintf("blocks bits=%d signed=%v bs=%d n=%d", f.bits, f.signed, bs, nblk), nblk*bs, got, want)
			}
		}
	}
}

// BenchmarkDequantBlocks decodes a half page of a d=64 head (16 tokens,
// blocks of 32) as attention's runs do.
func BenchmarkDequantBlocks(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n, bs = 1024, 32
	for _, bits := range []int{8, 4, 2} {
		src := make([]byte, n*bits/8)
		for i := range src {
			src[i] = byte(rng.IntN(256))
		}
		sm := make([]float32, 2*n/bs)
		for i := range sm {
			sm[i] = rng.Float32()
		}
		dst := make([]float32, n)
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) {
			for b.Loop() {
				DequantBlocks(dst, src, sm, bs, bits, false)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/value")
		})
	}
}
