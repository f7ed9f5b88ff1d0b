package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// TestBlockRunsMatchPerToken checks blockPage's run-at-a-time Dot and
// AddWeighted against the per-token reference: every token decoded with
// Decode, dot products and weighted sums in float64. Every score is
// compared at its own (head, token), so a score written with a run's
// stride instead of the page's, or into another run's columns, or a run
// read from the wrong rows, fails.
//
// Page lengths end runs inside the page and leave a short last run; runs
// are decoded with one DequantBlocks call (blocks of 8, 16 or 32 values)
// or token by token (blocks of 4 or 20 values, whose scales overflow the
// run's stack buffer or whose 4-bit blocks are not byte-aligned, and a
// head too large for the stack runs); at d=8 and 300 tokens the scores of
// a run take more than one DotsGroup call. Weights are zero for single (head, token) pairs, for
// tokens in no head, for a whole run (skipped), for the first run in the
// first head only, and for the masked tail of future tokens.
//
// The tolerance is 1e-6 (~16 float32 roundings) of the magnitude of the
// terms summed: |q_c| or |w_i| times the largest |value| of the token's
// block, which bounds the scaled codes and the asym minimums that the
// sums add up.
func TestBlockRunsMatchPerToken(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	type shape struct{ d, n, group int }
	shapes := []shape{
		{8, 40, 32}, {8, 300, 32}, {32, 40, 32}, {32, 150, 32}, {64, 40, 32}, {64, 70, 32},
		{128, 40, 32}, {128, 33, 32}, {128, 35, 16}, {64, 40, 8},
		{8, 300, 4}, {40, 60, 32}, {80, 40, 32}, {64, 40, 4}, // decoded: blocks of 4 or 20
		{4096, 3, 32}, // decoded: larger than the stack runs
	}
	for _, s := range shapes {
		d, n := s.d, s.n
		for _, b := range blockCodecs(t, s.group) {
			p := b.NewPage(d, n).(*blockPage)
			p.Append(valueData(rng, n, d), n)
			if p.Len() != n {
				t.Fatalf("%s d=%d: Len %d after appending %d", b.Name(), d, p.Len(), n)
			}
			bs := int(p.bs)
			dec := make([]float64, n*d)
			bmax := make([]float64, n*d) // largest |value| of the block of (i, c)
			row := make([]float32, d)
			for i := 0; i < n; i++ {
				p.Decode(i, row)
				for c, v := range row {
					dec[i*d+c] = float64(v)
				}
				for b0 := 0; b0 < d; b0 += bs {
					var m float64
					for _, v := range dec[i*d+b0 : i*d+b0+bs] {
						m = math.Max(m, math.Abs(v))
					}
					for c := b0; c < b0+bs; c++ {
						bmax[i*d+c] = m
					}
				}
			}
			for _, g := range []int{1, 3, 7, 9} {
				name := fmt.Sprintf("%s d=%d n=%d g=%d (blocks of %d, run %d)", b.Name(), d, n, g, bs, runOf(d))
				checkRunDot(t, name, p, rng, dec, bmax, d, n, g)
				checkRunAddWeighted(t, name, p, rng, dec, bmax, d, n, g)
			}
		}
	}
}

func checkRunDot(t *testing.T, name string, p *blockPage, rng *rand.Rand, dec, bmax []float64, d, n, g int) {
	t.Helper()
	q := keyData(rng, g, d)
	out := make([]float32, g*n+1)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	const sentinel = 12345
	out[g*n] = sentinel
	p.Dot(q, g, out[:g*n], nil)
	if out[g*n] != sentinel {
		t.Fatalf("%s: Dot wrote past g·n", name)
	}
	for j := 0; j < g; j++ {
		for i := 0; i < n; i++ {
			var want, mag float64
			for c := 0; c < d; c++ {
				qc := float64(q[j*d+c])
				want += qc * dec[i*d+c]
				mag += math.Abs(qc) * bmax[i*d+c]
			}
			got := float64(out[j*n+i])
			if e := math.Abs(got - want); !(e <= 1e-6*mag+1e-30) {
				t.Fatalf("%s: Dot[head %d, token %d] = %g, per-token reference %g (error %.2g of %.2g)", name, j, i, got, want, e, mag)
			}
		}
	}
}

func checkRunAddWeighted(t *testing.T, name string, p *blockPage, rng *rand.Rand, dec, bmax []float64, d, n, g int) {
	t.Helper()
	run := runOf(d)
	w := make([]float32, g*n)
	for j := 0; j < g; j++ {
		for i := 0; i < n; i++ {
			if rng.IntN(5) != 0 { // a fifth of the (head, token) pairs are zero
				w[j*n+i] = rng.Float32()
			}
		}
	}
	mask := func(i int) { // token i has no weight in any head
		for j := 0; j < g; j++ {
			w[j*n+i] = 0
		}
	}
	for i := 0; i < n; i += 7 {
		mask(i)
	}
	if n > 2*run { // the second run entirely
		for i := run; i < 2*run; i++ {
			mask(i)
		}
	}
	for i := n - n/4; i < n; i++ { // future tokens
		mask(i)
	}
	for i := 0; i < min(run, n); i++ { // the first run in head 0 only
		w[i] = 0
	}
	const sentinel = 12345
	acc := append(kvData(rng, g, d), sentinel)
	want := make([]float64, g*d)
	mag := make([]float64, g*d)
	for j := 0; j < g; j++ {
		for c := 0; c < d; c++ {
			s := float64(acc[j*d+c])
			a := math.Abs(s)
			for i := 0; i < n; i++ {
				wi := float64(w[j*n+i])
				s += wi * dec[i*d+c]
				a += wi * bmax[i*d+c]
			}
			want[j*d+c], mag[j*d+c] = s, a
		}
	}
	p.AddWeighted(w, g, acc[:g*d], nil)
	if acc[g*d] != sentinel {
		t.Fatalf("%s: AddWeighted wrote past g·d", name)
	}
	for k, wv := range want {
		got := float64(acc[k])
		if e := math.Abs(got - wv); !(e <= 1e-6*mag[k]+1e-30) {
			t.Fatalf("%s: AddWeighted[head %d, channel %d] = %g, per-token reference %g (error %.2g of %.2g)", name, k/d, k%d, got, wv, e, mag[k])
		}
	}
}

// TestBlockRunsMaskedScale: a masked token whose input held a NaN adds
// nothing, on both ways of reading a page (code domain, d=64, and
// decoded, d=40): the code domain multiplies weights by scales, which
// must then be finite.
func TestBlockRunsMaskedScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, s := range []struct{ d, group int }{{64, 32}, {40, 32}} {
		for _, b := range blockCodecs(t, s.group) {
			const n, g = 20, 3
			d := s.d
			x := valueData(rng, n, d)
			x[5*d+1] = float32(math.NaN())
			p := b.NewPage(d, n)
			p.Append(x, n)
			w := make([]float32, g*n)
			for j := 0; j < g; j++ {
				for i := 0; i < n; i++ {
					if i != 5 {
						w[j*n+i] = 0.05
					}
				}
			}
			acc := make([]float32, g*d)
			p.AddWeighted(w, g, acc, nil)
			for k, v := range acc {
				if v != v || math.IsInf(float64(v), 0) {
					t.Fatalf("%s d=%d: AddWeighted[%d] = %g with the NaN token masked", b.Name(), d, k, v)
				}
			}
		}
	}
}

// TestBlockRunsNoAllocs: reading a page in runs, with several runs (d=8,
// 300 tokens, 9 heads) and token-by-token runs (blocks of 4 and 20),
// allocates nothing once the worker's scratch has grown.
func TestBlockRunsNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, s := range []struct{ d, n, g, group int }{
		{8, 300, 9, 32}, {64, 70, 1, 32}, {64, 70, 7, 32}, {128, 40, 3, 32}, {128, 40, 9, 32},
		{8, 300, 9, 4}, {80, 40, 7, 32},
	} {
		for _, b := range blockCodecs(t, s.group) {
			p := b.NewPage(s.d, s.n)
			p.Append(valueData(rng, s.n, s.d), s.n)
			q := keyData(rng, s.g, s.d)
			out := make([]float32, s.g*s.n)
			acc := make([]float32, s.g*s.d)
			var sc kv.PageScratch
			allocs := testing.AllocsPerRun(20, func() {
				p.Dot(q, s.g, out, &sc)
				p.AddWeighted(out, s.g, acc, &sc)
			})
			if allocs != 0 {
				t.Errorf("%s d=%d n=%d g=%d: %v allocations per Dot+AddWeighted", b.Name(), s.d, s.n, s.g, allocs)
			}
		}
	}
}

// runOf is the number of tokens of a run at head size d.
func runOf(d int) int {
	return min(runMax, max(1, runFloats/d))
}
