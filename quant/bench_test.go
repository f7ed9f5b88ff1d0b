package quant

import (
	"math/rand/v2"
	"testing"
)

// The benchmarks give later, faster kernels a baseline. They use one row of
// 4096 elements (a typical hidden size) and report throughput in elements
// processed per second via SetBytes on the float32 size.

const benchN = 4096

func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, typ := range dotTypes {
		b.Run(typ.String(), func(b *testing.B) {
			w := quantize(b, typ, datasets[0].gen(r, benchN))
			x := make([]byte, mustRowBytes(b, VecDotType(typ), benchN))
			if err := QuantizeActivation(typ, datasets[0].gen(r, benchN), x); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(4 * benchN)
			var sink float32
			for b.Loop() {
				sink += Dot(typ, w, x, benchN)
			}
			_ = sink
		})
	}
}

func BenchmarkDequantize(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			src := quantize(b, typ, datasets[0].gen(r, benchN))
			dst := make([]float32, benchN)
			b.SetBytes(4 * benchN)
			for b.Loop() {
				if err := Dequantize(typ, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQuantize(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			src := datasets[0].gen(r, benchN)
			dst := make([]byte, mustRowBytes(b, typ, benchN))
			b.SetBytes(4 * benchN)
			for b.Loop() {
				if err := Quantize(typ, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
