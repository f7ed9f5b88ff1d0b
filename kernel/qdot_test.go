package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// TestGenericDotsMatchQuant holds the pure-Go dot products to the quant
// reference bit for bit, on random rows of several block counts.
func TestGenericDotsMatchQuant(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	kernels := map[gguf.TensorType]func(w, x []byte, nb int) float32{
		gguf.TypeQ8_0: dotQ8_0Go,
		gguf.TypeQ4_0: dotQ4_0Go,
		gguf.TypeQ5_0: dotQ5_0Go,
		gguf.TypeQ4_K: func(w, x []byte, nb int) float32 { return dotK45Go(w, x, nb, 144, false) },
		gguf.TypeQ5_K: func(w, x []byte, nb int) float32 { return dotK45Go(w, x, nb, 176, true) },
		gguf.TypeQ6_K: dotQ6_KGo,
		gguf.TypeQ4_1: dotQ4_1Go,
		gguf.TypeQ5_1: dotQ5_1Go,
		gguf.TypeQ2_K: dotQ2_KGo,
		gguf.TypeQ3_K: dotQ3_KGo,
	}
	for typ, dot := range kernels {
		for _, nb := range []int{1, 2, 7} {
			t.Run(fmt.Sprintf("%s/%d", typ, nb), func(t *testing.T) {
				n := nb * typ.BlockElems()
				for range 20 {
					w, _ := typ.RowBytes(n)
					wb := make([]byte, w)
					if err := quant.Quantize(typ, randomFloats(rng, n), wb); err != nil {
						t.Fatal(err)
					}
					vt := quant.VecDotType(typ)
					xl, _ := vt.RowBytes(n)
					xb := make([]byte, xl)
					if err := quant.QuantizeActivation(typ, randomFloats(rng, n), xb); err != nil {
						t.Fatal(err)
					}
					got, want := dot(wb, xb, nb), quant.Dot(typ, wb, xb, n)
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("got %g, want %g", got, want)
					}
				}
			})
		}
	}
}
