package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// randomIQ4Blocks fills data with random IQ4_NL or IQ4_XS blocks (kvgo has
// no quantizer for these types): random indices and group scales, block
// scales between 0.005 and 0.015.
func randomIQ4Blocks(rng *rand.Rand, t gguf.TensorType, data []byte) {
	for i := range data {
		data[i] = byte(rng.UintN(256))
	}
	for o := 0; o < len(data); o += t.BlockBytes() {
		binary.LittleEndian.PutUint16(data[o:], quant.F32ToF16(float32(0.005+0.01*rng.Float64())))
	}
}

// TestGenericIQ4DotsMatchQuant holds the pure-Go IQ4 dot products to the
// quant reference bit for bit.
func TestGenericIQ4DotsMatchQuant(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	kernels := map[gguf.TensorType]func(w, x []byte, nb int) float32{
		gguf.TypeIQ4_NL: dotIQ4NLGo,
		gguf.TypeIQ4_XS: dotIQ4XSGo,
	}
	for typ, dot := range kernels {
		for _, nb := range []int{1, 2, 7} {
			t.Run(fmt.Sprintf("%s/%d", typ, nb), func(t *testing.T) {
				n := nb * typ.BlockElems()
				for range 20 {
					w, _ := typ.RowBytes(n)
					wb := make([]byte, w)
					randomIQ4Blocks(rng, typ, wb)
					xl, _ := quant.VecDotType(typ).RowBytes(n)
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
