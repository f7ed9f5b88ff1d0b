package prefix_test

import (
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/defaultmodel"
	"github.com/kvgo/kvgo/internal/golden"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
	"github.com/kvgo/kvgo/model"
)

var f16 = kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}

// runner computes real caches with a model.
type runner struct {
	m  *model.Model
	st *model.State
}

func newRunner(t *testing.T, f *gguf.File) *runner {
	t.Helper()
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	pool := kernel.NewPool(2)
	t.Cleanup(pool.Close)
	return &runner{m: m, st: m.NewState(pool, 64, 512)}
}

func (r *runner) cache(t *testing.T, tokens []int) *kv.Cache {
	t.Helper()
	c, err := kv.New(r.m.CacheShape(), f16, 512)
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) > 0 {
		if _, err := r.st.Forward(c, tokens, 0); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func tiny(t *testing.T) *runner {
	t.Helper()
	f, err := gguf.Parse(defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return newRunner(t, f)
}

func seq(start, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = (start + 7*i) % 1000
	}
	return s
}

// TestReusedPrefixGivesTheSameLogits runs a "conversation" twice on
// stories260K: once from scratch, once reusing the stored cache of the
// first turn, and requires identical logits and fewer computed tokens.
func TestReusedPrefixGivesTheSameLogits(t *testing.T) {
	f, err := gguf.Open(golden.Path(t, "models/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := newRunner(t, f)
	var ops struct {
		Tokens []int `json:"tokens"`
	}
	golden.ReadJSON(t, "golden/stories260K/kv_ops.json", &ops)
	turn1, turn2 := ops.Tokens[:100], ops.Tokens[:180]
	key := prefix.Key{Model: "stories260K", Recipe: "f16"}

	store := prefix.New()
	store.Offer(key, turn1, r.cache(t, turn1))

	fresh := r.cache(t, nil)
	want, err := r.st.Forward(fresh, turn2, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = append([]float32(nil), want...)
	fresh.Release()

	reused, n := store.Acquire(key, turn2)
	if reused == nil || n != 100 {
		t.Fatalf("acquire found %d tokens, want 100", n)
	}
	got, err := r.st.Forward(reused, turn2[n:], n)
	if err != nil {
		t.Fatal(err)
	}
	if d := golden.MaxAbsDiff(got, want); d > 1e-5 {
		t.Errorf("logits after reusing the prefix differ by %g", d)
	}
	// A prompt equal to a stored one still leaves one token to compute.
	c, n := store.Acquire(key, turn1)
	if c == nil || n != 99 || c.NextPos() != 99 {
		t.Errorf("exact-match acquire returned %d tokens, want 99", n)
	}
	c.Release()
	// Offering the longer turn replaces the shorter entry.
	store.Offer(key, turn2, reused)
	if store.Len() != 1 {
		t.Errorf("%d entries after storing an extension, want 1", store.Len())
	}
	if c, n := store.Acquire(key, append(turn2[:180:180], 1)); c == nil || n != 180 {
		t.Errorf("the extension gives %d tokens, want 180", n)
	} else {
		c.Release()
	}
	store.Shrink(1)
	if store.Len() != 0 || store.Bytes() != 0 {
		t.Errorf("after Shrink the store keeps %d entries, %d bytes", store.Len(), store.Bytes())
	}
}

// A cache offered under one model (or recipe) is never acquired under
// another, and a key without a model is never stored.
func TestKeyNamesModelAndRecipe(t *testing.T) {
	r := tiny(t)
	tokens := seq(1, 40)
	prompt := append(seq(1, 40), 5, 6, 7)
	a := prefix.Key{Model: "model-a", Recipe: "f16"}
	store := prefix.New()
	store.Offer(a, tokens, r.cache(t, tokens))
	for _, k := range []prefix.Key{
		{Model: "model-b", Recipe: "f16"},
		{Model: "model-a", Recipe: "q8"},
		{Recipe: "f16"},
	} {
		if c, n := store.Acquire(k, prompt); c != nil || n != 0 {
			t.Errorf("a cache offered under %+v was acquired under %+v (%d tokens)", a, k, n)
		}
	}
	c, n := store.Acquire(a, prompt)
	if c == nil || n != 40 {
		t.Fatalf("the same key reuses %d tokens, want 40", n)
	}
	c.Release()

	// Without a model identity the store cannot tell models apart: it
	// refuses to keep the cache.
	store.Offer(prefix.Key{Recipe: "f16"}, prompt, r.cache(t, prompt))
	if store.Len() != 1 {
		t.Errorf("a key without a model was stored (%d entries)", store.Len())
	}
	// The same tokens under model B make an entry of their own.
	store.Offer(prefix.Key{Model: "model-b", Recipe: "f16"}, tokens, r.cache(t, tokens))
	if store.Len() != 2 {
		t.Errorf("%d entries after offering under a second model, want 2", store.Len())
	}
}

// Short prefixes are not worth a fork; covered offers are dropped; the
// least recently used entry goes first, by count and by Shrink; Bytes is
// the store's OwnedBytes share.
func TestLimitsAndLRU(t *testing.T) {
	r := tiny(t)
	key := prefix.Key{Model: "m", Recipe: "f16"}
	store := &prefix.Store{MinTokens: 8, MaxEntries: 2}

	short := seq(1, 7)
	store.Offer(key, short, r.cache(t, short))
	if store.Len() != 0 {
		t.Fatal("a prefix shorter than MinTokens was stored")
	}
	x, y, z := seq(1, 30), seq(2, 30), seq(3, 30)
	store.Offer(key, x, r.cache(t, x))
	store.Offer(key, x[:20], r.cache(t, x[:20])) // covered by x
	if store.Len() != 1 {
		t.Fatalf("%d entries after offering a covered prefix, want 1", store.Len())
	}
	store.Offer(key, y, r.cache(t, y))
	if c, _ := store.Acquire(key, append(x[:30:30], 1)); c == nil {
		t.Fatal("x missed")
	} else {
		c.Release()
	}
	// x was used after y: the third entry evicts y.
	store.Offer(key, z, r.cache(t, z))
	if store.Len() != 2 {
		t.Fatalf("%d entries, MaxEntries is 2", store.Len())
	}
	if c, _ := store.Acquire(key, append(y[:30:30], 1)); c != nil {
		t.Error("y, the least recently used, is still stored")
	}
	if c, _ := store.Acquire(key, append(x[:30:30], 1)); c == nil {
		t.Error("x, used recently, was evicted")
	} else {
		c.Release()
	}
	if c, n := store.Acquire(key, x[:5]); c != nil {
		t.Errorf("a 4-token match was reused (%d tokens) below MinTokens", n)
	}

	// Bytes splits pages shared with a fork; Shrink frees LRU first.
	before := store.Bytes()
	if want := r.cache(t, x).OwnedBytes() * 2; before != want {
		t.Errorf("Bytes %d, want %d for two 30-token caches", before, want)
	}
	fork, _ := store.Acquire(key, append(z[:30:30], 1))
	if shared := store.Bytes(); shared >= before {
		t.Errorf("Bytes %d with a fork sharing pages, %d without", shared, before)
	}
	fork.Release()
	if freed := store.Shrink(1); freed <= 0 || store.Len() != 1 {
		t.Errorf("Shrink(1) freed %d bytes, left %d entries", freed, store.Len())
	}
	if c, _ := store.Acquire(key, append(z[:30:30], 1)); c == nil {
		t.Error("Shrink dropped z, the most recently used")
	} else {
		c.Release()
	}
	store.Shrink(1 << 62)
	if store.Len() != 0 || store.Bytes() != 0 {
		t.Errorf("after Shrink everything: %d entries, %d bytes", store.Len(), store.Bytes())
	}
}
