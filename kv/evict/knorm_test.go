package evict

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// normPattern: noise keys whose amplitude varies from token to token (1
// to 10.6), so key norms are spread and distinct, and the smallest ones
// are scattered over the prompt, not at one end of it.
var normPattern = pattern{
	key: func(l, h, p int) []float32 {
		return noise(seed(l, h, p), 1+float32(mix(seed(l, h, p)+7)%97)/10)
	},
	query: func(l, h, p int) []float32 { return noise(seed(l, h, p)+1<<50, 10) },
}

// smallestNorms returns the positions of the b smallest of keys (by
// position), sorted, and the gap between the b-th and the (b+1)-th
// smallest norm.
func smallestNorms(keys map[int][]float32, b int) ([]int, float64) {
	type kn struct {
		p int
		n float64
	}
	var all []kn
	for p, k := range keys {
		var ss float64
		for _, x := range k {
			ss += float64(x) * float64(x)
		}
		all = append(all, kn{p, math.Sqrt(ss)})
	}
	slices.SortFunc(all, func(a, b kn) int {
		if a.n < b.n {
			return -1
		}
		if a.n > b.n {
			return 1
		}
		return a.p - b.p
	})
	var keep []int
	for _, x := range all[:b] {
		keep = append(keep, x.p)
	}
	slices.Sort(keep)
	return keep, all[b].n - all[b-1].n
}

// TestKNormKeepsSmallestNorms: after the prompt each stream holds exactly
// the budget's tokens of smallest key norm, computed here from the keys
// the pattern wrote; nothing protects the first or the last tokens; every
// generated token is kept.
func TestKNormKeepsSmallestNorms(t *testing.T) {
	const layers, heads, n, budget = 2, 3, 80, 12
	e := NewKNorm(tokens(budget))
	if e.Window() != 0 || e.StepStats() || e.Bound() != (kv.Bound{Budget: tokens(budget)}) {
		t.Fatalf("knorm: window %d, step stats %v, bound %+v", e.Window(), e.StepStats(), e.Bound())
	}
	r := newRig(t, layers, heads, 2, e, normPattern)
	r.prefill(n)
	recency := rangeInts(n-budget, n)
	for l := 0; l < layers; l++ {
		for h := 0; h < heads; h++ {
			keys := map[int][]float32{}
			for p := 0; p < n; p++ {
				keys[p] = normPattern.key(l, h, p)
			}
			want, gap := smallestNorms(keys, budget)
			if gap < 1e-3 {
				t.Fatalf("layer %d head %d: norms %g apart at the cut; the pattern should separate them", l, h, gap)
			}
			got := r.positions(l, h)
			if !slices.Equal(got, want) {
				t.Fatalf("layer %d head %d keeps %v, want the smallest norms %v", l, h, got, want)
			}
			if slices.Equal(got, recency) || got[0] == 0 && got[budget-1] == n-1 {
				t.Fatalf("layer %d head %d: %v does not tell the norm rule from recency or sinks", l, h, got)
			}
		}
	}
	// The heads rank their own keys: they keep different tokens.
	if slices.Equal(r.positions(0, 0), r.positions(0, 1)) {
		t.Fatalf("heads 0 and 1 keep the same tokens %v", r.positions(0, 0))
	}
	for i := 1; i <= 5; i++ {
		r.step()
		if got := r.c.Stream(1, 2).Len(); got != budget+i {
			t.Fatalf("after %d steps a stream holds %d tokens, want %d", i, got, budget+i)
		}
	}
}

// TestKNormReadsTheCodec: keys are ranked as the cache stores them,
// decoded from a 4-bit codec, with a fractional budget.
func TestKNormReadsTheCodec(t *testing.T) {
	const heads, n = 2, 64
	q4, err := kvquant.NewBlock(4, 16, false)
	if err != nil {
		t.Fatal(err)
	}
	shape := kv.Shape{Layers: 1, KVHeads: heads, HeadDim: dim}
	c, err := kv.New(shape, kv.Config{K: q4, V: q4, Evictor: NewKNorm(kv.Budget{Fraction: 0.25})}, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, c: c, shape: shape, g: 1, pat: normPattern, sc: kv.NewScratch(1), out: make([]float32, dim)}
	r.prefill(n)
	for h := 0; h < heads; h++ {
		keys := map[int][]float32{}
		for p := 0; p < n; p++ {
			page := q4.NewPage(dim, 1)
			page.Append(normPattern.key(0, h, p), 1)
			k := make([]float32, dim)
			page.Decode(0, k)
			keys[p] = k
		}
		want, _ := smallestNorms(keys, n/4)
		if got := r.positions(0, h); !slices.Equal(got, want) {
			t.Fatalf("head %d keeps %v, want the smallest decoded norms %v", h, got, want)
		}
	}
}

// BenchmarkKNormScore times scoring one stream of n tokens (head size 128,
// f16 pages), once per prompt; ns/token is the cost per prompt token.
func BenchmarkKNormScore(b *testing.B) {
	for _, n := range []int{2048, 8192, 32768} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			const d = 128
			c, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, n)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			k := make([]float32, 512*d)
			for i := range k {
				k[i] = float32(rng.NormFloat64())
			}
			for start := 0; start < n; start += 512 {
				pos := make([]int32, 512)
				for i := range pos {
					pos[i] = int32(start + i)
				}
				if err := c.Begin(pos); err != nil {
					b.Fatal(err)
				}
				c.Store(0, k, k)
				c.End()
			}
			s := c.Stream(0, 0)
			e := &KNorm{}
			dst := make([]float32, n)
			b.ResetTimer()
			for range b.N {
				e.Score(s, dst)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/token")
		})
	}
}
