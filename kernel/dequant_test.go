package kernel

import (
	"math/rand/v2"
	"testing"
)

// TestDequantMatchesGo checks the dequantizers against plain loops on
// awkward lengths and all byte values.
func TestDequantMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 2, 4, 8, 14, 16, 24, 32, 40, 62, 64, 100, 128, 256} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.IntN(256))
		}
		s, m := float32(rng.NormFloat64()), float32(rng.NormFloat64())
		got, want := make([]float32, n), make([]float32, n)
		DequantI8(got, src, s)
		for i := range want {
			want[i] = float32(int8(src[i])) * s
		}
		checkEqual(t, "I8", n, got, want)
		DequantU8(got, src, s, m)
		for i := range want {
			want[i] = float32(src[i])*s + m
		}
		checkEqual(t, "U8", n, got, want)
		if n%2 == 0 {
			DequantU4(got, src, s, m)
			for k := 0; k < n/2; k++ {
				want[2*k] = float32(src[k]&15)*s + m
				want[2*k+1] = float32(src[k]>>4)*s + m
			}
			checkEqual(t, "U4", n, got, want)
		}
		if n%4 == 0 {
			DequantU2(got, src, s, m)
			for k := 0; k < n/4; k++ {
				for j := 0; j < 4; j++ {
					want[4*k+j] = float32(src[k]>>(2*j)&3)*s + m
				}
			}
			checkEqual(t, "U2", n, got, want)
		}
	}
}

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

func BenchmarkDequantU4(b *testing.B) {
	src := make([]byte, 64)
	dst := make([]float32, 128)
	b.SetBytes(64)
	for b.Loop() {
		DequantU4(dst, src, 0.5, 1)
	}
}
