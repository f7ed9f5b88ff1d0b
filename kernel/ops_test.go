package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/quant"
)

// awkwardLens are vector lengths around the vector widths (8, and 32 per
// unrolled iteration) and typical head sizes.
var awkwardLens = []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 259}

func randomHalves(rng *rand.Rand, n int) ([]uint16, []float32) {
	h := make([]uint16, n)
	f := make([]float32, n)
	for i := range h {
		h[i] = quant.F32ToF16(float32(rng.NormFloat64()))
		f[i] = quant.F16ToF32(h[i])
	}
	return h, f
}

// near reports whether got is within a summation-order rounding error of
// want, whose terms had absolute sum mag.
func near(got, want, mag float64) bool {
	return math.Abs(got-want) <= 1e-5*mag+1e-6
}

func dot64(a, b []float32) (s, mag float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		s += p
		mag += math.Abs(p)
	}
	return s, mag
}

func TestDots(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, n := range awkwardLens {
		for _, rows := range []int{1, 3} {
			t.Run(fmt.Sprintf("n=%d/rows=%d", n, rows), func(t *testing.T) {
				stride := n + 3
				q := randomFloats(rng, n)
				k := randomFloats(rng, rows*stride)
				kh, kf := randomHalves(rng, rows*stride)
				got, gotH := make([]float32, rows), make([]float32, rows)
				Dots(got, q, k, stride)
				DotsF16(gotH, q, kh, stride)
				for r := range rows {
					want, mag := dot64(q, k[r*stride:r*stride+n])
					if !near(float64(got[r]), want, mag) {
						t.Errorf("Dots row %d = %g, want %g", r, got[r], want)
					}
					if d := Dot(q, k[r*stride:r*stride+n]); !near(float64(d), want, mag) {
						t.Errorf("Dot row %d = %g, want %g", r, d, want)
					}
					want, mag = dot64(q, kf[r*stride:r*stride+n])
					if !near(float64(gotH[r]), want, mag) {
						t.Errorf("DotsF16 row %d = %g, want %g", r, gotH[r], want)
					}
					if d := DotF16(q, kh[r*stride:r*stride+n]); !near(float64(d), want, mag) {
						t.Errorf("DotF16 row %d = %g, want %g", r, d, want)
					}
				}
			})
		}
	}
}

func TestAXPYAndWeightedSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	for _, n := range awkwardLens {
		for _, rows := range []int{0, 1, 5} {
			t.Run(fmt.Sprintf("n=%d/rows=%d", n, rows), func(t *testing.T) {
				stride := n + 5
				y0 := randomFloats(rng, n)
				p := randomFloats(rng, rows)
				if rows > 2 {
					p[1] = 0 // skipped: its value row holds an Inf
				}
				v := randomFloats(rng, rows*stride)
				vh, vf := randomHalves(rng, rows*stride)
				if rows > 2 && n > 0 {
					v[stride] = float32(math.Inf(1))
					vh[stride] = 0x7c00
					vf[stride] = float32(math.Inf(1))
				}
				want, wantH := make([]float64, n), make([]float64, n)
				mag, magH := make([]float64, n), make([]float64, n)
				for i := range n {
					want[i], wantH[i] = float64(y0[i]), float64(y0[i])
					mag[i], magH[i] = math.Abs(want[i]), math.Abs(want[i])
					for r := range rows {
						if p[r] == 0 {
							continue
						}
						a, ah := float64(p[r])*float64(v[r*stride+i]), float64(p[r])*float64(vf[r*stride+i])
						want[i] += a
						wantH[i] += ah
						mag[i] += math.Abs(a)
						magH[i] += math.Abs(ah)
					}
				}
				y, yh := append([]float32(nil), y0...), append([]float32(nil), y0...)
				WeightedSum(y, p, v, stride)
				WeightedSumF16(yh, p, vh, stride)
				ya, yah := append([]float32(nil), y0...), append([]float32(nil), y0...)
				for r := range rows {
					if p[r] != 0 {
						AXPY(ya, p[r], v[r*stride:r*stride+n])
						AXPYF16(yah, p[r], vh[r*stride:r*stride+n])
					}
				}
				for i := range n {
					for _, c := range []struct {
						name      string
						got       float32
						want, mag float64
					}{
						{"WeightedSum", y[i], want[i], mag[i]},
						{"WeightedSumF16", yh[i], wantH[i], magH[i]},
						{"AXPY", ya[i], want[i], mag[i]},
						{"AXPYF16", yah[i], wantH[i], magH[i]},
					} {
						if !near(float64(c.got), c.want, c.mag) {
							t.Errorf("%s[%d] = %g, want %g", c.name, i, c.got, c.want)
						}
					}
				}
			})
		}
	}
}

func TestHalfConversions(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for _, n := range awkwardLens {
		x := randomFloats(rng, n)
		for i := range x {
			switch rng.IntN(8) {
			case 0:
				x[i] *= 1e-6 // subnormal halves
			case 1:
				x[i] *= 1e5 // overflow to Inf
			}
		}
		if n > 2 {
			x[0] = float32(math.NaN())
			x[1] = float32(math.Inf(-1))
		}
		h := make([]uint16, n)
		ToF16(h, x)
		back := make([]float32, n)
		FromF16(back, h)
		for i := range x {
			if want := quant.F32ToF16(x[i]); h[i] != want {
				t.Errorf("n=%d: ToF16(%g) = %#04x, want %#04x", n, x[i], h[i], want)
			}
			if want := quant.F16ToF32(h[i]); math.Float32bits(back[i]) != math.Float32bits(want) {
				t.Errorf("n=%d: FromF16(%#04x) = %g, want %g", n, h[i], back[i], want)
			}
		}
	}
}

// relNear reports whether got is within rel of want, relatively.
func relNear(got, want float64, rel float64) bool {
	if math.IsInf(want, 0) || math.IsNaN(want) {
		return got == want || (math.IsNaN(got) && math.IsNaN(want))
	}
	return math.Abs(got-want) <= rel*math.Abs(want)+1e-38
}

func TestRMSNormAddScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	for _, n := range awkwardLens[1:] {
		x, w := randomFloats(rng, n), randomFloats(rng, n)
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		scale := 1 / math.Sqrt(ss/float64(n)+1e-6)
		out := make([]float32, n)
		RMSNorm(out, x, w, 1e-6)
		for i := range x {
			if want := float64(x[i]) * scale * float64(w[i]); !relNear(float64(out[i]), want, 1e-6) {
				t.Errorf("n=%d: RMSNorm[%d] = %g, want %g", n, i, out[i], want)
			}
		}
		y := append([]float32(nil), x...)
		Add(y, w)
		Scale(y, 0.5)
		for i := range x {
			if want := (x[i] + w[i]) * 0.5; y[i] != want {
				t.Errorf("n=%d: (x+w)/2 [%d] = %g, want %g", n, i, y[i], want)
			}
		}
	}
}

func TestSoftmaxAndSwiGLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 17))
	special := []float32{float32(math.Inf(-1)), -200, -104, -87.5, -87.3, -86, -30, -1e-3, 0, 1e-3, 10, 80, 88}
	for _, n := range awkwardLens[1:] {
		x := randomFloats(rng, n)
		for i := range x {
			x[i] *= 4
		}
		if n > 3 {
			x[1] = float32(math.Inf(-1)) // a masked position
		}
		p := append([]float32(nil), x...)
		Softmax(p)
		m := math.Inf(-1)
		for _, v := range x {
			m = math.Max(m, float64(v))
		}
		// x-m is rounded to float32 first, as Softmax does.
		var sum float64
		for _, v := range x {
			sum += math.Exp(float64(v - float32(m)))
		}
		for i := range x {
			if want := math.Exp(float64(x[i]-float32(m))) / sum; !relNear(float64(p[i]), want, 1e-6) {
				t.Errorf("n=%d: softmax[%d] of %g = %g, want %g", n, i, x[i], p[i], want)
			}
		}

		g, u := randomFloats(rng, n), randomFloats(rng, n)
		copy(g, special[:min(n, len(special))])
		g[0] *= -1 // -Inf into +Inf
		got := append([]float32(nil), g...)
		SwiGLU(got, u)
		for i := range g {
			xv := float64(g[i])
			want := xv / (1 + math.Exp(-xv)) * float64(u[i])
			if math.IsInf(xv, 1) {
				want = math.Inf(1) * float64(u[i])
			}
			if !relNear(float64(got[i]), want, 1e-6) {
				t.Errorf("n=%d: swiglu(%g, %g) = %g, want %g", n, g[i], u[i], got[i], want)
			}
		}
	}
}

// TestExpEdges checks the AVX2 exponential where it leaves the polynomial:
// underflow to 0, overflow to +Inf, and values around them.
func TestExpEdges(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	x := []float32{float32(math.Inf(-1)), -1000, -88, -87.33, -87, -50, -1, -0.3466, 0, 0.3466, 1, 20, 88, 88.7, 89, float32(math.Inf(1))}
	for len(x)%8 != 0 {
		x = append(x, 0)
	}
	got := append([]float32(nil), x...)
	sum := expSubAVX2(&got[0], 0, len(got))
	var want64 float64
	for i, v := range x {
		want := float32(math.Exp(float64(v)))
		want64 += float64(got[i])
		ok := relNear(float64(got[i]), float64(want), 2.5e-7)
		if v < -87.3365 {
			ok = got[i] == 0
		}
		if !ok {
			t.Errorf("exp(%g) = %g, want %g", v, got[i], want)
		}
	}
	if sum != want64 && !(math.IsInf(sum, 1) && math.IsInf(want64, 1)) {
		t.Errorf("sum %g, want %g", sum, want64)
	}
}

func TestDotsGroup(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 19))
	for _, d := range []int{1, 7, 64, 100} {
		for _, g := range []int{1, 3, 4, 7, 9} {
			for _, n := range []int{1, 5, 33} {
				stride := 2*d + 1
				q := randomFloats(rng, g*d)
				k := randomFloats(rng, (n-1)*stride+d)
				kh, kf := randomHalves(rng, (n-1)*stride+d)
				out, outH := make([]float32, g*n), make([]float32, g*n)
				DotsGroup(out, q, g, k, stride)
				DotsF16Group(outH, q, g, kh, stride)
				for j := range g {
					for i := range n {
						want, mag := dot64(q[j*d:(j+1)*d], k[i*stride:i*stride+d])
						if !near(float64(out[j*n+i]), want, mag) {
							t.Fatalf("d=%d g=%d n=%d: DotsGroup[%d][%d] = %g, want %g", d, g, n, j, i, out[j*n+i], want)
						}
						want, mag = dot64(q[j*d:(j+1)*d], kf[i*stride:i*stride+d])
						if !near(float64(outH[j*n+i]), want, mag) {
							t.Fatalf("d=%d g=%d n=%d: DotsF16Group[%d][%d] = %g, want %g", d, g, n, j, i, outH[j*n+i], want)
						}
					}
				}
			}
		}
	}
}

// TestSoftmaxSkipsNaNInMax checks that the maximum Softmax subtracts
// ignores NaN entries on every path, as the Go loop does.
func TestSoftmaxMaxIgnoresNaN(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	x := make([]float32, 24)
	for i := range x {
		x[i] = float32(i)
	}
	x[23], x[7] = float32(math.NaN()), float32(math.NaN())
	if m := maxAVX2(&x[0], 24); m != 22 {
		t.Errorf("max = %g, want 22", m)
	}
}

func TestExpShift(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 31, 100} {
		x := make([]float32, n)
		want := make([]float64, n)
		m := float32(3)
		var wsum float64
		for i := range x {
			x[i] = float32(i%13)*0.37 - 2
			if i%11 == 5 {
				x[i] = float32(math.Inf(-1))
			}
			if i%17 == 3 {
				x[i] = -80 - float32(i%5)*4 // around and below ln(FLT_MIN) after the shift
			}
			want[i] = math.Exp(float64(x[i]) - float64(m))
			wsum += want[i]
		}
		sum := ExpShift(x, m)
		for i := range x {
			if math.Abs(float64(x[i])-want[i]) > 1e-6*want[i]+1e-30 {
				t.Fatalf("n=%d: e[%d] = %g, want %g", n, i, x[i], want[i])
			}
		}
		if math.Abs(float64(sum)-wsum) > 1e-5*wsum+1e-30 {
			t.Errorf("n=%d: sum %g, want %g", n, sum, wsum)
		}
	}
}

// TestDotsGroupKeepsStackBuffers checks that DotsGroup does not make a
// caller's stack scratch escape (it allocated when it took closures).
func TestDotsGroupKeepsStackBuffers(t *testing.T) {
	q := make([]float32, 7*64)
	allocs := testing.AllocsPerRun(50, func() {
		var keys [8 * 64]float32
		var out [7 * 8]float32
		DotsGroup(out[:], q, 7, keys[:], 64)
	})
	if allocs != 0 {
		t.Errorf("DotsGroup with stack buffers allocates %.0f times", allocs)
	}
}

// TestGroupedToAndHeads checks DotsGroupTo against Dots per head (to
// float32 summation order) and WeightedSumHeads against WeightedSum per
// head (exactly, and WeightedSumHeadsF16 against WeightedSumF16), with a
// row stride larger than the run, at head counts that do and do not fill
// the four-head (scores) and three-head (sums) kernels. Row 1 has weight
// zero in every head and a non-finite value, as a masked token may: it
// must not reach the sums.
func TestGroupedToAndHeads(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, d := range []int{8, 12, 40, 64, 96} {
		for _, g := range []int{1, 2, 3, 4, 6, 7} {
			const n, ldo = 5, 9
			q := randomFloats(rng, g*d)
			k := randomFloats(rng, n*d)
			out := make([]float32, g*ldo)
			DotsGroupTo(out, ldo, q, g, k, d, n)
			for j := 0; j < g; j++ {
				ref := make([]float32, n)
				Dots(ref, q[j*d:(j+1)*d], k, d)
				for i := 0; i < n; i++ {
					// The four-head kernel sums in another order than Dots.
					if e := math.Abs(float64(out[j*ldo+i] - ref[i])); e > 1e-5*(1+math.Abs(float64(ref[i]))) {
						t.Fatalf("d=%d g=%d: score [%d,%d] = %g, want %g", d, g, j, i, out[j*ldo+i], ref[i])
					}
				}
				for i := n; i < ldo; i++ {
					if out[j*ldo+i] != 0 {
						t.Fatalf("d=%d g=%d: wrote outside the run at [%d,%d]", d, g, j, i)
					}
				}
			}
			p := randomFloats(rng, g*ldo)
			p[0] = 0 // one head's zero on a row the others use
			for j := 0; j < g; j++ {
				p[j*ldo+1] = 0
			}
			k[d+2] = float32(math.NaN())
			kh := make([]uint16, len(k))
			ToF16(kh, k)
			got := randomFloats(rng, g*d)
			gotH := append([]float32(nil), got...)
			want := append([]float32(nil), got...)
			wantH := append([]float32(nil), got...)
			WeightedSumHeads(got, p, ldo, g, k, d)
			WeightedSumHeadsF16(gotH, p, ldo, g, kh, d)
			for j := 0; j < g; j++ {
				WeightedSum(want[j*d:(j+1)*d], p[j*ldo:j*ldo+n], k, d)
				WeightedSumF16(wantH[j*d:(j+1)*d], p[j*ldo:j*ldo+n], kh, d)
			}
			for i := range want {
				if got[i] != want[i] || gotH[i] != wantH[i] || got[i] != got[i] {
					t.Fatalf("d=%d g=%d: sum[%d] = %g (f16 %g), want %g (%g)", d, g, i, got[i], gotH[i], want[i], wantH[i])
				}
			}
		}
	}
}
