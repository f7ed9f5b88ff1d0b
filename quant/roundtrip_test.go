package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// roundTripBound is the largest |x - Dequantize(Quantize(x))| allowed, as
// a fraction of the largest |x| in the same block (super-block for
// K-quants), plus absSlack for scales that underflow to f16 subnormals.
//
// The legacy bounds follow from the formulas: Q4_0 and Q5_0 map the signed
// extreme to -8d (-16d) and clamp the opposite extreme at 7d (15d), so the
// worst error is d = max/8 (max/16); Q4_1 and Q5_1 err by at most half a step
// of (max-min)/15 (/31) <= 2*max/15 (/31); Q8 types by half a step of max/127.
// The f16 rounding of the scales adds at most ~2^-11 relative. The K-quant
// bounds are empirical (the scale search has no simple worst case), with
// margin over the worst error observed on the test data sets.
var roundTripBound = map[gguf.TensorType]float64{
	gguf.TypeF32:  0,
	gguf.TypeF16:  1.0 / 2048, // half an ulp of the 11-bit significand
	gguf.TypeBF16: 1.0 / 256,  // half an ulp of the 8-bit significand
	gguf.TypeQ4_0: 0.13,
	gguf.TypeQ4_1: 0.07,
	gguf.TypeQ5_0: 0.065,
	gguf.TypeQ5_1: 0.035,
	gguf.TypeQ8_0: 0.005,
	gguf.TypeQ8_1: 0.005,
	gguf.TypeQ2_K: 0.5,
	gguf.TypeQ3_K: 0.3,
	gguf.TypeQ4_K: 0.15,
	gguf.TypeQ5_K: 0.1,
	gguf.TypeQ6_K: 0.07,
	gguf.TypeQ8_K: 0.004,
}

// rmseBound is the largest relative RMS error sqrt(sum e^2 / sum x^2)
// allowed on Gaussian data. Measured values (this implementation, seed
// fixed below) are in the comments; a broken scale search shows up here
// long before it breaks the max-error bound.
var rmseBound = map[gguf.TensorType]float64{
	gguf.TypeF32:  0,
	gguf.TypeF16:  0.0003,
	gguf.TypeBF16: 0.0025,
	gguf.TypeQ4_0: 0.095, // 0.085
	gguf.TypeQ4_1: 0.085, // 0.077
	gguf.TypeQ5_0: 0.047, // 0.042
	gguf.TypeQ5_1: 0.042, // 0.037
	gguf.TypeQ8_0: 0.006, // 0.0053
	gguf.TypeQ8_1: 0.006, // 0.0053
	gguf.TypeQ2_K: 0.32,  // 0.296
	gguf.TypeQ3_K: 0.165, // 0.150
	gguf.TypeQ4_K: 0.078, // 0.0705
	gguf.TypeQ5_K: 0.040, // 0.036
	gguf.TypeQ6_K: 0.020, // 0.0176
	gguf.TypeQ8_K: 0.008, // 0.0069
}

// absSlack covers blocks whose f16 scales are subnormal or underflow: the
// f16 grid step there is 2^-24, and a scale error is multiplied by at most
// the largest (sub-block scale x quant) product of the type. Only blocks
// with tiny values (max |x| around 1e-4 or less) come near it.
func absSlack(typ gguf.TensorType) float64 {
	mult := map[gguf.TensorType]float64{
		gguf.TypeQ4_0: 16, gguf.TypeQ4_1: 16, gguf.TypeQ5_0: 32, gguf.TypeQ5_1: 32,
		gguf.TypeQ8_0: 128, gguf.TypeQ8_1: 128, gguf.TypeQ8_K: 0,
		gguf.TypeQ2_K: 15 * 4, gguf.TypeQ3_K: 32 * 4, gguf.TypeQ4_K: 64 * 16,
		gguf.TypeQ5_K: 64 * 32, gguf.TypeQ6_K: 128 * 32,
	}[typ]
	return mult * 0x1p-24
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, typ := range allTypes {
		be := typ.BlockElems()
		for _, n := range []int{be, 3 * be, 8 * be, 2048} {
			for _, ds := range datasets {
				t.Run(fmt.Sprintf("%s/%d/%s", typ, n, ds.name), func(t *testing.T) {
					x := ds.gen(r, n)
					y := dequantize(t, typ, quantize(t, typ, x), n)
					bound := roundTripBound[typ]
					for b0 := 0; b0 < n; b0 += be {
						blk := x[b0 : b0+be]
						amax := absMax64(blk)
						for i := range blk {
							e := math.Abs(float64(blk[i]) - float64(y[b0+i]))
							lim := bound*amax + absSlack(typ)
							if typ == gguf.TypeF32 {
								lim = 0
							}
							if typ == gguf.TypeF16 || typ == gguf.TypeBF16 {
								// element-relative, plus f16's subnormal step
								lim = bound*math.Abs(float64(blk[i])) + 0x1p-25
							}
							if !(e <= lim) {
								t.Fatalf("element %d: x=%g got %g, error %g > bound %g (block max %g)",
									b0+i, blk[i], y[b0+i], e, lim, amax)
							}
						}
						if amax == 0 {
							for i := range blk {
								if y[b0+i] != 0 {
									t.Fatalf("all-zero block at %d decodes to %g", b0, y[b0+i])
								}
							}
						}
					}
				})
			}
		}
	}
}

func TestRoundTripRMSE(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			n := 256 * 64
			x := datasets[0].gen(r, n) // gauss
			y := dequantize(t, typ, quantize(t, typ, x), n)
			var se, sx float64
			for i := range x {
				d := float64(x[i]) - float64(y[i])
				se += d * d
				sx += float64(x[i]) * float64(x[i])
			}
			rmse := math.Sqrt(se / sx)
			t.Logf("relative RMSE %.4f", rmse)
			if rmse > rmseBound[typ] {
				t.Errorf("relative RMSE %.4f > bound %.4f", rmse, rmseBound[typ])
			}
		})
	}
}

// TestExactGrid feeds values that lie exactly on a type's grid and expects
// them back unchanged: the quantizers must find the obvious scale.
func TestExactGrid(t *testing.T) {
	grid := func(n int, f func(i int) float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	tests := []struct {
		typ gguf.TensorType
		x   []float32
	}{
		// Q4_0: the extreme -8d sits at -4, everything else on (q-8)*0.5.
		{gguf.TypeQ4_0, grid(64, func(i int) float32 {
			if i%32 == 5 {
				return -4
			}
			return float32(i%16-8) * 0.5
		})},
		// Q5_0: extreme -16d = 8 with d = -0.5.
		{gguf.TypeQ5_0, grid(64, func(i int) float32 {
			if i%32 == 3 {
				return 8
			}
			return float32(i%32-16) * -0.5
		})},
		// Q4_1: min -1, max 2.75, step 0.25 (15 steps).
		{gguf.TypeQ4_1, grid(32, func(i int) float32 { return -1 + 0.25*float32(i%16) })},
		// Q5_1: min 3, 31 steps of 0.125.
		{gguf.TypeQ5_1, grid(32, func(i int) float32 { return 3 + 0.125*float32(i%32) })},
		// Q8_0 / Q8_1: max 127*0.25.
		{gguf.TypeQ8_0, grid(64, func(i int) float32 { return 0.25 * float32((i*37)%255-127) })},
		{gguf.TypeQ8_1, grid(64, func(i int) float32 { return 0.25 * float32((i*37)%255-127) })},
		// Q8_K: max is -127*0.5 so iscale = 2 exactly.
		{gguf.TypeQ8_K, grid(256, func(i int) float32 {
			if i == 0 {
				return -63.5
			}
			return 0.5 * float32((i*53)%255-127)
		})},
	}
	for _, tc := range tests {
		y := dequantize(t, tc.typ, quantize(t, tc.typ, tc.x), len(tc.x))
		for i := range y {
			if y[i] != tc.x[i] {
				t.Errorf("%s: element %d: got %g, want %g", tc.typ, i, y[i], tc.x[i])
				break
			}
		}
	}
}
