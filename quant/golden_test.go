package quant

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// sharedDir is the read-only test data directory, a sibling of the
// repository root.
const sharedDir = "../../shared"

func sharedFile(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(sharedDir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test data %s not available (../shared is absent outside the kvgo workspace): %v", p, err)
	}
	return p
}

func openGGUF(t *testing.T, rel string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(sharedFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestGoldenStories260K checks the reference quantizers against llama.cpp's
// output: every Q8_0 / Q4_0 tensor of stories260K-q8_0.gguf and -q4_0.gguf
// (and every F16 tensor of the three derived files) must be byte-identical
// to Quantize applied to the F32 weights of stories260K.gguf, and
// Dequantize of the file's bytes must equal Dequantize of ours.
// (shared/golden/README.md, section 1.1.)
func TestGoldenStories260K(t *testing.T) {
	base := openGGUF(t, "models/stories260K.gguf")
	for _, rel := range []string{
		"models/stories260K-q8_0.gguf",
		"models/stories260K-q4_0.gguf",
		"models/stories260K-f16.gguf",
	} {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			qf := openGGUF(t, rel)
			counts := map[gguf.TensorType]int{}
			for i := range qf.Tensors {
				ti := &qf.Tensors[i]
				counts[ti.Type]++
				bi, ok := base.Tensor(ti.Name)
				if !ok {
					t.Fatalf("%s: not in stories260K.gguf", ti.Name)
				}
				if bi.Type != gguf.TypeF32 {
					t.Fatalf("%s: base tensor is %s, want F32", ti.Name, bi.Type)
				}
				n := int(bi.Elements())
				if int(ti.Elements()) != n {
					t.Fatalf("%s: %d elements, base has %d", ti.Name, ti.Elements(), n)
				}
				src := dequantize(t, gguf.TypeF32, base.TensorData(bi), n)
				want := qf.TensorData(ti)
				got := quantize(t, ti.Type, src)
				if !bytes.Equal(got, want) {
					bb := ti.Type.BlockBytes()
					for b0 := 0; b0 < len(got); b0 += bb {
						if !bytes.Equal(got[b0:b0+bb], want[b0:b0+bb]) {
							t.Errorf("%s (%s): block %d differs:\n got % x\nwant % x",
								ti.Name, ti.Type, b0/bb, got[b0:b0+bb], want[b0:b0+bb])
							break
						}
					}
					continue
				}
				dWant := dequantize(t, ti.Type, want, n)
				dGot := dequantize(t, ti.Type, got, n)
				for j := range dWant {
					if math.Float32bits(dWant[j]) != math.Float32bits(dGot[j]) {
						t.Fatalf("%s: dequantized element %d: %g vs %g", ti.Name, j, dGot[j], dWant[j])
					}
				}
			}
			t.Logf("tensors by type: %v", counts)
			quantized := counts[gguf.TypeQ8_0] + counts[gguf.TypeQ4_0]
			if rel != "models/stories260K-f16.gguf" && quantized != 32 {
				t.Errorf("%d Q8_0/Q4_0 tensors, README says 32", quantized)
			}
		})
	}
}
