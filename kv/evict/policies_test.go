package evict

import (
	"math"
	"slices"
	"testing"
)

// --- TOVA ---

// tovaPattern: token 0 is a sink (axis 0); head 0's needle is 20 and head
// 1's is 40 (axis 1). The last prompt query (63) points at axis 1 and a
// little at axis 0; decode queries are noise of a larger amplitude so that
// attention varies from step to step.
var tovaPattern = pattern{
	key: func(l, h, p int) []float32 {
		switch {
		case p == 0:
			return spike(seed(l, h, p), 0, 6)
		case p == 20 && h == 0, p == 40 && h == 1:
			return spike(seed(l, h, p), 1, 6)
		}
		return noise(seed(l, h, p), 10)
	},
	query: func(l, h, p int) []float32 {
		if p == 63 {
			q := spike(seed(l, h, p), 1, 4)
			q[0] += 2
			return q
		}
		return noise(seed(l, h, p)+1<<50, 10)
	},
}

func TestTOVALayerwise(t *testing.T) {
	r := newRig(t, 2, 2, 2, NewTOVA(tokens(8)), tovaPattern)
	r.prefill(64)
	for l, p := range r.checkAligned() {
		if len(p) != 8 || !contains(p, 0, 20, 40) {
			t.Fatalf("layer %d keeps %v, want 8 tokens with 0, 20 and 40", l, p)
		}
	}
	for i := 0; i < 30; i++ {
		// Predict per layer: the token with the lowest attention of this
		// step, summed over the layer's heads, leaves every stream.
		var want [2][]int
		var margin [2]float64
		for l := 0; l < 2; l++ {
			all := append(r.positions(l, 0), r.next)
			score := make([]float64, len(all))
			for h := 0; h < 2; h++ {
				for j, p := range r.probs(l, h, r.next, all) {
					score[j] += p
				}
			}
			lo := 0
			for j := range score {
				if score[j] < score[lo] {
					lo = j
				}
			}
			margin[l] = math.Inf(1)
			for j := range score {
				if j != lo {
					margin[l] = min(margin[l], score[j]-score[lo])
				}
			}
			want[l] = slices.Delete(all, lo, lo+1)
		}
		r.step()
		for l, p := range r.checkAligned() {
			if len(p) != 8 {
				t.Fatalf("step %d layer %d holds %d tokens", i, l, len(p))
			}
			if !slices.Equal(p, want[l]) && margin[l] > 1e-5 {
				t.Fatalf("step %d layer %d keeps %v, want %v", i, l, p, want[l])
			}
		}
	}
}

// --- SnapKV ---

// needlePattern: token 0 is a sink (axis 0) that every query before the
// observation window (the last 8 of 128) points at; the window's queries
// point at axis 1, where head h's needle lies (50 for head 0, 80 for head
// 1).
func needleOf(h int) int { return 50 + 30*(h%2) }

var needlePattern = pattern{
	key: func(l, h, p int) []float32 {
		switch p {
		case 0:
			return spike(seed(l, h, p), 0, 6)
		case needleOf(h):
			return spike(seed(l, h, p), 1, 6)
		}
		return noise(seed(l, h, p), 1)
	},
	query: func(l, h, p int) []float32 {
		if p >= 120 {
			return spike(seed(l, h, p)+1<<50, 1, 6)
		}
		return spike(seed(l, h, p)+1<<50, 0, 4)
	},
}

func TestSnapKVKeepsNeedleAndWindow(t *testing.T) {
	for _, pool := range []string{"max", "avg"} {
		e := NewSnapKV(tokens(15), 8, 7, pool)
		r := newRig(t, 1, 2, 2, e, needlePattern)
		r.prefill(128)
		for h := 0; h < 2; h++ {
			// The needle, its pooling neighbours and the window: the sink,
			// which every earlier query attends, is not kept, because only
			// the window's attention counts.
			nd := needleOf(h)
			want := union(rangeInts(nd-3, nd+4), rangeInts(120, 128))
			if p := r.positions(0, h); !slices.Equal(p, want) {
				t.Fatalf("pool %s head %d keeps %v, want %v", pool, h, p, want)
			}
		}
		// Prefill only: decode keeps every new token.
		for i := 1; i <= 5; i++ {
			r.step()
			if n := r.c.Stream(0, 0).Len(); n != 15+i {
				t.Fatalf("pool %s: after %d steps %d tokens, want %d", pool, i, n, 15+i)
			}
		}
	}
}

func TestSnapKVWindowLargerThanBudget(t *testing.T) {
	e := NewSnapKV(tokens(6), 8, 1, "max")
	r := newRig(t, 1, 2, 2, e, needlePattern)
	r.prefill(128)
	for h := 0; h < 2; h++ {
		p := r.positions(0, h)
		// Half the budget stays the window's tail; the needle is the best
		// of the rest.
		if len(p) != 6 || !contains(p, needleOf(h), 125, 126, 127) {
			t.Fatalf("head %d keeps %v, want 6 tokens with the needle and the last 3", h, p)
		}
	}
}

// --- PyramidKV ---

func TestPyramidBudgets(t *testing.T) {
	cases := []struct {
		b, n, layers int
		beta         float64
	}{
		{64, 512, 8, 20}, {64, 512, 32, 20}, {24, 128, 4, 20}, {64, 100, 8, 20},
		{100, 4096, 22, 5}, {10, 64, 12, 20}, {64, 512, 8, 1}, {3, 200, 6, 20},
	}
	for _, c := range cases {
		p := NewPyramidKV(tokens(c.b), 8, 7, "max", c.beta)
		var bs []int
		sum := 0
		for l := 0; l < c.layers; l++ {
			b := p.LayerBudget(c.b, c.n, l, c.layers)
			bs = append(bs, b)
			sum += b
			if b < 1 || b > c.n {
				t.Errorf("%+v: layer %d budget %d", c, l, b)
			}
			if l > 0 && b > bs[l-1] {
				t.Errorf("%+v: budgets increase with depth: %v", c, bs)
			}
		}
		if sum != c.b*c.layers {
			t.Errorf("%+v: budgets %v average %g, want %d", c, bs, float64(sum)/float64(c.layers), c.b)
		}
		if c.beta == 1 && bs[0] != bs[c.layers-1] {
			t.Errorf("%+v: beta 1 should be uniform: %v", c, bs)
		}
		if c.beta > 1 && c.b > 8 && bs[0] <= bs[c.layers-1] {
			t.Errorf("%+v: budgets do not fall with depth: %v", c, bs)
		}
	}
	// The paper's shape: with beta 20 the top layer selects about 1/20 of
	// the mean selection and the bottom one about twice it.
	p := NewPyramidKV(tokens(72), 8, 7, "max", 20)
	if top, bottom := p.LayerBudget(72, 4096, 31, 32)-8, p.LayerBudget(72, 4096, 0, 32)-8; top != 3 && top != 4 || bottom < 124 || bottom > 125 {
		t.Errorf("top selects %d, bottom %d; want 64/20 and 2*64-64/20", top, bottom)
	}
}

func TestPyramidKVCache(t *testing.T) {
	e := NewPyramidKV(tokens(24), 8, 7, "max", 20)
	r := newRig(t, 4, 2, 2, e, needlePattern)
	r.prefill(128)
	total := 0
	prev := math.MaxInt
	for l := 0; l < 4; l++ {
		want := e.LayerBudget(24, 128, l, 4)
		for h := 0; h < 2; h++ {
			p := r.positions(l, h)
			if len(p) != want {
				t.Fatalf("layer %d head %d keeps %d tokens, want %d", l, h, len(p), want)
			}
			if !contains(p, rangeInts(120, 128)...) {
				t.Fatalf("layer %d head %d lost the window: %v", l, h, p)
			}
			nd := needleOf(h)
			if want-8 >= 7 && !contains(p, rangeInts(nd-3, nd+4)...) {
				t.Fatalf("layer %d head %d lost the needle: %v", l, h, p)
			}
			if !slices.ContainsFunc(p, func(x int) bool { return x >= nd-3 && x <= nd+3 }) {
				t.Fatalf("layer %d head %d keeps nothing of the needle: %v", l, h, p)
			}
		}
		total += want
		if want > prev {
			t.Fatalf("layer %d keeps more (%d) than the one below (%d)", l, want, prev)
		}
		prev = want
	}
	if total != 4*24 || e.LayerBudget(24, 128, 0, 4) <= e.LayerBudget(24, 128, 3, 4) {
		t.Fatalf("layer budgets sum to %d (want 96) or do not fall", total)
	}
}
