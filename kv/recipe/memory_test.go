package recipe

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// fillCache puts n tokens of random keys and values through a cache the
// way the model does (staged prefill in batches, attention of the last 64
// queries so evictors get their statistics) and returns it.
func fillCache(t *testing.T, r *Recipe, shape kv.Shape, n int) *kv.Cache {
	cfg, err := r.Config()
	if err != nil {
		t.Fatal(err)
	}
	c, err := kv.New(shape, cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	row := shape.KVHeads * shape.HeadDim
	// One batch of random keys and values, reused for every batch and
	// layer: the bytes a cache holds do not depend on the values.
	k := make([]float32, 512*row)
	v := make([]float32, 512*row)
	for i := range k {
		k[i], v[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	q := make([]float32, shape.HeadDim)
	out := make([]float32, shape.HeadDim)
	sc := kv.NewScratch(1)
	c.BeginPrefill(n)
	for start := 0; start < n; start += 512 {
		b := min(512, n-start)
		pos := make([]int32, b)
		for i := range pos {
			pos[i] = int32(start + i)
		}
		if err := c.Begin(pos); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < shape.Layers; l++ {
			c.Store(l, k[:b*row], v[:b*row])
			for i := max(0, b-64); i < b && start+b == n; i++ {
				for h := 0; h < shape.KVHeads; h++ {
					for j := range q {
						q[j] = float32(rng.NormFloat64())
					}
					c.Attend(l, h, q, 1, pos[i], out, sc)
				}
			}
		}
		c.End()
	}
	c.EndPrefill()
	return c
}

// TestMemoryIsReallyFreed fills an 8k-token cache with each recipe and
// checks that the process heap grows by what the cache says it holds, and
// that this is the recipe's fraction of the full F16 cache: compression
// frees memory, not just a counter.
func TestMemoryIsReallyFreed(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("fills an 8k-token cache per recipe: skipped with -short and under -race (CI runs it without -race)")
	}
	shape := kv.Shape{Layers: 4, KVHeads: 2, HeadDim: 64}
	const n = 8192
	full := kv.FullF16Bytes(shape, n)
	candidates := []string{"f16", "f32", "q8", "q4", "kivi(bits=4)", "kivi(bits=2)",
		"snapkv(budget=0.25)", "streaming(budget=0.25)", "pyramidkv(budget=0.25)", "snapkv(budget=0.25)+kivi(bits=4)"}
	measured := 0
	for _, s := range candidates {
		r, err := Parse(s)
		if err != nil {
			continue // a method not registered (yet)
		}
		measured++
		before := heapInUse()
		c := fillCache(t, r, shape, n)
		grown := heapInUse() - before
		held := c.Bytes()
		runtime.KeepAlive(c)
		ratio := float64(held) / float64(full)
		t.Logf("%-36s holds %9d bytes = %.3f of full f16; heap grew %9d (%.3f of full)", r, held, ratio, grown, float64(grown)/float64(full))
		// The heap holds the cache plus small bookkeeping (stream structs,
		// page headers, which Bytes does not count: about 64 bytes per page
		// of keys and of values): within 10% of the accounted bytes, plus
		// 64 KiB, plus 160 bytes per pair of pages.
		pages := 0
		for l := 0; l < shape.Layers; l++ {
			for h := 0; h < shape.KVHeads; h++ {
				pages += c.Stream(l, h).Pages()
			}
		}
		slack := 65536 + 160*float64(pages)
		if float64(grown) > float64(held)*1.10+slack || float64(grown) < float64(held)*0.90-slack {
			t.Errorf("%s: heap grew by %d bytes but the cache accounts for %d", r, grown, held)
		}
		if !r.Evicts() && r.Codec().Method.Name == "f16" && held != full {
			t.Errorf("f16 cache holds %d bytes, baseline says %d", held, full)
		}
		if r.Evicts() && ratio > 0.35 {
			t.Errorf("%s: an evictor with a quarter budget still holds %.3f of the full cache", r, ratio)
		}
	}
	if measured < 2 {
		t.Fatalf("only %d recipes measured", measured)
	}
}

// TestEvictorPeakMemory: an evicting recipe must lower peak memory, not
// raise it. Every evictor (and every wrapper over one) peaks at most at
// 1.15 times the full f16 cache of the prompt: the prompt is held in the
// codec's own pages (or a KIVI stack's F16 tail) while the evictor waits
// for its statistics, plus 8 bytes per token of them. It used to be
// staged in F32 (2.1-2.2 times). A Rolling evictor (StreamingLLM) never
// holds more than its budget plus one batch of the prompt. And KIVI's
// residual never makes a stack bigger than its evictor alone.
func TestEvictorPeakMemory(t *testing.T) {
	shape := kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 64}
	const n = 2048
	full := kv.FullF16Bytes(shape, n)
	var recipes []string
	for _, m := range Methods() {
		switch m.Kind {
		case kv.EvictorMethod:
			recipes = append(recipes, m.Name+"(budget=0.25)", m.Name+"(budget=0.25)+kivi(bits=4)")
		case kv.WrapperMethod:
			recipes = append(recipes, "snapkv(budget=0.25)+"+m.Name, "h2o(budget=0.25)+"+m.Name)
		}
	}
	for _, s := range recipes {
		r, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		c := fillCache(t, r, shape, n)
		peak := c.PeakBytes()
		t.Logf("%-44s peak %.3f, holds %.3f of the full f16 cache", s, float64(peak)/float64(full), float64(c.Bytes())/float64(full))
		if float64(peak) > 1.15*float64(full) {
			t.Errorf("%s: peak %d bytes is %.2f times the full f16 cache", s, peak, float64(peak)/float64(full))
		}
		bd, err := r.Bound()
		if err != nil {
			t.Fatal(err)
		}
		if bd.Rolling {
			if lim := kv.FullF16Bytes(shape, n/4+512); float64(peak) > 1.15*float64(lim) {
				t.Errorf("%s: a rolling evictor peaks at %d bytes, over its budget plus a batch (%d)", s, peak, lim)
			}
		}
	}
	alone, _ := Parse("snapkv(budget=0.25)")
	stack, _ := Parse("snapkv(budget=0.25)+kivi(bits=4)")
	a, b := fillCache(t, alone, shape, n).Bytes(), fillCache(t, stack, shape, n).Bytes()
	if b >= a {
		t.Fatalf("snapkv+kivi-4 holds %d bytes, snapkv alone %d", b, a)
	}
}
