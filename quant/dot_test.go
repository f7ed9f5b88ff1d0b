package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

func TestVecDotType(t *testing.T) {
	want := map[gguf.TensorType]gguf.TensorType{
		gguf.TypeF32:  gguf.TypeF32,
		gguf.TypeF16:  gguf.TypeF16,
		gguf.TypeBF16: gguf.TypeBF16,
		gguf.TypeQ4_0: gguf.TypeQ8_0,
		gguf.TypeQ5_0: gguf.TypeQ8_0,
		gguf.TypeQ8_0: gguf.TypeQ8_0,
		gguf.TypeQ4_1: gguf.TypeQ8_1,
		gguf.TypeQ5_1: gguf.TypeQ8_1,
		gguf.TypeQ2_K: gguf.TypeQ8_K,
		gguf.TypeQ3_K: gguf.TypeQ8_K,
		gguf.TypeQ4_K: gguf.TypeQ8_K,
		gguf.TypeQ5_K: gguf.TypeQ8_K,
		gguf.TypeQ6_K: gguf.TypeQ8_K,
	}
	for typ, vt := range want {
		if got := VecDotType(typ); got != vt {
			t.Errorf("VecDotType(%s) = %s, want %s", typ, got, vt)
		}
		if !HasDot(typ) {
			t.Errorf("HasDot(%s) = false", typ)
		}
	}
	for _, typ := range []gguf.TensorType{gguf.TypeQ8_1, gguf.TypeQ8_K, gguf.TypeI8, gguf.TensorType(99)} {
		if HasDot(typ) {
			t.Errorf("HasDot(%s) = true", typ)
		}
	}
}

// activationErrBound returns an a-priori bound on |x'_i - x_i| for every
// element after x is converted to vt (x' = the value the dot product sees):
//
//	F32   0
//	F16   2^-11 |x| + 2^-25            (round to nearest, subnormal step 2^-24)
//	BF16  2^-8 |x|
//	Q8_0, Q8_1  0.5 d + 127 |d - f16(d)|, d = blockmax/127, |d - f16(d)| <= 2^-11 d + 2^-25
//	Q8_K  0.5 d (1 + 2^-20), d = blockmax/127 kept in float32
func activationErrBound(vt gguf.TensorType, x []float32) []float64 {
	e := make([]float64, len(x))
	switch vt {
	case gguf.TypeF16:
		for i, v := range x {
			e[i] = math.Abs(float64(v))*0x1p-11 + 0x1p-25
		}
	case gguf.TypeBF16:
		for i, v := range x {
			e[i] = math.Abs(float64(v)) * 0x1p-8
		}
	case gguf.TypeQ8_0, gguf.TypeQ8_1, gguf.TypeQ8_K:
		be := vt.BlockElems()
		for b0 := 0; b0 < len(x); b0 += be {
			d := absMax64(x[b0:b0+be]) / 127
			lim := 0.5 * d * (1 + 0x1p-20)
			if vt != gguf.TypeQ8_K {
				lim = 0.5*d + 127*(d*0x1p-11+0x1p-25)
			}
			for i := b0; i < b0+be; i++ {
				e[i] = lim
			}
		}
	}
	return e
}

// q8_1MinCorrection returns what ggml's Q4_1/Q5_1 dot adds on top of
// sum(w'*x'): the block minimum m is applied through the activation's
// stored s = f16(d*sum(q)) rather than through sum(f16(d)*q). For other
// types it is 0.
func q8_1MinCorrection(typ gguf.TensorType, w, xa []byte, n int) (corr, bound float64) {
	if VecDotType(typ) != gguf.TypeQ8_1 {
		return 0, 0
	}
	wb := typ.BlockBytes()
	for i := range n / 32 {
		m := float64(f16at(w[i*wb+2:]))
		blk := xa[i*36 : (i+1)*36]
		d, s := float64(f16at(blk)), float64(f16at(blk[2:]))
		var sumq int
		for _, q := range blk[4:] {
			sumq += int(int8(q))
		}
		corr += m * (s - d*float64(sumq))
		// |s - d*sum(q)| <= f16 rounding of s plus f16 rounding of d times |sum(q)|
		bound += math.Abs(m) * (math.Abs(s)*0x1p-10 + float64(abs(sumq))*(d*0x1p-10+0x1p-24) + 0x1p-24)
	}
	return corr, bound
}

func abs(i int) int { return max(i, -i) }

// floatErrBound bounds the float32 rounding inside Dot: a few roundings per
// block and one per accumulated block (one per element for the plain
// types), each at most 2^-24 relative to sum |w'*x'|.
func floatErrBound(typ gguf.TensorType, n int, sumAbs float64) float64 {
	terms := n/typ.BlockElems() + 4
	return float64(terms) * 0x1p-24 * sumAbs
}

// TestDotAgainstFloat64 checks Dot(t, Quantize(t, w), QuantizeActivation(t,
// x)) against the float64 dot product of Dequantize(w) with the original x.
// The only differences allowed are the activation's own quantization error
// (bounded per element by activationErrBound), the Q8_1 s rounding and
// float32 rounding.
func TestDotAgainstFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	worstTol := map[gguf.TensorType]float64{} // largest |diff| / tolerance
	worstRel := map[gguf.TensorType]float64{} // largest |diff| / sum|w'x| for Gaussian w and x
	for _, typ := range dotTypes {
		vt := VecDotType(typ)
		for _, n := range []int{256, 1024} {
			for _, wds := range []dataset{datasets[0], datasets[1], datasets[2], datasets[4]} {
				for _, xds := range []dataset{datasets[0], datasets[1], datasets[3]} {
					name := fmt.Sprintf("%s/%d/w=%s/x=%s", typ, n, wds.name, xds.name)
					w, x := wds.gen(r, n), xds.gen(r, n)
					wq := quantize(t, typ, w)
					wd := dequantize(t, typ, wq, n)
					xa := make([]byte, mustRowBytes(t, vt, n))
					if err := QuantizeActivation(typ, x, xa); err != nil {
						t.Fatal(err)
					}
					got := float64(Dot(typ, wq, xa, n))

					var exact, sumAbs, actErr float64
					eb := activationErrBound(vt, x)
					for i := range n {
						exact += float64(wd[i]) * float64(x[i])
						sumAbs += math.Abs(float64(wd[i]) * float64(x[i]))
						actErr += math.Abs(float64(wd[i])) * eb[i]
					}
					_, minBound := q8_1MinCorrection(typ, wq, xa, n)
					tol := actErr + minBound + floatErrBound(typ, n, sumAbs+actErr) + 1e-30
					diff := math.Abs(got - exact)
					if diff > tol {
						t.Errorf("%s: Dot = %g, float64 dot = %g, |diff| %g > tolerance %g", name, got, exact, diff, tol)
					}
					worstTol[typ] = math.Max(worstTol[typ], diff/tol)
					if wds.name == "gauss" && xds.name == "gauss" {
						worstRel[typ] = math.Max(worstRel[typ], diff/sumAbs)
					}
				}
			}
		}
	}
	for _, typ := range dotTypes {
		t.Logf("%-5s x %-5s: worst |Dot - exact| = %.2f of tolerance; Gaussian data: %.2e of sum|w'x|",
			typ, VecDotType(typ), worstTol[typ], worstRel[typ])
	}
}

// TestDotMatchesDequantized compares Dot with an independent slow
// computation: dequantize both the row and the activation and sum the
// products in float64 (adding the Q8_1 s-term correction). Only float32
// rounding separates the two.
func TestDotMatchesDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	worst := map[gguf.TensorType]float64{}
	for _, typ := range dotTypes {
		vt := VecDotType(typ)
		for _, n := range []int{256, 512, 1024} {
			for _, ds := range datasets {
				name := fmt.Sprintf("%s/%d/%s", typ, n, ds.name)
				w, x := ds.gen(r, n), datasets[(n/256)%len(datasets)].gen(r, n)
				wq := quantize(t, typ, w)
				xa := make([]byte, mustRowBytes(t, vt, n))
				if err := QuantizeActivation(typ, x, xa); err != nil {
					t.Fatal(err)
				}
				wd := dequantize(t, typ, wq, n)
				xd := dequantize(t, vt, xa, n)
				var slow, sumAbs float64
				for i := range n {
					slow += float64(wd[i]) * float64(xd[i])
					sumAbs += math.Abs(float64(wd[i]) * float64(xd[i]))
				}
				corr, _ := q8_1MinCorrection(typ, wq, xa, n)
				slow += corr
				got := float64(Dot(typ, wq, xa, n))
				tol := 1e-5*(sumAbs+math.Abs(corr)) + 1e-30
				d := math.Abs(got - slow)
				if d > tol {
					t.Errorf("%s: Dot = %.9g, slow = %.9g, |diff| %g > %g", name, got, slow, d, tol)
				}
				if sumAbs > 0 {
					worst[typ] = math.Max(worst[typ], d/sumAbs)
				}
			}
		}
	}
	for _, typ := range dotTypes {
		t.Logf("%-5s: worst |Dot - slow| / sum|w'x'| = %.2e", typ, worst[typ])
	}
}

// TestDotOneHot checks, position by position, that Dot and Dequantize
// agree on where each element lives: with a one-hot activation Dot must
// return the dequantized weight at that position times the activation's
// value there (for Q8_1 the block minimum goes through s instead).
func TestDotOneHot(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, typ := range dotTypes {
		vt := VecDotType(typ)
		n := 512
		wq := quantize(t, typ, datasets[0].gen(r, n))
		wd := dequantize(t, typ, wq, n)
		for _, pos := range []int{0, 1, 15, 16, 31, 32, 63, 64, 127, 128, 200, 255, 256, 300, 511} {
			x := make([]float32, n)
			x[pos] = 1
			xa := make([]byte, mustRowBytes(t, vt, n))
			if err := QuantizeActivation(typ, x, xa); err != nil {
				t.Fatal(err)
			}
			xd := dequantize(t, vt, xa, n)
			want := float64(wd[pos]) * float64(xd[pos])
			tol := 1e-6 * math.Abs(want)
			if vt == gguf.TypeQ8_1 {
				// wd = f32(d*q) + m was rounded once more than Dot's d*q
				m := float64(f16at(wq[(pos/32)*typ.BlockBytes()+2:]))
				s := float64(f16at(xa[(pos/32)*36+2:]))
				want = (float64(wd[pos])-m)*float64(xd[pos]) + m*s
				tol = 1e-6 * (math.Abs(float64(wd[pos])) + math.Abs(m)) * math.Abs(float64(xd[pos]))
			}
			got := Dot(typ, wq, xa, n)
			if d := math.Abs(float64(got) - want); d > tol+1e-12 {
				t.Errorf("%s: one-hot at %d: Dot = %.9g, want %.9g", typ, pos, got, want)
			}
		}
	}
}

func TestCheckDot(t *testing.T) {
	w := make([]byte, 18*8) // 256 elements of Q4_0
	x := make([]byte, 34*8) // 256 elements of Q8_0
	k := make([]byte, 144)  // 256 elements of Q4_K
	xk := make([]byte, 292) // 256 elements of Q8_K
	if err := CheckDot(gguf.TypeQ4_0, w, x, 256); err != nil {
		t.Fatalf("valid Q4_0 arguments rejected: %v", err)
	}
	if err := CheckDot(gguf.TypeQ4_K, k, xk, 256); err != nil {
		t.Fatalf("valid Q4_K arguments rejected: %v", err)
	}
	bad := []struct {
		name string
		typ  gguf.TensorType
		w, x []byte
		n    int
	}{
		{"short row", gguf.TypeQ4_0, w[:17], x, 256},
		{"long activation", gguf.TypeQ4_0, w, append(x, 0), 256},
		{"wrong activation type", gguf.TypeQ4_K, k, x, 256},
		{"partial block", gguf.TypeQ4_0, w, x, 250},
		{"negative n", gguf.TypeQ4_0, nil, nil, -32},
		{"no kernel Q8_1", gguf.TypeQ8_1, make([]byte, 36), make([]byte, 36), 32},
		{"no kernel Q8_K", gguf.TypeQ8_K, xk, xk, 256},
		{"unknown type", gguf.TensorType(77), nil, nil, 0},
	}
	for _, tc := range bad {
		if err := CheckDot(tc.typ, tc.w, tc.x, tc.n); err == nil {
			t.Errorf("%s: CheckDot accepted it", tc.name)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Dot did not panic", tc.name)
				}
			}()
			Dot(tc.typ, tc.w, tc.x, tc.n)
		}()
	}
}

// TestDotZeroLength: an empty row has dot product 0.
func TestDotZeroLength(t *testing.T) {
	for _, typ := range dotTypes {
		if got := Dot(typ, nil, nil, 0); got != 0 {
			t.Errorf("%s: Dot of empty rows = %g", typ, got)
		}
	}
}

// TestQ8KBsums checks that QuantizeActivation stores Q8_K's bsums as the
// sums of each 16 quants, which the K-quant dot products rely on.
func TestQ8KBsums(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := datasets[1].gen(r, 512)
	b := make([]byte, 2*292)
	if err := QuantizeActivation(gguf.TypeQ4_K, x, b); err != nil {
		t.Fatal(err)
	}
	for blk := range 2 {
		p := b[blk*292:]
		for j := range 16 {
			var sum int
			for _, q := range p[4+16*j : 4+16*j+16] {
				sum += int(int8(q))
			}
			if got := int(int16(binary.LittleEndian.Uint16(p[260+2*j:]))); got != sum {
				t.Errorf("block %d bsums[%d] = %d, want %d", blk, j, got, sum)
			}
		}
	}
}
