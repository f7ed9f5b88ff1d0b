package quant

import (
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// TestQuantizeActivationX86 pins the two differences between ggml's AVX2
// activation quantizers and the reference: ties round to even, and the
// multiplier is 127/max (here 127/127 = 1 exactly, so every x.5 is a tie).
func TestQuantizeActivationX86(t *testing.T) {
	x := make([]float32, 32)
	x[0] = 127
	in := []float32{0.5, 1.5, 2.5, -0.5, -2.5, 3.5, -126.5}
	copy(x[1:], in)
	act := []int8{0, 2, 2, 0, -2, 4, -126}
	ref := []int8{1, 2, 3, -1, -3, 4, -127}
	for _, c := range []struct {
		typ gguf.TensorType // weight type
		off int             // first quant in the block
	}{{gguf.TypeQ4_0, 2}, {gguf.TypeQ4_1, 4}} {
		vt := VecDotType(c.typ)
		got := make([]byte, vt.BlockBytes())
		if err := QuantizeActivation(c.typ, x, got); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, vt.BlockBytes())
		if err := Quantize(vt, x, want); err != nil {
			t.Fatal(err)
		}
		for i := range in {
			if g := int8(got[c.off+1+i]); g != act[i] {
				t.Errorf("%s activation: %g -> %d, want %d", vt, in[i], g, act[i])
			}
			if w := int8(want[c.off+1+i]); w != ref[i] {
				t.Errorf("%s reference: %g -> %d, want %d", vt, in[i], w, ref[i])
			}
		}
		if c.typ == gguf.TypeQ4_1 {
			var sum int
			for i := range 32 {
				sum += int(int8(got[4+i]))
			}
			if s := f16at(got[2:]); s != float32(sum) {
				t.Errorf("Q8_1 s = %g, want %d", s, sum)
			}
		}
	}
}
