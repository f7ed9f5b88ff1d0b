package kv_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
	ggml "github.com/kvgo/kvgo/quant"
)

// checkSummaries compares every page summary of every stream with the
// per-channel minimum and maximum of the page's decoded keys (rounded
// outward to halves), and the stream's count of paged tokens with its
// pages.
func checkSummaries(t *testing.T, c *kv.Cache, when string) {
	t.Helper()
	sh := c.Shape()
	for l := 0; l < sh.Layers; l++ {
		for h := 0; h < sh.KVHeads; h++ {
			s := c.Stream(l, h)
			k, v := make([]float32, s.Dim()), make([]float32, s.ValueDim())
			i := 0
			for p := 0; p < s.Pages(); p++ {
				b := s.PageBounds(p)
				if b == nil {
					t.Fatalf("%s: layer %d head %d page %d has no summary", when, l, h, p)
				}
				wantLo, wantHi := make([]float32, s.Dim()), make([]float32, s.Dim())
				for j := 0; j < s.PageLen(p); j++ {
					s.Vector(i, k, v)
					i++
					for ch, x := range k {
						if j == 0 || x < wantLo[ch] {
							wantLo[ch] = x
						}
						if j == 0 || x > wantHi[ch] {
							wantHi[ch] = x
						}
					}
				}
				want := make([]uint16, 0, 2*s.Dim())
				for _, x := range wantLo {
					want = append(want, ggml.F32ToF16Down(x))
				}
				for _, x := range wantHi {
					want = append(want, ggml.F32ToF16Up(x))
				}
				if !slices.Equal(b, want) {
					t.Fatalf("%s: layer %d head %d page %d: summary differs from its keys' minima then maxima, rounded outward to halves", when, l, h, p)
				}
			}
			if s.PagedLen() != i {
				t.Fatalf("%s: layer %d head %d: PagedLen = %d, the pages hold %d tokens", when, l, h, s.PagedLen(), i)
			}
		}
	}
}

// TestPageSummariesStayExact: Quest's per-page key bounds stay exactly the
// bounds of the stored keys through appends, sealed groups, deletions,
// packing of sparse pages, overwrites and forks, for per-token and group
// codecs.
func TestPageSummariesStayExact(t *testing.T) {
	kiviK, kiviV, err := kvquant.NewKIVI(4, 16, 24)
	if err != nil {
		t.Fatal(err)
	}
	q8, err := kvquant.NewBlock(8, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range []struct {
		name string
		k, v kv.Codec
	}{
		{"f16", kvquant.F16{}, kvquant.F16{}},
		{"q8", q8, q8},
		{"kivi-4", kiviK, kiviV},
	} {
		shape := kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 16, ValueDim: 8}
		c, err := kv.New(shape, kv.Config{K: cd.k, V: cd.v, Summaries: true}, 1024)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		fill := func(c *kv.Cache, from, n int) {
			for p := from; p < from+n; p++ {
				if err := c.Begin([]int32{int32(p)}); err != nil {
					t.Fatal(err)
				}
				for l := 0; l < shape.Layers; l++ {
					k := make([]float32, shape.KVHeads*16)
					v := make([]float32, shape.KVHeads*8)
					for i := range k {
						k[i] = float32(rng.NormFloat64())
					}
					c.Store(l, k, v)
				}
				c.End()
			}
		}
		fill(c, 0, 300)
		checkSummaries(t, c, cd.name+" after appends")

		f := c.Fork()
		// Delete a few tokens (pages stay), then most (pages are packed).
		for _, frac := range []float64{0.9, 0.2} {
			for l := 0; l < shape.Layers; l++ {
				for h := 0; h < shape.KVHeads; h++ {
					s := c.Stream(l, h)
					keep := make([]bool, s.Len())
					for i := range keep {
						keep[i] = rng.Float64() < frac
					}
					s.Keep(keep)
				}
			}
			checkSummaries(t, c, cd.name+" after deletions")
		}
		checkSummaries(t, f, cd.name+" fork after the original deleted")
		fill(f, 300, 40)
		checkSummaries(t, f, cd.name+" fork after appends")
		// Overwrite a held position with a new key.
		if err := f.Begin([]int32{5}); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < shape.Layers; l++ {
			k := make([]float32, shape.KVHeads*16)
			for i := range k {
				k[i] = 50
			}
			f.Store(l, k, make([]float32, shape.KVHeads*8))
		}
		f.End()
		checkSummaries(t, f, cd.name+" after an overwrite")
		s := f.Stream(0, 0)
		if hi := ggml.F16ToF32(s.PageBounds(0)[s.Dim()]); hi < 49 || hi > 51 {
			t.Fatalf("%s: the overwritten key 50 is not the page's maximum (%g)", cd.name, hi)
		}
	}
	// Without a selector that asks, no summaries are kept (and no bytes).
	c, _ := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 8}, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, 64)
	c.Begin([]int32{0})
	c.Store(0, make([]float32, 8), make([]float32, 8))
	c.End()
	if c.Stream(0, 0).PageBounds(0) != nil {
		t.Fatal("a cache without a selector keeps summaries")
	}
}
