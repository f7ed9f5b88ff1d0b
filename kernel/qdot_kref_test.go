package kernel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// BenchmarkNewTypes runs a 64-row weight tile of each type that had no
// kernel before (Q4_1, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS; Q4_K as a
// yardstick) through the row kernels (x1: one activation row, x4: four),
// and through quant.Dot, the path these types took before ("ref"), on one
// locked thread. GMAC/cpu-s counts the thread's CPU time, which a loaded
// machine does not inflate.
func BenchmarkNewTypes(b *testing.B) {
	p := NewPool(1)
	defer p.Close()
	for _, t := range []gguf.TensorType{gguf.TypeQ4_1, gguf.TypeQ5_1, gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeIQ4_NL, gguf.TypeIQ4_XS, gguf.TypeQ4_K} {
		const rows, cols = 64, 1024
		var m *Matrix
		if t == gguf.TypeIQ4_NL || t == gguf.TypeIQ4_XS {
			rb, _ := t.RowBytes(cols)
			data := make([]byte, rows*rb)
			randomIQ4Blocks(rand.New(rand.NewPCG(1, 2)), t, data)
			var err error
			if m, err = NewMatrix(t, rows, cols, data); err != nil {
				b.Fatal(err)
			}
		} else {
			m = benchMatrix(b, t, rows, cols)
		}
		for _, path := range []string{"ref", "x1", "x4"} {
			b.Run(fmt.Sprintf("%s/%s", t, path), func(b *testing.B) {
				n := 1
				if path == "x4" {
					n = 4
				}
				x := randomFloats(rand.New(rand.NewPCG(2, 3)), n*cols)
				scratch := make([]byte, m.ActivationBytes(n))
				a := m.convert(p, x, n, scratch)
				out := make([]float32, 4*rows)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU()
				for b.Loop() {
					switch path {
					case "ref":
						for r := range rows {
							out[r] = quant.Dot(m.Type, m.Data[r*m.rowBytes:(r+1)*m.rowBytes], a.b[:a.stride], cols)
						}
					case "x1":
						m.dot1(out, 0, rows, &a, 0)
					default:
						m.dot4(out, 0, rows, &a, 0)
					}
				}
				if cpu := (threadCPU() - cpu0).Seconds() / float64(b.N); cpu > 0 {
					b.ReportMetric(float64(n*rows*cols)/cpu/1e9, "GMAC/cpu-s")
				}
			})
		}
	}
}
