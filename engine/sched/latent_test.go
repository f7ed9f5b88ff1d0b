package sched

import (
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// TestFootprintOfLatentCache: admission prices an MLA latent cache (the
// value stored in the key, kv.Shape.ValueInKey) as it is stored, once,
// not as a key and a value: for f16 exactly kv.FullF16Bytes.
func TestFootprintOfLatentCache(t *testing.T) {
	shape := kv.Shape{Layers: 4, KVHeads: 1, HeadDim: 64, ValueDim: 48, ValueInKey: true}
	f := newFootprint(shape, 1024, 256)
	r, err := recipe.Parse("f16")
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.codec(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 100, 1000} {
		got, want := p.exact(n)*int64(shape.Streams()), kv.FullF16Bytes(shape, n)
		if got != want {
			t.Errorf("%d tokens: predicted %d bytes, the latent cache holds %d", n, got, want)
		}
	}
}
