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
