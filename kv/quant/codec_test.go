package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// f16Rel bounds the relative change of a scale or minimum by directed
// rounding to F16 (10 mantissa bits); f16Abs is the spacing of subnormal
// halves, the absolute floor of that rounding.
const (
	f16Rel = 1.0 / 1024
	f16Abs = 1.0 / (1 << 24)
)

// blockBounds returns, for every value of one token, the largest
// round-trip error the block format allows, computed from the original
// values of each block (never from the page's stored scales, so a wrong
// stored scale fails the test):
//
//   - asym: half a step, step = (max-min)/(2^bits-1), widened by the F16
//     rounding of scale and minimum;
//   - Q8_0: half a step, step = max|x|/127;
//   - Q4_0: half a step, step = |m|/8 for the signed extreme m, except a
//     full step for values beyond 7.5 steps on the side opposite m (ggml's
//     16th level sits on m's side).
//
// Each bound also gets 1e-6 of the block's largest magnitude for float32
// rounding. It returns the steps too, for reporting errors in steps.
func blockBounds(p *blockPage, x []float32) (bound, step []float64) {
	bound = make([]float64, len(x))
	step = make([]float64, len(x))
	bs := int(p.bs)
	qmax := float64(int(1)<<p.bits - 1)
	for b := 0; b < p.nb(); b++ {
		blk := x[b*bs : (b+1)*bs]
		mn, mx, amax := math.Inf(1), math.Inf(-1), 0.0
		var m float64
		for _, v := range blk {
			f := float64(v)
			mn, mx = math.Min(mn, f), math.Max(mx, f)
			if math.Abs(f) > amax {
				amax, m = math.Abs(f), f
			}
		}
		for c, v := range blk {
			f := float64(v)
			var st, bd float64
			switch {
			case p.asym():
				st = ((mx-mn)+math.Abs(mn)*f16Rel+f16Abs)/qmax*(1+f16Rel) + f16Abs
				bd = st / 2
			case p.signed():
				st = amax/127*(1+f16Rel) + f16Abs
				bd = st / 2
			default:
				st = amax/8*(1+f16Rel) + f16Abs
				bd = st / 2
				if f*m < 0 && math.Abs(f) > 7.49*amax/8 {
					bd = st
				}
			}
			step[b*bs+c] = st
			bound[b*bs+c] = bd + 1e-6*amax
		}
	}
	return bound, step
}

// TestBlockRoundTrip encodes data with outliers and checks every decoded
// value against its block's bound, for head sizes 8..128 and groups that
// divide the head, exceed it (shrink) or do not divide it (fallback).
func TestBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []int{8, 32, 64, 128, 24, 40} {
		for _, group := range []int{32, 16, 8, 64, 5} {
			for _, c := range blockCodecs(t, group) {
				name := fmt.Sprintf("%s/d=%d", c.Name(), d)
				const n = 32
				x := kvData(rng, n, d)
				p := c.NewPage(d, n).(*blockPage)
				if want := BlockSize(d, group); int(p.bs) != want || d%int(p.bs) != 0 {
					t.Fatalf("%s: block size %d, want %d", name, p.bs, want)
				}
				p.Append(x, n)
				if p.Len() != n {
					t.Fatalf("%s: Len %d after %d appends", name, p.Len(), n)
				}
				got := make([]float32, d)
				worst := 0.0 // largest error in steps
				for i := 0; i < n; i++ {
					xi := x[i*d : (i+1)*d]
					p.Decode(i, got)
					bound, step := blockBounds(p, xi)
					for j := range got {
						e := math.Abs(float64(got[j]) - float64(xi[j]))
						if e > bound[j] || math.IsNaN(e) {
							t.Fatalf("%s: token %d value %d: decoded %g, want %g ± %g", name, i, j, got[j], xi[j], bound[j])
						}
						worst = math.Max(worst, e/step[j])
					}
				}
				if d == 128 && group == 32 {
					t.Logf("%-8s d=%d group=%d: worst error %.3f steps", c.Name(), d, group, worst)
				}
			}
		}
	}
}

// TestBlockSize checks the shrink and fallback rule.
func TestBlockSize(t *testing.T) {
	cases := []struct{ d, group, want int }{
		{128, 32, 32}, {64, 32, 32}, {32, 32, 32}, {8, 32, 8}, {24, 32, 24},
		{40, 32, 20}, {40, 16, 10}, {96, 64, 48}, {7, 4, 1}, {128, 1, 1}, {1, 32, 1},
	}
	for _, c := range cases {
		if got := BlockSize(c.d, c.group); got != c.want {
			t.Errorf("BlockSize(%d, %d) = %d, want %d", c.d, c.group, got, c.want)
		}
	}
}

// kiviKeyBounds is the per-channel analogue of blockBounds for a KIVI key
// page of n tokens: half a step of each channel's (max-min)/(2^bits-1).
func kiviKeyBounds(bits int, x []float32, n, d int) (bound, step []float64) {
	qmax := float64(int(1)<<bits - 1)
	bound = make([]float64, d)
	step = make([]float64, d)
	for c := 0; c < d; c++ {
		mn, mx, amax := math.Inf(1), math.Inf(-1), 0.0
		for i := 0; i < n; i++ {
			f := float64(x[i*d+c])
			mn, mx, amax = math.Min(mn, f), math.Max(mx, f), math.Max(amax, math.Abs(f))
		}
		step[c] = ((mx-mn)+math.Abs(mn)*f16Rel+f16Abs)/qmax*(1+f16Rel) + f16Abs
		bound[c] = step[c]/2 + 1e-6*amax
	}
	return bound, step
}

// TestKIVIKeyRoundTrip checks per-channel key groups against their bound.
func TestKIVIKeyRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, bits := range []int{2, 4} {
		for _, d := range []int{8, 32, 64, 128, 24} {
			for _, G := range []int{32, 16, 1, 7} {
				k, _ := mustKIVI(t, bits, G, 128)
				x := kvData(rng, G, d)
				p := k.NewPage(d, G)
				p.Append(x, G)
				bound, step := kiviKeyBounds(bits, x, G, d)
				got := make([]float32, d)
				worst := 0.0
				for i := 0; i < G; i++ {
					p.Decode(i, got)
					for c := range got {
						e := math.Abs(float64(got[c]) - float64(x[i*d+c]))
						if e > bound[c] || math.IsNaN(e) {
							t.Fatalf("%s d=%d: token %d channel %d: decoded %g, want %g ± %g", k.Name(), d, i, c, got[c], x[i*d+c], bound[c])
						}
						worst = math.Max(worst, e/step[c])
					}
				}
				if d == 128 && G == 32 {
					t.Logf("%s d=%d G=%d: worst error %.3f steps", k.Name(), d, G, worst)
				}
			}
		}
	}
}

type namedPage struct {
	name string
	p    kv.Page
}

// allPages builds one filled page of every codec (KIVI: key and value
// pages) at head size d, in a fixed order so the tests are deterministic.
func allPages(t testing.TB, rng *rand.Rand, d, group int) []namedPage {
	var pages []namedPage
	add := func(c kv.Codec, n int) {
		p := c.NewPage(d, n)
		p.Append(kvData(rng, n, d), n)
		pages = append(pages, namedPage{c.Name(), p})
	}
	for _, c := range blockCodecs(t, group) {
		add(c, 32)
	}
	add(Block{}, 32)
	for _, bits := range []int{2, 4} {
		k, v := mustKIVI(t, bits, group, 128)
		add(k, group)
		add(v, group)
	}
	add(F32{}, 32)
	add(F16{}, 32)
	return pages
}

// TestDotAndAddWeightedMatchDecoded proves that attention reads the codes
// correctly: Dot and AddWeighted computed from the codes (scales folded,
// codes unpacked once per token) equal the same operations on the Decoded
// vectors to float32 rounding: 1e-5 of Σ_c |q_c|·max_i|k_ic| (the page's
// channel magnitudes, the scale of the terms a folded sum adds up). KIVI's
// key Dot also rounds the folded query q_c·s_c to 16 bits: that adds at
// most half a step, max_c|q_c·s_c|/65534, per code unit, and with
// s_c·(2^b-1) <= 2.1·max_i|k_ic| that is max_c(|q_c|·max_i|k_ic|)·
// 2.1·d/65534 at most.
func TestDotAndAddWeightedMatchDecoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, d := range []int{8, 32, 64, 128, 40} {
		for _, group := range []int{32, 16} {
			for _, np := range allPages(t, rng, d, group) {
				name, p := np.name, np.p
				n := p.Len()
				dec := make([]float32, n*d)
				chanMax := make([]float32, d)
				for i := 0; i < n; i++ {
					p.Decode(i, dec[i*d:(i+1)*d])
					for c, v := range dec[i*d : (i+1)*d] {
						chanMax[c] = max(chanMax[c], abs(v))
					}
				}
				for _, g := range []int{1, 3, 7} {
					q := kvData(rng, g, d)
					out := make([]float32, g*n)
					p.Dot(q, g, out, nil)
					for j := 0; j < g; j++ {
						for i := 0; i < n; i++ {
							qj, ki := q[j*d:(j+1)*d], dec[i*d:(i+1)*d]
							want := dot64(qj, ki)
							tol := 1e-5*absDot(qj, chanMax) + 1e-30
							if strings.HasPrefix(name, "kivi-k") {
								tol += maxProd(qj, chanMax) * 2.1 * float64(d) / 65534
							}
							if e := math.Abs(float64(out[j*n+i]) - want); e > tol {
								t.Fatalf("%s d=%d g=%d: Dot[%d,%d] = %g, decoded gives %g", name, d, g, j, i, out[j*n+i], want)
							}
						}
					}
					w := make([]float32, g*n)
					for i := range w {
						if rng.IntN(4) != 0 { // a quarter masked
							w[i] = rng.Float32()
						}
					}
					acc := kvData(rng, g, d)
					want := make([]float64, g*d)
					scale := make([]float64, g*d)
					for j := 0; j < g; j++ {
						for c := 0; c < d; c++ {
							s, a := float64(acc[j*d+c]), math.Abs(float64(acc[j*d+c]))
							for i := 0; i < n; i++ {
								s += float64(w[j*n+i]) * float64(dec[i*d+c])
								a += math.Abs(float64(w[j*n+i]) * float64(chanMax[c]))
							}
							want[j*d+c], scale[j*d+c] = s, a
						}
					}
					p.AddWeighted(w, g, acc, nil)
					for i, v := range acc {
						if e := math.Abs(float64(v) - want[i]); e > 1e-5*scale[i]+1e-30 {
							t.Fatalf("%s d=%d g=%d: AddWeighted[%d] = %g, decoded gives %g", name, d, g, i, v, want[i])
						}
					}
				}
			}
		}
	}
}

// TestNoAllocs: attention must not allocate per page once the worker's
// scratch has grown.
func TestNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const d, g = 128, 7
	q := kvData(rng, g, d)
	for _, np := range allPages(t, rng, d, 32) {
		name, p := np.name, np.p
		n := p.Len()
		out := make([]float32, g*n)
		acc := make([]float32, g*d)
		var sc kv.PageScratch
		allocs := testing.AllocsPerRun(20, func() {
			p.Dot(q, g, out, &sc)
			p.AddWeighted(out, g, acc, &sc)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Dot+AddWeighted", name, allocs)
		}
	}
}

// TestBytesPerToken checks that Bytes is what the format implies: codes
// plus F16 scales, for full pages at d = 32, 64, 128 (group 32), and that a
// head smaller than the group (d=8) pays one scale per token.
func TestBytesPerToken(t *testing.T) {
	q8, _ := NewBlock(8, 32, false)
	q8a, _ := NewBlock(8, 32, true)
	q4, _ := NewBlock(4, 32, false)
	q4a, _ := NewBlock(4, 32, true)
	k2, v2 := mustKIVI(t, 2, 32, 128)
	k4, v4 := mustKIVI(t, 4, 32, 128)
	// want bytes per token as a function of d (d a multiple of 32).
	cases := []struct {
		c    kv.Codec
		want func(d int) int
	}{
		{F32{}, func(d int) int { return 4 * d }},
		{F16{}, func(d int) int { return 2 * d }},
		{q8, func(d int) int { return d + 2*d/32 }},
		{q8a, func(d int) int { return d + 4*d/32 }},
		{q4, func(d int) int { return d/2 + 2*d/32 }},
		{q4a, func(d int) int { return d/2 + 4*d/32 }},
		{k2, func(d int) int { return d/4 + 4*d/32 }}, // 2d F16 per-channel words over G=32 tokens
		{v2, func(d int) int { return d/4 + 4*d/32 }},
		{k4, func(d int) int { return d/2 + 4*d/32 }},
		{v4, func(d int) int { return d/2 + 4*d/32 }},
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, d := range []int{32, 64, 128} {
		line := fmt.Sprintf("d=%d:", d)
		for _, c := range cases {
			n := 32
			p := c.c.NewPage(d, n)
			p.Append(kvData(rng, n, d), n)
			if got := p.Bytes(); got != int64(n*c.want(d)) {
				t.Errorf("%s d=%d: %d bytes for %d tokens, want %d per token", c.c.Name(), d, got, n, c.want(d))
			}
			line += fmt.Sprintf(" %s %d", c.c.Name(), p.Bytes()/int64(n))
		}
		t.Log(line)
	}
	// stories260K: head of 8, one block per token.
	for _, c := range []struct {
		c    kv.Codec
		want int
	}{{q8, 8 + 2}, {q8a, 8 + 4}, {q4, 4 + 2}, {q4a, 4 + 4}, {v2, 2 + 4}} {
		p := c.c.NewPage(8, 32)
		p.Append(kvData(rng, 32, 8), 32)
		if got := p.Bytes(); got != int64(32*c.want) {
			t.Errorf("%s d=8: %d bytes per 32 tokens, want %d per token", c.c.Name(), got, c.want)
		}
	}
}

// TestDeleteFreesAndKeepsOthersExact deletes tokens from every page:
// the remaining tokens decode bit-identically (KIVI keys keep the group's
// scales), and once fewer than half remain the page's Bytes shrink.
func TestDeleteFreesAndKeepsOthersExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const d = 128
	for _, np := range allPages(t, rng, d, 32) {
		name, p := np.name, np.p
		n := p.Len()
		before := make([][]float32, n)
		for i := range before {
			before[i] = make([]float32, d)
			p.Decode(i, before[i])
		}
		b0 := p.Bytes()
		alive := make([]int, n) // original index of each stored token
		for i := range alive {
			alive[i] = i
		}
		for len(alive) > n/2-4 {
			i := rng.IntN(len(alive))
			p.Delete(i)
			alive = append(alive[:i], alive[i+1:]...)
			if p.Len() != len(alive) {
				t.Fatalf("%s: Len %d after delete, want %d", name, p.Len(), len(alive))
			}
		}
		got := make([]float32, d)
		for i, orig := range alive {
			p.Decode(i, got)
			for c := range got {
				if math.Float32bits(got[c]) != math.Float32bits(before[orig][c]) {
					t.Fatalf("%s: token %d changed after deleting others: %g, was %g", name, orig, got[c], before[orig][c])
				}
			}
		}
		if p.Bytes() >= b0 {
			t.Errorf("%s: %d bytes after deleting %d of %d tokens, %d before", name, p.Bytes(), n-len(alive), n, b0)
		}
	}
}

// TestMethods checks every recipe entry builds with its defaults and with
// each choice, and that invalid values are rejected.
func TestMethods(t *testing.T) {
	for _, m := range Methods {
		a := kv.Args{}
		for _, p := range m.Params {
			v, err := p.Parse(p.Default)
			if err != nil {
				t.Fatalf("%s: default %s=%q: %v", m.Name, p.Name, p.Default, err)
			}
			a[p.Name] = v
		}
		k, v, err := m.NewCodec(a)
		if err != nil || k == nil || v == nil {
			t.Fatalf("%s: NewCodec with defaults: %v", m.Name, err)
		}
		if m.Summary == "" || m.Paper == "" {
			t.Errorf("%s: missing summary or paper", m.Name)
		}
		t.Logf("%s -> %s / %s", m.Name, k.Name(), v.Name())
	}
	if _, _, err := NewKIVI(3, 32, 128); err == nil {
		t.Error("kivi bits=3 accepted")
	}
	if _, err := NewBlock(2, 32, false); err == nil {
		t.Error("symmetric 2-bit blocks accepted")
	}
	if _, err := NewBlock(8, 0, false); err == nil {
		t.Error("group 0 accepted")
	}
}
