package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	ggml "github.com/kvgo/kvgo/quant"
)

// sameBits reports whether a and b are bit-identical.
func sameBits(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestKIVIResidualAndSealing stores tokens one step at a time and checks,
// after every step, which tokens are still exact: KIVI keeps the most
// recent R tokens in F16 (the paper's full precision) and quantizes whole
// groups of G, so after T tokens the first G·floor((T-R)/G) are quantized
// (when T >= R+G) and the rest are bit-identical to the F16 rounding of
// what was stored. Both keys and values.
func TestKIVIResidualAndSealing(t *testing.T) {
	for _, c := range []struct{ bits, G, R, d int }{
		{2, 32, 128, 32}, {4, 32, 128, 8}, {2, 16, 0, 24}, {2, 8, 5, 40},
	} {
		k, v := mustKIVI(t, c.bits, c.G, c.R)
		cache, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: c.d}, kv.Config{K: k, V: v}, 400)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(c.d), uint64(c.R)))
		const T = 300
		ks, vs := keyData(rng, T, c.d), valueData(rng, T, c.d)
		kd, vd := make([]float32, c.d), make([]float32, c.d)
		s := cache.Stream(0, 0)
		for n := 1; n <= T; n++ {
			cache.Begin([]int32{int32(n - 1)})
			cache.Store(0, ks[(n-1)*c.d:n*c.d], vs[(n-1)*c.d:n*c.d])
			cache.End()
			sealed := 0
			if n >= c.R+c.G {
				sealed = c.G * ((n - c.R) / c.G)
			}
			for i := 0; i < n; i++ {
				s.Vector(i, kd, vd)
				exactK := sameBits(kd, f16Round(ks[i*c.d:(i+1)*c.d]))
				exactV := sameBits(vd, f16Round(vs[i*c.d:(i+1)*c.d]))
				if i >= sealed && (!exactK || !exactV) {
					t.Fatalf("%s R=%d G=%d: after %d tokens, token %d (of the %d-token residual) is not exact", k.Name(), c.R, c.G, n, i, n-sealed)
				}
				if i < sealed && exactK && exactV {
					t.Fatalf("%s R=%d G=%d: after %d tokens, token %d should be quantized (%d sealed) but is exact", k.Name(), c.R, c.G, n, i, sealed)
				}
			}
		}
	}
}

// TestKIVIDeleteKeepsOthers evicts a few tokens from a KIVI stream (few
// enough that the stream does not re-encode sparse pages) and checks that
// every surviving token decodes bit-identically, quantized or residual.
func TestKIVIDeleteKeepsOthers(t *testing.T) {
	const d, T = 32, 260
	k, v := mustKIVI(t, 2, 32, 128)
	cache, _ := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}, kv.Config{K: k, V: v}, T)
	rng := rand.New(rand.NewPCG(21, 22))
	ks, vs := keyData(rng, T, d), valueData(rng, T, d)
	fillCache(t, cache, ks, vs, T)
	s := cache.Stream(0, 0)
	before := make([][2][]float32, T)
	for i := range before {
		before[i] = [2][]float32{make([]float32, d), make([]float32, d)}
		s.Vector(i, before[i][0], before[i][1])
	}
	b0 := s.Bytes()
	keep := make([]bool, T)
	var kept []int
	for i := range keep {
		keep[i] = i%37 != 5 // one token out of most groups and of the residual
		if keep[i] {
			kept = append(kept, i)
		}
	}
	s.Keep(keep)
	if s.Len() != len(kept) {
		t.Fatalf("Len %d after Keep, want %d", s.Len(), len(kept))
	}
	kd, vd := make([]float32, d), make([]float32, d)
	for j, i := range kept {
		s.Vector(j, kd, vd)
		if !sameBits(kd, before[i][0]) || !sameBits(vd, before[i][1]) {
			t.Fatalf("token %d changed when other tokens were deleted", i)
		}
		if s.Positions()[j] != int32(i) {
			t.Fatalf("token %d has position %d", i, s.Positions()[j])
		}
	}
	t.Logf("stream bytes %d -> %d after deleting %d of %d tokens", b0, s.Bytes(), T-len(kept), T)
}

// TestRobustness feeds every codec awkward head sizes and groups (odd,
// prime, smaller and larger than the group, not divisible by it) and
// hostile values (NaN, ±Inf, huge, tiny, zero blocks): nothing may panic,
// decoded values stay finite where the input is finite, and for ordinary
// inputs the round-trip bound holds.
func TestRobustness(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e30, -1e30, 1e-30, 0, 65504, -70000}
	for _, d := range []int{1, 3, 5, 8, 24, 33, 40} {
		for _, group := range []int{1, 3, 5, 7, 32, 64} {
			var codecs []kv.Codec
			for _, b := range blockCodecs(t, group) {
				codecs = append(codecs, b)
			}
			for _, bits := range []int{2, 4} {
				k, v := mustKIVI(t, bits, group, 4)
				codecs = append(codecs, k, v)
			}
			for _, c := range codecs {
				for _, hostile := range []bool{false, true} {
					n := 32
					if kk, ok := c.(KIVIKeys); ok {
						n = kk.Group()
					}
					x := kvData(rng, n, d)
					if hostile {
						for i := range x {
							if rng.IntN(5) == 0 {
								x[i] = special[rng.IntN(len(special))]
							}
						}
						if len(x) >= d {
							clear(x[:d]) // an all-zero token
						}
					}
					robustPage(t, c, d, n, x, hostile)
				}
			}
		}
	}
}

// robustPage exercises one page; for ordinary data it checks the bound.
func robustPage(t *testing.T, c kv.Codec, d, n int, x []float32, hostile bool) {
	t.Helper()
	p := c.NewPage(d, n)
	p.Append(x, n)
	got := make([]float32, d)
	for i := 0; i < n; i++ {
		p.Decode(i, got)
		for j, v := range got {
			in := x[i*d+j]
			if !hostile && (math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)) {
				t.Fatalf("%s d=%d: token %d value %d decodes to %g from %g", c.Name(), d, i, j, v, in)
			}
		}
		if bp, ok := p.(*blockPage); ok && !hostile {
			bound, _ := blockBounds(bp, x[i*d:(i+1)*d])
			for j, v := range got {
				if e := math.Abs(float64(v) - float64(x[i*d+j])); e > bound[j] {
					t.Fatalf("%s d=%d bs=%d: token %d value %d: %g, want %g ± %g", c.Name(), d, bp.bs, i, j, v, x[i*d+j], bound[j])
				}
			}
		}
	}
	if _, ok := p.(*kiviKeyPage); ok && !hostile {
		bits := c.(KIVIKeys).bits
		bound, _ := kiviKeyBounds(bits, x, n, d)
		for i := 0; i < n; i++ {
			p.Decode(i, got)
			for j, v := range got {
				if e := math.Abs(float64(v) - float64(x[i*d+j])); e > bound[j] {
					t.Fatalf("%s d=%d: token %d channel %d: %g, want %g ± %g", c.Name(), d, i, j, v, x[i*d+j], bound[j])
				}
			}
		}
	}
	const g = 3
	q := make([]float32, g*d)
	for i := range q {
		q[i] = float32(i%7) - 3
	}
	out := make([]float32, g*p.Len())
	p.Dot(q, g, out, nil)
	acc := make([]float32, g*d)
	p.AddWeighted(out, g, acc, nil)
	for p.Len() > 0 {
		p.Delete(p.Len() / 2)
	}
	if p.Len() != 0 || p.Bytes() < 0 {
		t.Fatalf("%s: Len %d, Bytes %d after deleting everything", c.Name(), p.Len(), p.Bytes())
	}
	p.Dot(q, g, out[:0], nil)
	p.AddWeighted(out[:0], g, acc, nil)
}

// FuzzCodecs decodes arbitrary bytes as a head size, a group, a codec and
// float32 values (NaN, Inf and subnormals included) and runs a page
// through Append, Decode, Dot, AddWeighted and Delete: nothing may panic,
// and for finite values within the F16 range the round-trip bound holds.
func FuzzCodecs(f *testing.F) {
	f.Add([]byte{8, 32, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{40, 32, 3, 0xff, 0x7f, 0x80, 0, 0, 0xc0, 0x7f, 1, 2})
	f.Add([]byte{33, 5, 7, 0, 0, 0x80, 0x7f, 0, 0, 0x80, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		d := 1 + int(data[0])%80
		group := 1 + int(data[1])%70
		sel := int(data[2]) % 9
		vals := data[3:]
		n := max(1, len(vals)/4/d)
		n = min(n, 40)
		x := make([]float32, n*d)
		finite := true
		for i := range x {
			j := (4 * i) % max(len(vals)-3, 1)
			var u uint32
			if len(vals) >= 4 {
				u = uint32(vals[j]) | uint32(vals[j+1])<<8 | uint32(vals[j+2])<<16 | uint32(vals[j+3])<<24
			}
			x[i] = math.Float32frombits(u ^ uint32(i)*0x9e3779b9)
			if v := float64(x[i]); math.IsNaN(v) || math.Abs(v) > 1e4 {
				finite = false
			}
		}
		var c kv.Codec
		switch sel {
		case 0, 1, 2, 3, 4:
			c = blockCodecs(t, group)[sel]
		case 5, 6:
			k, _ := mustKIVI(t, 2+2*(sel-5), group, 0)
			c = k
			n = min(n, k.Group())
			x = x[:n*d]
		default:
			_, v := mustKIVI(t, 2+2*(sel-7), group, 0)
			c = v
		}
		robustPage(t, c, d, n, x, !finite)
	})
}

// f16Round returns x rounded to F16 and back, what a stream's tail holds.
func f16Round(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = ggml.F16ToF32(ggml.F32ToF16(v))
	}
	return out
}
