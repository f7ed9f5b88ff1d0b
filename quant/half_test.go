package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// halfValue decodes a binary16 with plain float64 arithmetic, independently
// of F16ToF32's bit manipulation.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	case 0:
		return sign * math.Ldexp(mant, -24)
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func TestF16ToF32Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := F16ToF32(h)
		want := halfValue(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestF16RoundTripExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToF32(h)
		back := F32ToF16(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 { // NaN
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 || back&0x8000 != h&0x8000 {
				t.Fatalf("NaN %#04x -> %v -> %#04x, want a NaN of the same sign", h, f, back)
			}
			if back&0x200 == 0 {
				t.Fatalf("NaN %#04x -> %#04x is not quiet", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
}

// TestF32ToF16Ties checks round-half-to-even at every midpoint between two
// adjacent finite halves (the midpoint needs 12 significant bits, so it is
// exact in float32), and that values just off the midpoint round to the
// nearer neighbour.
func TestF32ToF16Ties(t *testing.T) {
	for i := 0; i < 0x7bff; i++ {
		lo, hi := uint16(i), uint16(i+1)
		mid := float32((halfValue(lo) + halfValue(hi)) / 2)
		if float64(mid) != (halfValue(lo)+halfValue(hi))/2 {
			t.Fatalf("midpoint of %#04x not exact in float32", lo)
		}
		even := lo
		if lo&1 == 1 {
			even = hi
		}
		for _, sign := range []uint16{0, 0x8000} {
			m := mid
			if sign != 0 {
				m = -mid
			}
			if got := F32ToF16(m); got != even|sign {
				t.Fatalf("F32ToF16(%g) = %#04x, want %#04x (ties to even)", m, got, even|sign)
			}
			below := math.Nextafter32(m, 0)
			above := math.Nextafter32(m, 2*m) // away from zero
			if got := F32ToF16(below); got != lo|sign {
				t.Fatalf("F32ToF16(%g) = %#04x, want %#04x", below, got, lo|sign)
			}
			if got := F32ToF16(above); got != hi|sign {
				t.Fatalf("F32ToF16(%g) = %#04x, want %#04x", above, got, hi|sign)
			}
		}
	}
}

func TestF32ToF16Cases(t *testing.T) {
	inf := float32(math.Inf(1))
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                       // largest finite half
		{65519.996, 0x7bff},                   // just below the rounding boundary
		{65520, 0x7c00},                       // midpoint to "65536" rounds to even = Inf
		{1e6, 0x7c00},                         // overflow
		{-1e6, 0xfc00},                        // negative overflow
		{inf, 0x7c00},                         // Inf
		{-inf, 0xfc00},                        // -Inf
		{0x1p-14, 0x0400},                     // smallest normal
		{0x1p-24, 0x0001},                     // smallest subnormal
		{0x1p-25, 0x0000},                     // half of it: tie, rounds to even 0
		{0x1.000002p-25, 0x0001},              // just above the tie
		{0x3p-25, 0x0002},                     // 1.5 units: tie, rounds to even 2
		{0x1.ff8p-15, 0x03ff},                 // largest subnormal
		{0x1.ffcp-15, 0x0400},                 // + half unit: tie, rounds to even (smallest normal)
		{1e-10, 0x0000},                       // underflow
		{float32(math.Float32frombits(1)), 0}, // float32 subnormal
		{1 + 0x1p-11, 0x3c00},                 // tie between 1 and 1+2^-10 -> even (1)
		{1 + 0x3p-11, 0x3c02},                 // tie -> even (1+2^-9)
	}
	for _, tc := range tests {
		if got := F32ToF16(tc.in); got != tc.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
	// NaN payloads: the top mantissa bits survive and the quiet bit is set.
	for _, bits := range []uint32{0x7fc00000, 0x7f800001, 0xffa00000, 0x7fbfe000} {
		h := F32ToF16(math.Float32frombits(bits))
		want := uint16(bits>>16)&0x8000 | 0x7e00 | uint16(bits>>13)&0x3ff
		if h != want {
			t.Errorf("F32ToF16(NaN %#08x) = %#04x, want %#04x", bits, h, want)
		}
	}
}

// TestF32ToF16Nearest checks random float32s against the definition: the
// result is a nearest half (ties to even), computed by brute force from the
// neighbouring halves.
func TestF32ToF16Nearest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		// exponents around the half range, including subnormals and overflow
		f := float32(math.Ldexp(r.Float64()*2-1, r.IntN(46)-28))
		h := F32ToF16(f)
		v := halfValue(h)
		if math.Abs(float64(f)) >= 65520 {
			if !math.IsInf(v, 0) {
				t.Fatalf("F32ToF16(%g) = %#04x, want Inf", f, h)
			}
			continue
		}
		d := math.Abs(v - float64(f))
		for _, nb := range []uint16{h - 1, h + 1} {
			if nb&0x7fff > 0x7bff { // skip Inf/NaN neighbours
				continue
			}
			dn := math.Abs(halfValue(nb) - float64(f))
			if dn < d || (dn == d && h&1 == 1) {
				t.Fatalf("F32ToF16(%g) = %#04x (%g), but %#04x (%g) is nearer or even", f, h, v, nb, halfValue(nb))
			}
		}
	}
}

func TestBF16(t *testing.T) {
	// Every non-NaN bfloat16 survives the round trip through float32.
	for i := range 1 << 16 {
		b := uint16(i)
		f := BF16ToF32(b)
		if math.Float32bits(f) != uint32(b)<<16 {
			t.Fatalf("BF16ToF32(%#04x) bits = %#08x", b, math.Float32bits(f))
		}
		back := F32ToBF16(f)
		if math.IsNaN(float64(f)) {
			if back&0x7f80 != 0x7f80 || back&0x7f == 0 || back&0x40 == 0 {
				t.Fatalf("NaN %#04x -> %#04x, want a quiet NaN", b, back)
			}
			continue
		}
		if back != b {
			t.Fatalf("%#04x -> %v -> %#04x", b, f, back)
		}
	}
	tests := []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up to even
		{0x3f808001, 0x3f81}, // just above the tie
		{0x3f807fff, 0x3f80}, // just below the tie
		{0xbf818000, 0xbf82}, // negative tie rounds away from zero to even
		{0x3fff8000, 0x4000}, // tie carries into the exponent
		{0x3dcccccd, 0x3dcd}, // 0.1
		{0xc0490fdb, 0xc049}, // -pi
		{0x00000000, 0x0000}, // +0
		{0x80000000, 0x8000}, // -0
		{0x00418000, 0x0042}, // subnormal tie, odd -> even
		{0x007fffff, 0x0080}, // largest subnormal rounds to smallest normal
		{0x7f7f7fff, 0x7f7f}, // below the top tie
		{0x7f7f8000, 0x7f80}, // top tie, odd -> Inf
		{0xff7fffff, 0xff80}, // negative max float rounds to -Inf
		{0x7f800000, 0x7f80}, // Inf
		{0xff800000, 0xff80}, // -Inf
		{0x7f800001, 0x7fc0}, // signalling NaN, low payload: forced quiet, not Inf
		{0x7fa00000, 0x7fe0}, // payload kept, quiet bit set
		{0xff810000, 0xffc1}, // negative NaN
		{0x7fffffff, 0x7fff}, // NaN is truncated, never rounded
	}
	for _, tc := range tests {
		if got := F32ToBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

// TestF32ToBF16Nearest checks random finite float32s against the
// definition of round-to-nearest-even on the top 16 bits.
func TestF32ToBF16Nearest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		f := math.Float32frombits(r.Uint32())
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		b := F32ToBF16(f)
		lo := math.Float32bits(f) &^ 0xffff // truncation toward zero
		cands := []uint16{uint16(lo >> 16), uint16(lo>>16) + 1}
		best, bestD := cands[0], math.Inf(1)
		for _, c := range cands {
			v := float64(BF16ToF32(c))
			if c&0x7f80 == 0x7f80 && c&0x7f == 0 {
				// rounding up to Inf: compare against 2^128 for distance
				v = math.Copysign(math.Ldexp(1, 128), v)
			}
			d := math.Abs(v - float64(f))
			if d < bestD || (d == bestD && c&1 == 0) {
				best, bestD = c, d
			}
		}
		if b != best {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(f), b, best)
		}
	}
}

// TestF32ToF16Outward checks the outward roundings against their
// definition on random float32s across the half range (subnormals and
// overflow included) and on every half value: F32ToF16Down(f) is a half
// at most f whose successor exceeds f, F32ToF16Up(f) one at least f whose
// predecessor is below f; both are f itself when f is a half.
func TestF32ToF16Outward(t *testing.T) {
	check := func(f float32) {
		d, u := F32ToF16Down(f), F32ToF16Up(f)
		vd, vu := float64(F16ToF32(d)), float64(F16ToF32(u))
		x := float64(f)
		if vd > x || vu < x {
			t.Fatalf("f = %g: Down %#04x (%g), Up %#04x (%g) do not enclose it", f, d, vd, u, vu)
		}
		if vd == vu {
			return // f is a half
		}
		if f16Next(d) != u || f16Prev(u) != d {
			t.Fatalf("f = %g: Down %#04x (%g) and Up %#04x (%g) are not neighbours", f, d, vd, u, vu)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		check(float32(math.Ldexp(r.Float64()*2-1, r.IntN(46)-28)))
	}
	for i := range 1 << 16 {
		h := uint16(i)
		if h&0x7c00 == 0x7c00 { // Inf and NaN
			continue
		}
		v := F16ToF32(h)
		check(v)
		check(math.Nextafter32(v, float32(math.Inf(1))))
		check(math.Nextafter32(v, float32(math.Inf(-1))))
	}
	for _, f := range []float32{65504, 65505, 65520, 1e6, -65505, -1e6, float32(math.Inf(1)), float32(math.Inf(-1))} {
		check(f)
	}
	if h := F32ToF16Up(float32(math.NaN())); F16ToF32(h) == F16ToF32(h) {
		t.Fatalf("F32ToF16Up(NaN) = %#04x, not a NaN", h)
	}
}
