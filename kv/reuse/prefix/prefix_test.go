package prefix_test

import (
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/golden"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
	"github.com/kvgo/kvgo/model"
)

// TestReusedPrefixGivesTheSameLogits runs a "conversation" twice on
// stories260K: once from scratch, once reusing the stored cache of the
// first turn, and requires identical logits and fewer computed tokens.
func TestReusedPrefixGivesTheSameLogits(t *testing.T) {
	f, err := gguf.Open(golden.Path(t, "models/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	pool := kernel.NewPool(2)
	defer pool.Close()
	st := m.NewState(pool, 64, 512)
	cfg := kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}
	var ops struct {
		Tokens []int `json:"tokens"`
	}
	golden.ReadJSON(t, "golden/stories260K/kv_ops.json", &ops)
	turn1, turn2 := ops.Tokens[:100], ops.Tokens[:180]

	store := prefix.New(1 << 30)
	c1, _ := kv.New(m.CacheShape(), cfg, 512)
	if _, err := st.Forward(c1, turn1, 0); err != nil {
		t.Fatal(err)
	}
	store.Insert("f16", turn1, c1)
	c1.Release()

	fresh, _ := kv.New(m.CacheShape(), cfg, 512)
	want, err := st.Forward(fresh, turn2, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = append([]float32(nil), want...)

	if c, n := store.Lookup("other-recipe", turn2); c != nil || n != 0 {
		t.Fatal("a prefix was found under another recipe")
	}
	reused, n := store.Lookup("f16", turn2)
	if reused == nil || n != 100 {
		t.Fatalf("lookup found %d tokens, want 100", n)
	}
	got, err := st.Forward(reused, turn2[n:], n)
	if err != nil {
		t.Fatal(err)
	}
	if d := golden.MaxAbsDiff(got, want); d > 1e-5 {
		t.Errorf("logits after reusing the prefix differ by %g", d)
	}
	// A prompt equal to a stored one still leaves one token to compute.
	c, n := store.Lookup("f16", turn1)
	if c == nil || n != 99 {
		t.Errorf("exact-match lookup returned %d tokens, want 99", n)
	}
	if h, miss := store.Stats(); h != 2 || miss != 1 {
		t.Errorf("stats: %d hits %d misses", h, miss)
	}
	// Storing the longer turn replaces the shorter entry.
	store.Insert("f16", turn2, reused)
	if store.Len() != 1 {
		t.Errorf("%d entries after storing an extension, want 1", store.Len())
	}
	// A tiny budget evicts everything.
	small := prefix.New(1)
	small.Insert("f16", turn2, reused)
	if small.Len() != 0 || small.Bytes() != 0 {
		t.Errorf("over-budget store keeps %d entries", small.Len())
	}
}
