package quant

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// The blocks below are assembled byte by byte from the layouts in ggml's
// ggml-common.h, with scales chosen as powers of two so every expected
// value is exact. The packing is written out independently of the package's
// helpers so that a layout mistake in either shows up.

const (
	f16One      = 0x3c00 // 1.0
	f16Half     = 0x3800 // 0.5
	f16Quarter  = 0x3400 // 0.25
	f16Eighth   = 0x3000 // 0.125
	f16Two      = 0x4000 // 2.0
	f16MinusOne = 0xbc00 // -1.0
)

func put16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }

// knownBlock is a hand-built block with its expected decoding.
type knownBlock struct {
	typ  gguf.TensorType
	data []byte
	want []float32
}

func knownBlocks() []knownBlock {
	var out []knownBlock

	{ // Q4_0: d = 0.5, nibbles 0..15 in the low halves, 15..0 in the high halves.
		b := make([]byte, 18)
		put16(b, f16Half)
		want := make([]float32, 32)
		for j := range 16 {
			b[2+j] = uint8(j) | uint8(15-j)<<4
			want[j] = float32(j-8) * 0.5
			want[16+j] = float32(15-j-8) * 0.5
		}
		out = append(out, knownBlock{gguf.TypeQ4_0, b, want})
	}
	{ // Q4_1: d = 0.25, m = -1.
		b := make([]byte, 20)
		put16(b, f16Quarter)
		put16(b[2:], f16MinusOne)
		want := make([]float32, 32)
		for j := range 16 {
			lo, hi := (j*3)%16, (j*7+5)%16
			b[4+j] = uint8(lo) | uint8(hi)<<4
			want[j] = float32(lo)*0.25 - 1
			want[16+j] = float32(hi)*0.25 - 1
		}
		out = append(out, knownBlock{gguf.TypeQ4_1, b, want})
	}
	// Q5_0 / Q5_1: the fifth bit of element j is bit j of the little-endian
	// uint32 qh.
	const qh5 = 0xA5C3_5A3C
	{ // Q5_0: d = 1.
		b := make([]byte, 22)
		put16(b, f16One)
		binary.LittleEndian.PutUint32(b[2:], qh5)
		want := make([]float32, 32)
		for j := range 16 {
			lo, hi := (j*5+1)%16, (j*11)%16
			b[6+j] = uint8(lo) | uint8(hi)<<4
			want[j] = float32(lo|(qh5>>j&1)<<4) - 16
			want[16+j] = float32(hi|(qh5>>(16+j)&1)<<4) - 16
		}
		out = append(out, knownBlock{gguf.TypeQ5_0, b, want})
	}
	{ // Q5_1: d = 0.5, m = 2.
		b := make([]byte, 24)
		put16(b, f16Half)
		put16(b[2:], f16Two)
		binary.LittleEndian.PutUint32(b[4:], qh5)
		want := make([]float32, 32)
		for j := range 16 {
			lo, hi := (j*9+2)%16, (j*13+7)%16
			b[8+j] = uint8(lo) | uint8(hi)<<4
			want[j] = float32(lo|(qh5>>j&1)<<4)*0.5 + 2
			want[16+j] = float32(hi|(qh5>>(16+j)&1)<<4)*0.5 + 2
		}
		out = append(out, knownBlock{gguf.TypeQ5_1, b, want})
	}
	{ // Q8_0: d = 2, quants spanning -128..120.
		b := make([]byte, 34)
		put16(b, f16Two)
		want := make([]float32, 32)
		for j := range 32 {
			q := int8(j*8 - 128)
			b[2+j] = uint8(q)
			want[j] = float32(q) * 2
		}
		out = append(out, knownBlock{gguf.TypeQ8_0, b, want})
	}
	{ // Q8_1: d = 0.5; s (here 99) does not affect the values.
		b := make([]byte, 36)
		put16(b, f16Half)
		put16(b[2:], 0x5630)
		want := make([]float32, 32)
		for j := range 32 {
			q := int8(100 - 7*j)
			b[4+j] = uint8(q)
			want[j] = float32(q) * 0.5
		}
		out = append(out, knownBlock{gguf.TypeQ8_1, b, want})
	}
	{ // Q2_K: d = 1, dmin = 0.5; sub-block j has scale j and min 15-j.
		// Byte 32h+l of qs holds elements 128h+l+32k in bits 2k..2k+1.
		b := make([]byte, 84)
		L := make([]int, 256)
		for e := range L {
			L[e] = (e*7 + e/16) % 4
		}
		for j := range 16 {
			b[j] = uint8(j) | uint8(15-j)<<4
		}
		for e := range L {
			h, k, l := e/128, (e%128)/32, e%32
			b[16+32*h+l] |= uint8(L[e]) << (2 * k)
		}
		put16(b[80:], f16One)
		put16(b[82:], f16Half)
		want := make([]float32, 256)
		for e := range want {
			j := e / 16
			want[e] = float32(j*L[e]) - 0.5*float32(15-j)
		}
		out = append(out, knownBlock{gguf.TypeQ2_K, b, want})
	}
	{ // Q3_K: d = 0.25; sixteen 6-bit scales v stored with +32 offset;
		// quants q in -4..3 stored as q+4: low two bits like Q2_K, the third
		// bit in hmask[e%32] bit e/32.
		b := make([]byte, 110)
		v := make([]int, 16)
		for j := range v {
			v[j] = (j*23 + 3) % 64
		}
		for j := range 16 {
			if j < 8 {
				b[96+j] |= uint8(v[j] & 0xf)
			} else {
				b[96+j-8] |= uint8(v[j]&0xf) << 4
			}
			b[96+8+j%4] |= uint8(v[j]>>4) << (2 * (j / 4))
		}
		q := make([]int, 256)
		for e := range q {
			q[e] = (e*5+e/32)%8 - 4
			L := q[e] + 4
			h, k, l := e/128, (e%128)/32, e%32
			b[32+32*h+l] |= uint8(L&3) << (2 * k)
			if L >= 4 {
				b[e%32] |= 1 << (e / 32)
			}
		}
		put16(b[108:], f16Quarter)
		want := make([]float32, 256)
		for e := range want {
			want[e] = 0.25 * float32(v[e/16]-32) * float32(q[e])
		}
		out = append(out, knownBlock{gguf.TypeQ3_K, b, want})
	}
	// Q4_K / Q5_K: eight 6-bit scales and mins. Bytes 0-3 hold scales 0-3
	// (low six bits) and the top two bits of scales 4-7; bytes 4-7 the same
	// for mins; bytes 8-11 the low nibbles of scale 4-7 (low) and min 4-7
	// (high).
	sc := [8]int{1, 63, 17, 32, 45, 5, 60, 33}
	mn := [8]int{63, 0, 9, 40, 2, 61, 31, 48}
	packK4 := func(p []byte) {
		for j := range 4 {
			p[j] = uint8(sc[j]) | uint8(sc[j+4]>>4)<<6
			p[j+4] = uint8(mn[j]) | uint8(mn[j+4]>>4)<<6
			p[j+8] = uint8(sc[j+4]&0xf) | uint8(mn[j+4]&0xf)<<4
		}
	}
	{ // Q4_K: d = 0.5, dmin = 0.25; qs[32c+l] holds element 64c+l (low
		// nibble) and 64c+32+l (high nibble).
		b := make([]byte, 144)
		put16(b, f16Half)
		put16(b[2:], f16Quarter)
		packK4(b[4:16])
		q := make([]int, 256)
		for e := range q {
			q[e] = (e*11 + e/64) % 16
			c, l := e/64, e%32
			if e%64 < 32 {
				b[16+32*c+l] |= uint8(q[e])
			} else {
				b[16+32*c+l] |= uint8(q[e]) << 4
			}
		}
		want := make([]float32, 256)
		for e := range want {
			want[e] = 0.5*float32(sc[e/32]*q[e]) - 0.25*float32(mn[e/32])
		}
		out = append(out, knownBlock{gguf.TypeQ4_K, b, want})
	}
	{ // Q5_K: d = 0.125, dmin = 1; like Q4_K plus the fifth bit of element
		// e in qh[e%32] bit e/32.
		b := make([]byte, 176)
		put16(b, f16Eighth)
		put16(b[2:], f16One)
		packK4(b[4:16])
		q := make([]int, 256)
		for e := range q {
			q[e] = (e*13 + e/32) % 32
			c, l := e/64, e%32
			if e%64 < 32 {
				b[48+32*c+l] |= uint8(q[e] & 0xf)
			} else {
				b[48+32*c+l] |= uint8(q[e]&0xf) << 4
			}
			if q[e] >= 16 {
				b[16+e%32] |= 1 << (e / 32)
			}
		}
		want := make([]float32, 256)
		for e := range want {
			want[e] = 0.125*float32(sc[e/32]*q[e]) - float32(mn[e/32])
		}
		out = append(out, knownBlock{gguf.TypeQ5_K, b, want})
	}
	{ // Q6_K: d = 0.125, int8 scales, quants q in -32..31 stored as q+32.
		// In each half h of 128 elements, group g = (e%128)/32 and l = e%32:
		// low nibble in ql[64h + 32(g%2) + l] (low half of the byte for
		// g < 2, high half otherwise), top two bits in qh[32h + l] at bit 2g.
		b := make([]byte, 210)
		scales := [16]int8{-128, 127, -1, 5, 64, -64, 3, 1, -7, 100, -100, 2, 0, 9, -3, 77}
		for j, s := range scales {
			b[192+j] = uint8(s)
		}
		q := make([]int, 256)
		for e := range q {
			q[e] = (e*29+e/16)%64 - 32
			L := q[e] + 32
			h, g, l := e/128, (e%128)/32, e%32
			if g < 2 {
				b[64*h+32*(g%2)+l] |= uint8(L & 0xf)
			} else {
				b[64*h+32*(g%2)+l] |= uint8(L&0xf) << 4
			}
			b[128+32*h+l] |= uint8(L>>4) << (2 * g)
		}
		put16(b[208:], f16Eighth)
		want := make([]float32, 256)
		for e := range want {
			want[e] = 0.125 * float32(scales[e/16]) * float32(q[e])
		}
		out = append(out, knownBlock{gguf.TypeQ6_K, b, want})
	}
	{ // Q8_K: float32 d = 0.25, quants e-128; bsums do not affect values.
		b := make([]byte, 292)
		binary.LittleEndian.PutUint32(b, math.Float32bits(0.25))
		want := make([]float32, 256)
		for e := range want {
			b[4+e] = uint8(int8(e - 128))
			want[e] = 0.25 * float32(e-128)
		}
		out = append(out, knownBlock{gguf.TypeQ8_K, b, want})
	}
	return out
}

func TestDequantizeKnownBlocks(t *testing.T) {
	for _, kb := range knownBlocks() {
		// two copies of the block, so block indexing is exercised too
		data := append(append([]byte{}, kb.data...), kb.data...)
		got := dequantize(t, kb.typ, data, 2*len(kb.want))
		for i, w := range append(append([]float32{}, kb.want...), kb.want...) {
			if got[i] != w {
				t.Errorf("%s: element %d = %g, want %g", kb.typ, i, got[i], w)
				break
			}
		}
	}
}

// TestDequantizeLiterals pins a few values by hand, as a guard against the
// test's own packing helpers sharing a mistake with the package.
func TestDequantizeLiterals(t *testing.T) {
	blocks := map[gguf.TensorType]knownBlock{}
	for _, kb := range knownBlocks() {
		blocks[kb.typ] = kb
	}
	tests := []struct {
		typ  gguf.TensorType
		idx  int
		want float32
	}{
		{gguf.TypeQ4_0, 0, -4},    // (0-8)*0.5
		{gguf.TypeQ4_0, 15, 3.5},  // (15-8)*0.5
		{gguf.TypeQ4_0, 16, 3.5},  // high nibble of byte 0 is 15
		{gguf.TypeQ4_0, 31, -4},   // high nibble of byte 15 is 0
		{gguf.TypeQ5_0, 0, -15},   // low nibble 1, bit 0 of qh (0x...3C) clear: 1-16
		{gguf.TypeQ5_0, 2, 11},    // low nibble 11, bit 2 set: 27-16
		{gguf.TypeQ8_0, 0, -256},  // -128*2
		{gguf.TypeQ8_0, 31, 240},  // 120*2
		{gguf.TypeQ2_K, 0, -7.5},  // scale 0, min 15*0.5
		{gguf.TypeQ2_K, 37, -4.5}, // sub-block 2: 2*L - 13*0.5 with L = (259+2)%4 = 1
		{gguf.TypeQ8_K, 255, 31.75},
	}
	for _, tc := range tests {
		kb := blocks[tc.typ]
		got := dequantize(t, tc.typ, kb.data, len(kb.want))
		if got[tc.idx] != tc.want {
			t.Errorf("%s[%d] = %g, want %g", tc.typ, tc.idx, got[tc.idx], tc.want)
		}
	}
}

// q8Activation builds an activation of n elements of type vt whose
// dequantized value at e is act(e) exactly (scale 1 for all types).
func q8Activation(vt gguf.TensorType, n int, act func(e int) int8) []byte {
	switch vt {
	case gguf.TypeQ8_0:
		b := make([]byte, n/32*34)
		for i := range n / 32 {
			put16(b[i*34:], f16One)
			for j := range 32 {
				b[i*34+2+j] = uint8(act(32*i + j))
			}
		}
		return b
	case gguf.TypeQ8_1:
		b := make([]byte, n/32*36)
		for i := range n / 32 {
			put16(b[i*36:], f16One)
			sum := 0
			for j := range 32 {
				q := act(32*i + j)
				b[i*36+4+j] = uint8(q)
				sum += int(q)
			}
			put16(b[i*36+2:], F32ToF16(float32(sum))) // |sum| < 2048: exact
		}
		return b
	case gguf.TypeQ8_K:
		b := make([]byte, n/256*292)
		for i := range n / 256 {
			p := b[i*292:]
			binary.LittleEndian.PutUint32(p, math.Float32bits(1))
			for e := range 256 {
				p[4+e] = uint8(act(256*i + e))
			}
			for j := range 16 {
				s := 0
				for e := 16 * j; e < 16*j+16; e++ {
					s += int(act(256*i + e))
				}
				put16(p[260+2*j:], uint16(int16(s)))
			}
		}
		return b
	}
	panic("not a Q8 type")
}

// TestDotKnownBlocks takes the dot product of each hand-built block (two
// copies) with a small integer activation. All products and sums are exact
// in float32, so Dot must equal the exact answer.
func TestDotKnownBlocks(t *testing.T) {
	act := func(e int) int8 { return int8((e*7)%11 - 5) }
	for _, kb := range knownBlocks() {
		if !HasDot(kb.typ) {
			continue
		}
		n := 2 * len(kb.want)
		w := append(append([]byte{}, kb.data...), kb.data...)
		x := q8Activation(VecDotType(kb.typ), n, act)
		var want float64
		for e := range n {
			want += float64(kb.want[e%len(kb.want)]) * float64(act(e))
		}
		if got := Dot(kb.typ, w, x, n); float64(got) != want {
			t.Errorf("%s: Dot = %g, want %g", kb.typ, got, want)
		}
	}
}

// TestQuantizeKnown pins the reference quantizers' conventions on inputs
// small enough to work out by hand.
func TestQuantizeKnown(t *testing.T) {
	// Q4_0: the signed extreme (+8) gives d = 8/-8 = -1, so q = trunc(-x + 8.5)
	// clamped to 15: 8 -> 0, 0 -> 8, -7 -> 15, -8 -> 16 -> 15, 1.49 -> 7, 1.5 -> 7.
	x := make([]float32, 32)
	x[0], x[1], x[2], x[3], x[4], x[5] = 8, 0, -7, -8, 1.49, 1.5
	b := quantize(t, gguf.TypeQ4_0, x)
	if d := binary.LittleEndian.Uint16(b); d != f16MinusOne {
		t.Errorf("Q4_0 d = %#04x, want %#04x (-1)", d, f16MinusOne)
	}
	wantNib := []uint8{0, 8, 15, 15, 7, 7}
	for j, w := range wantNib {
		if got := b[2+j] & 0xf; got != w {
			t.Errorf("Q4_0 q[%d] = %d, want %d", j, got, w)
		}
	}
	if got := b[2] >> 4; got != 8 { // element 16 = 0 -> 8, in the high nibble of byte 0
		t.Errorf("Q4_0 q[16] = %d, want 8", got)
	}

	// Q8_0 rounds half away from zero (roundf): with max 127, d = 1.
	x = make([]float32, 32)
	x[0], x[1], x[2], x[3], x[4] = 127, 2.5, -2.5, 0.5, -0.5
	b = quantize(t, gguf.TypeQ8_0, x)
	for j, w := range []int8{127, 3, -3, 1, -1} {
		if got := int8(b[2+j]); got != w {
			t.Errorf("Q8_0 q[%d] = %d, want %d", j, got, w)
		}
	}
	// Q8_1 stores s = d*sum(q) = 1*(127+3-3+1-1) = 127.
	b = quantize(t, gguf.TypeQ8_1, x)
	if s := F16ToF32(binary.LittleEndian.Uint16(b[2:])); s != 127 {
		t.Errorf("Q8_1 s = %g, want 127", s)
	}

	// Q8_K uses nearest_int, which rounds half to even; max -127 gives
	// iscale = 1.
	x = make([]float32, 256)
	x[0], x[1], x[2], x[3], x[4] = -127, 2.5, 3.5, -0.5, -1.5
	b = quantize(t, gguf.TypeQ8_K, x)
	if d := math.Float32frombits(binary.LittleEndian.Uint32(b)); d != 1 {
		t.Errorf("Q8_K d = %g, want 1", d)
	}
	for j, w := range []int8{-127, 2, 4, 0, -2} {
		if got := int8(b[4+j]); got != w {
			t.Errorf("Q8_K q[%d] = %d, want %d", j, got, w)
		}
	}
	if got := int16(binary.LittleEndian.Uint16(b[260:])); got != -127+2+4+0-2 {
		t.Errorf("Q8_K bsums[0] = %d, want %d", got, -127+2+4+0-2)
	}

	// Q4_1: min -1, max 14 -> d = 1, q = trunc(x+1+0.5).
	x = make([]float32, 32)
	for i := range x {
		x[i] = 3
	}
	x[0], x[1], x[2] = -1, 14, 0.49
	b = quantize(t, gguf.TypeQ4_1, x)
	if d, m := F16ToF32(binary.LittleEndian.Uint16(b)), F16ToF32(binary.LittleEndian.Uint16(b[2:])); d != 1 || m != -1 {
		t.Errorf("Q4_1 d, m = %g, %g, want 1, -1", d, m)
	}
	for j, w := range []uint8{0, 15, 1, 4} {
		if got := b[4+j] & 0xf; got != w {
			t.Errorf("Q4_1 q[%d] = %d, want %d", j, got, w)
		}
	}

	// All-zero input gives all-zero blocks, except for Q4_0 and Q5_0: their
	// scale is max/-8 (max/-16) = -0, stored as f16 0x8000, and the quants
	// are the zero point 8 (16, i.e. fifth bit set, low nibble 0).
	for _, typ := range allTypes {
		z := make([]float32, 256)
		want := make([]byte, mustRowBytes(t, typ, 256))
		bb := typ.BlockBytes()
		for i := 0; i < len(want); i += bb {
			switch typ {
			case gguf.TypeQ4_0:
				put16(want[i:], 0x8000)
				for j := 2; j < 18; j++ {
					want[i+j] = 0x88
				}
			case gguf.TypeQ5_0:
				put16(want[i:], 0x8000)
				binary.LittleEndian.PutUint32(want[i+2:], 0xffffffff)
			}
		}
		if got := quantize(t, typ, z); string(got) != string(want) {
			t.Errorf("%s: zero input gives % x..., want % x...", typ, got[:min(len(got), 24)], want[:min(len(want), 24)])
		}
	}
}
