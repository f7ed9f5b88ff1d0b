package quant

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// FuzzDequantize feeds arbitrary type numbers, element counts and bytes to
// Dequantize: it must never panic, must succeed exactly when the type is
// supported and the bytes are exactly RowBytes(n), and for valid rows of a
// type with a dot kernel Dot must not panic either (whatever the bytes).
func FuzzDequantize(f *testing.F) {
	for _, typ := range allTypes {
		be, bb := typ.BlockElems(), typ.BlockBytes()
		f.Add(uint32(typ), uint16(be), make([]byte, bb))
		f.Add(uint32(typ), uint16(2*be), make([]byte, 2*bb))
		f.Add(uint32(typ), uint16(be), make([]byte, bb+1))
		f.Add(uint32(typ), uint16(be+1), make([]byte, bb))
	}
	f.Add(uint32(gguf.TypeI8), uint16(4), []byte{1, 2, 3, 4})
	f.Add(uint32(1000), uint16(0), []byte{})
	f.Fuzz(func(t *testing.T, rawType uint32, rawN uint16, data []byte) {
		typ := gguf.TensorType(rawType % 64)
		n := int(rawN % 4096)
		dst := make([]float32, n)
		err := Dequantize(typ, data, dst)
		want, sizeErr := RowBytes(typ, n)
		valid := Supported(typ) && sizeErr == nil && want == len(data)
		if valid && err != nil {
			t.Fatalf("%s, %d elements, %d bytes: unexpected error %v", typ, n, len(data), err)
		}
		if !valid && err == nil {
			t.Fatalf("%s, %d elements, %d bytes: no error", typ, n, len(data))
		}
		if !valid || !HasDot(typ) {
			return
		}
		// Reuse the fuzz bytes as the activation, cycled to the right size.
		xb, _ := RowBytes(VecDotType(typ), n)
		x := make([]byte, xb)
		for i := range x {
			if len(data) > 0 {
				x[i] = data[i%len(data)]
			}
		}
		_ = Dot(typ, data, x, n)
	})
}

// FuzzQuantize quantizes arbitrary float32 bit patterns (NaN, Inf,
// subnormals included) to every type: no panics, and the result decodes.
// For finite input of moderate size the round trip must also respect the
// error bound of TestRoundTrip.
func FuzzQuantize(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f, 1, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0x7f, 0x7f, 0xff, 0xff, 0x7f, 0xff})
	f.Add([]byte{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Tile the input to 512 floats (two super-blocks).
		x := make([]float32, 512)
		finite := true
		if len(raw) >= 4 {
			for i := range x {
				o := (4 * i) % (len(raw) - len(raw)%4)
				x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[o:]))
				if math.IsNaN(float64(x[i])) || math.Abs(float64(x[i])) > 1e4 || (x[i] != 0 && math.Abs(float64(x[i])) < 1e-4) {
					finite = false
				}
			}
		}
		for _, typ := range allTypes {
			b := make([]byte, mustRowBytes(t, typ, len(x)))
			if err := Quantize(typ, x, b); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			y := make([]float32, len(x))
			if err := Dequantize(typ, b, y); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			if !finite || typ == gguf.TypeF32 || typ == gguf.TypeF16 || typ == gguf.TypeBF16 {
				continue
			}
			be := typ.BlockElems()
			for b0 := 0; b0 < len(x); b0 += be {
				amax := absMax64(x[b0 : b0+be])
				for i := b0; i < b0+be; i++ {
					if e := math.Abs(float64(x[i]) - float64(y[i])); e > roundTripBound[typ]*amax+absSlack(typ) {
						t.Fatalf("%s: element %d: %g -> %g (block max %g)", typ, i, x[i], y[i], amax)
					}
				}
			}
		}
	})
}
