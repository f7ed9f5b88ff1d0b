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
		for _, bs := range []int{4, 8, 16, 32, 64} {
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
