package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestPlanarRoundTrip packs and unpacks codes of every value at head sizes
// with full and partial 64-channel chunks, and checks the documented byte
// layout of a full chunk.
func TestPlanarRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, bits := range []int{2, 4} {
		for _, d := range []int{1, 3, 8, 31, 32, 64, 80, 128, 200} {
			codes := make([]uint8, d)
			for c := range codes {
				codes[c] = uint8(rng.IntN(1 << bits))
			}
			row := make([]byte, PlanarRowBytes(d, bits))
			if want := (d/64)*8*bits + (d%64*bits+7)/8; len(row) != want {
				t.Fatalf("bits=%d d=%d: %d row bytes, want %d", bits, d, len(row), want)
			}
			PackPlanar(row, codes, bits)
			got := make([]uint8, d)
			UnpackPlanar(got, row, bits)
			for c := range codes {
				if got[c] != codes[c] {
					t.Fatalf("bits=%d d=%d channel %d: got %d, want %d", bits, d, c, got[c], codes[c])
				}
			}
		}
	}
	// Full chunk at 4 bits: byte m = channel m | channel m+32 << 4.
	codes := make([]uint8, 64)
	codes[1], codes[33] = 5, 9
	row := make([]byte, 32)
	PackPlanar(row, codes, 4)
	if row[1] != 5|9<<4 {
		t.Fatalf("4-bit byte 1 = %#x, want %#x", row[1], 5|9<<4)
	}
	// At 2 bits: byte m = channels m, m+16, m+32, m+48.
	codes = make([]uint8, 64)
	codes[2], codes[18], codes[34], codes[50] = 1, 2, 3, 1
	row = make([]byte, 16)
	PackPlanar(row, codes, 2)
	if row[2] != 1|2<<2|3<<4|1<<6 {
		t.Fatalf("2-bit byte 2 = %#x", row[2])
	}
}

// TestQuantizeScaledI16 checks the codes against the definition and that
// the scale reconstructs each product within half a step; the assembly and
// Go paths round identically, so results must be exact.
func TestQuantizeScaledI16(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 7, 8, 9, 24, 32, 40, 64, 100, 128} {
		x, mul := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			mul[i] = float32(rng.Float64() * 0.1)
		}
		dst := make([]int16, n)
		s := QuantizeScaledI16(dst, x, mul)
		var amax float32
		for i := range x {
			amax = max(amax, float32(math.Abs(float64(x[i]*mul[i]))))
		}
		if want := amax / 32767; s != want {
			t.Fatalf("n=%d: scale %g, want %g", n, s, want)
		}
		inv := 32767 / amax
		for i := range x {
			want := int16(math.RoundToEven(float64(x[i] * mul[i] * inv)))
			if dst[i] != want {
				t.Fatalf("n=%d i=%d: code %d, want %d", n, i, dst[i], want)
			}
			if e := math.Abs(float64(dst[i])*float64(s) - float64(x[i]*mul[i])); e > 0.5001*float64(s) {
				t.Fatalf("n=%d i=%d: error %g over half a step %g", n, i, e, s)
			}
		}
	}
	// All-zero products: scale 0 and zero codes, not NaN.
	dst := []int16{1, 2, 3, 4, 5, 6, 7, 8, 9}
	if s := QuantizeScaledI16(dst, make([]float32, 9), make([]float32, 9)); s != 0 || dst[0] != 0 || dst[8] != 0 {
		t.Fatalf("zero input: scale %g, codes %v", s, dst)
	}
}

// TestQuantizeScaledI16Heads checks the many-heads call against one call
// per head, exactly, including an all-zero head.
func TestQuantizeScaledI16Heads(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, d := range []int{8, 12, 24, 40, 64, 128} {
		for _, g := range []int{1, 3, 7} {
			x, mul := make([]float32, g*d), make([]float32, d)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			for i := range mul {
				mul[i] = float32(rng.Float64())
			}
			clear(x[:d]) // head 0 is all zero
			got, want := make([]int16, g*d), make([]int16, g*d)
			for i := range got {
				got[i] = 99
			}
			gs, ws := make([]float32, g), make([]float32, g)
			QuantizeScaledI16Heads(got, x, mul, gs)
			for j := 0; j < g; j++ {
				ws[j] = QuantizeScaledI16(want[j*d:(j+1)*d], x[j*d:(j+1)*d], mul)
			}
			for j := range ws {
				if gs[j] != ws[j] {
					t.Fatalf("d=%d g=%d head %d: scale %g, want %g", d, g, j, gs[j], ws[j])
				}
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("d=%d g=%d value %d: code %d, want %d", d, g, i, got[i], want[i])
				}
			}
		}
	}
}

// TestDotsPlanar compares DotsPlanar with an int64 reference at head
// counts that do and do not fill the four-head kernel, extreme codes and
// queries (saturation would show), and head sizes the assembly takes
// (multiples of 32: whole 64-channel chunks, a half chunk alone, or both)
// and the ones it leaves to Go.
func TestDotsPlanar(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, bits := range []int{2, 4} {
		for _, d := range []int{8, 32, 48, 64, 96, 128, 192} {
			for _, g := range []int{1, 2, 3, 4, 6, 7, 9} {
				for _, n := range []int{1, 5, 32} {
					t.Run(fmt.Sprintf("b%d/d%d/g%d/n%d", bits, d, g, n), func(t *testing.T) {
						checkDotsPlanar(t, rng, bits, d, g, n)
					})
				}
			}
		}
	}
}

func checkDotsPlanar(t *testing.T, rng *rand.Rand, bits, d, g, n int) {
	rb := PlanarRowBytes(d, bits)
	codes := make([]byte, n*rb)
	u := make([][]uint8, n)
	top := uint8(1)<<bits - 1
	for i := range u {
		u[i] = make([]uint8, d)
		for c := range u[i] {
			u[i][c] = uint8(rng.IntN(int(top) + 1))
			if i == 0 {
				u[i][c] = top // the largest products of the format
			}
		}
		PackPlanar(codes[i*rb:(i+1)*rb], u[i], bits)
	}
	q := make([]int16, g*d)
	for k := range q {
		q[k] = int16(rng.IntN(65535) - 32767)
		if k < d {
			q[k] = 32767
		}
		if k >= d && k < 2*d {
			q[k] = -32767
		}
	}
	scale, bias := make([]float32, g), make([]float32, g)
	for j := range scale {
		scale[j] = float32(rng.Float64() * 0.01)
		bias[j] = float32(rng.NormFloat64())
	}
	out := make([]float32, g*n)
	DotsPlanar(out, q, scale, bias, g, codes, bits, d)
	for j := 0; j < g; j++ {
		for i := 0; i < n; i++ {
			var s int64
			for c := 0; c < d; c++ {
				s += int64(u[i][c]) * int64(q[j*d+c])
			}
			want := float32(float32(s)*scale[j]) + bias[j]
			if out[j*n+i] != want {
				t.Fatalf("head %d row %d: %g, want %g", j, i, out[j*n+i], want)
			}
		}
	}
}

func BenchmarkDotsPlanar(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const d, n = 128, 32
	for _, bits := range []int{2, 4} {
		for _, g := range []int{1, 4, 7} {
			rb := PlanarRowBytes(d, bits)
			codes := make([]byte, n*rb)
			for i := range codes {
				codes[i] = byte(rng.IntN(256))
			}
			q := make([]int16, g*d)
			for i := range q {
				q[i] = int16(rng.IntN(65535) - 32767)
			}
			sc, bi := make([]float32, g), make([]float32, g)
			out := make([]float32, g*n)
			b.Run(fmt.Sprintf("bits=%d/g=%d", bits, g), func(b *testing.B) {
				for b.Loop() {
					DotsPlanar(out, q, sc, bi, g, codes, bits, d)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*g), "ns/token-head")
			})
		}
	}
}

// BenchmarkQuantizeScaledI16Heads is the per-page query preparation of a
// KIVI key page: 7 heads of d values with the page's scales folded in.
func BenchmarkQuantizeScaledI16Heads(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	const g = 7
	for _, d := range []int{64, 128} {
		x, mul := make([]float32, g*d), make([]float32, d)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for i := range mul {
			mul[i] = float32(rng.ExpFloat64())
		}
		dst, sc := make([]int16, g*d), make([]float32, g)
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			for b.Loop() {
				QuantizeScaledI16Heads(dst, x, mul, sc)
			}
		})
	}
}
