package model

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// TestRotateKeysIsRotateEach: turning many keys at once (kv.KeysRotary,
// which kv.Cache.Splice uses) gives every key exactly what Rotate gives
// it alone, for llama keys (one head each) and MLA keys (latent, then the
// rope part), by positive and negative deltas.
func TestRotateKeysIsRotateEach(t *testing.T) {
	llama, _ := openModel(t, "models/stories260K.gguf")
	models := map[string]*Model{"llama": llama}
	for name, sp := range mlaSpecs {
		m, err := Load(sp.file(t, sp.random(1)))
		if err != nil {
			t.Fatal(err)
		}
		models["mla "+name] = m
	}
	rng := rand.New(rand.NewPCG(4, 5))
	for name, m := range models {
		r := m.Rotary()
		kr, ok := r.(kv.KeysRotary)
		if !ok {
			t.Fatalf("%s: the model's Rotary turns no batch of keys", name)
		}
		w := m.CacheShape().Dims(0).Key
		keys := make([]float32, 7*w)
		for i := range keys {
			keys[i] = rng.Float32()*2 - 1
		}
		for _, delta := range []int32{37, -511} {
			want := slices.Clone(keys)
			for i := 0; i < 7; i++ {
				r.Rotate(0, want[i*w:(i+1)*w], delta)
			}
			got := slices.Clone(keys)
			kr.RotateKeys(0, got, w, delta)
			if !slices.Equal(got, want) {
				t.Errorf("%s: RotateKeys by %d differs from Rotate key by key", name, delta)
			}
			if slices.Equal(got, keys) {
				t.Errorf("%s: RotateKeys by %d changed nothing: the test cannot tell", name, delta)
			}
		}
	}
}
