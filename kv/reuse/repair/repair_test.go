package repair

import (
	"math"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

func h(b byte) kv.ChunkHash { return kv.ChunkHash{b} }

// TestOverlap: β′ is 1 for a chunk computed after no chunk or after the
// same chunks in the same order, the inter-attention share of the chunks
// still there, and falls with the order's Kendall-τ distance.
func TestOverlap(t *testing.T) {
	st := &kv.ChunkStats{Before: []kv.ChunkHash{h(1), h(2), h(3)}, Inter: []float32{1, 2, 5}}
	for _, c := range []struct {
		name   string
		stats  *kv.ChunkStats
		before []kv.ChunkHash
		want   float64
	}{
		{"no predecessors then", &kv.ChunkStats{}, []kv.ChunkHash{h(9)}, 1},
		{"same order", st, []kv.ChunkHash{h(1), h(2), h(3)}, 1},
		{"one of three gone", st, []kv.ChunkHash{h(1), h(3)}, 6.0 / 8},
		{"none left", st, []kv.ChunkHash{h(7)}, 0},
		{"reversed", st, []kv.ChunkHash{h(3), h(2), h(1)}, 0},
		{"one swap", st, []kv.ChunkHash{h(2), h(1), h(3)}, 1 - 1.0/3},
		{"no weights", &kv.ChunkStats{Before: []kv.ChunkHash{h(1), h(2)}}, []kv.ChunkHash{h(2)}, 0.5},
	} {
		if got := Overlap(&kv.ChunkUse{Stats: c.stats, Before: c.before}); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: β′ = %g, want %g", c.name, got, c.want)
		}
	}
}

// TestCacheCraftRecompute: CCI from a and b, the count ⌈α·CCI·(1−β′)·|C|⌉,
// tokens by context attention, the whole chunk past the threshold.
func TestCacheCraftRecompute(t *testing.T) {
	st := &kv.ChunkStats{Before: []kv.ChunkHash{h(1)}, Inter: []float32{1},
		A: []float32{0.02, 0.04}, B: []float32{0.03, 0.03}, Context: []float32{0.1, 0.9, 0.3, 0.8, 0.2, 0.0, 0.5, 0.4, 0.6, 0.7}}
	if got, want := CCI(st), 1/(1+math.Exp(-1.0)); math.Abs(got-want) > 1e-6 {
		t.Fatalf("CCI %g, want σ(1) = %g", got, want)
	}
	u := &kv.ChunkUse{Tokens: 10, Stats: st, Before: []kv.ChunkHash{h(2)}} // β′ = 0
	c := CacheCraft{Alpha: 0.5, Whole: 0.9}
	got := c.Recompute(u)
	if want := []int{1, 3, 8, 9}; !slices.Equal(got, want) { // ⌈0.5·0.731·10⌉ = 4
		t.Errorf("recompute %v, want %v", got, want)
	}
	if got := (CacheCraft{Alpha: 2, Whole: 0.9}).Recompute(u); len(got) != 10 {
		t.Errorf("α·CCI = 1.46: recompute %v, want the whole chunk", got)
	}
	u.Before = []kv.ChunkHash{h(1)}
	if got := c.Recompute(u); len(got) != 0 {
		t.Errorf("same context: recompute %v, want none", got)
	}
}

func TestOtherPolicies(t *testing.T) {
	u := &kv.ChunkUse{Tokens: 8, Deviation: []float32{0, 5, 1, 7, 0, 0, 3, 0}}
	if got := (CacheBlend{Ratio: 0.25}).Recompute(u); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("cacheblend: %v", got)
	}
	if got := (CacheBlend{Ratio: 1}).Recompute(u); len(got) != 8 {
		t.Errorf("cacheblend(ratio=1): %v", got)
	}
	if got := (EPIC{K: 3}).Recompute(u); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("epic: %v", got)
	}
	if got := (EPIC{K: 30}).Recompute(u); len(got) != 8 {
		t.Errorf("epic past the chunk: %v", got)
	}
	if got := (naive{}).Recompute(u); len(got) != 0 {
		t.Errorf("naive: %v", got)
	}
}
