package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// randomIQ4 returns n elements of random IQ4_NL or IQ4_XS blocks (kvgo
// cannot quantize to these types, so tests make their blocks directly):
// random indices and group scales, block scales d of about scale.
func randomIQ4(r *rand.Rand, t gguf.TensorType, n int, scale float32) []byte {
	b := make([]byte, n/t.BlockElems()*t.BlockBytes())
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	for o := 0; o < len(b); o += t.BlockBytes() {
		putF16(b[o:], scale*float32(r.Float64()+0.5))
	}
	return b
}

func TestIQ4DequantizeLiterals(t *testing.T) {
	nl := make([]byte, 18)
	putF16(nl, 0.5)
	for j := range 16 {
		nl[2+j] = byte(j) | byte(15-j)<<4
	}
	y := make([]float32, 32)
	if err := Dequantize(gguf.TypeIQ4_NL, nl, y); err != nil {
		t.Fatal(err)
	}
	for j := range 16 {
		if want := 0.5 * float32(iq4Values[j]); y[j] != want {
			t.Errorf("IQ4_NL y[%d] = %g, want %g", j, y[j], want)
		}
		if want := 0.5 * float32(iq4Values[15-j]); y[j+16] != want {
			t.Errorf("IQ4_NL y[%d] = %g, want %g", j+16, y[j+16], want)
		}
	}

	xs := make([]byte, 136)
	putF16(xs, 0.25)
	// group scales over the whole 6-bit range: low four bits in scales_l,
	// high two in scales_h
	var ls [8]int
	var sh uint16
	for ib := range 8 {
		ls[ib] = []int{0, 63, 32, 31, 33, 17, 48, 5}[ib]
		xs[4+ib/2] |= byte(ls[ib]&0xf) << (4 * (ib % 2))
		sh |= uint16(ls[ib]>>4) << (2 * ib)
	}
	binary.LittleEndian.PutUint16(xs[2:], sh)
	for i := range 128 {
		xs[8+i] = byte(i%16) | byte(i*7%16)<<4
	}
	y = make([]float32, 256)
	if err := Dequantize(gguf.TypeIQ4_XS, xs, y); err != nil {
		t.Fatal(err)
	}
	for ib := range 8 {
		dl := 0.25 * float32(ls[ib]-32)
		for j := range 16 {
			q := 16*ib + j
			if want := dl * float32(iq4Values[q%16]); y[32*ib+j] != want {
				t.Errorf("IQ4_XS y[%d] = %g, want %g", 32*ib+j, y[32*ib+j], want)
			}
			if want := dl * float32(iq4Values[q*7%16]); y[32*ib+j+16] != want {
				t.Errorf("IQ4_XS y[%d] = %g, want %g", 32*ib+j+16, y[32*ib+j+16], want)
			}
		}
	}
}

// TestIQ4DotMatchesDequantized checks Dot against the float64 dot of the
// dequantized weights and the dequantized activation, within the float32
// rounding of the block sums.
func TestIQ4DotMatchesDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, typ := range []gguf.TensorType{gguf.TypeIQ4_NL, gguf.TypeIQ4_XS} {
		for _, n := range []int{256, 768, 2048} {
			w := randomIQ4(r, typ, n, 0.01)
			x := datasets[0].gen(r, n)
			vt := VecDotType(typ)
			xa := make([]byte, mustRowBytes(t, vt, n))
			if err := QuantizeActivation(typ, x, xa); err != nil {
				t.Fatal(err)
			}
			wf, xf := dequantize(t, typ, w, n), make([]float32, n)
			if vt == gguf.TypeQ8_0 {
				xf = dequantize(t, vt, xa, n)
			} else {
				for i := range n / 256 {
					y := q8KAt(xa, i)
					for e := range 256 {
						xf[256*i+e] = y.d * float32(y.q(e))
					}
				}
			}
			var want, mag float64
			for i := range n {
				want += float64(wf[i]) * float64(xf[i])
				mag += math.Abs(float64(wf[i]) * float64(xf[i]))
			}
			got := float64(Dot(typ, w, xa, n))
			if math.Abs(got-want) > 1e-5*mag+1e-30 {
				t.Errorf("%s n=%d: Dot = %g, dequantized %g (magnitude %g)", typ, n, got, want, mag)
			}
		}
	}
}

func TestIQ4QuantizeUnsupported(t *testing.T) {
	for _, typ := range []gguf.TensorType{gguf.TypeIQ4_NL, gguf.TypeIQ4_XS} {
		err := Quantize(typ, make([]float32, 256), make([]byte, mustRowBytes(t, typ, 256)))
		if err == nil {
			t.Errorf("Quantize(%s) succeeded, want an error", typ)
		}
	}
}
