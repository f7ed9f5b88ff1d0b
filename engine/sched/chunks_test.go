package sched

import (
	"slices"
	"testing"

	"github.com/kvgo/kvgo/engine"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
)

var docs = []string{
	"The special magic number for harbor is: 482913. The harbor master keeps the ledger of every ship that enters, with its cargo and the day it left.",
	"The special magic number for lantern is: 730156. A lantern on the pier burns all night, and the keeper trims its wick at midnight and again at dawn.",
	"The special magic number for orchard is: 215784. The orchard behind the mill has forty trees, and the apples are picked in the second week of autumn.",
}

func ragPrompt(t *testing.T, order []int) engine.Prompt {
	parts := []engine.Part{{Text: "Some special magic numbers are hidden within the following text.\n"}}
	for _, i := range order {
		parts = append(parts, engine.Part{Text: docs[i], Chunk: true})
	}
	parts = append(parts, engine.Part{Text: "\nWhat is the special magic number for lantern?\nAnswer: The special magic number for lantern is:"})
	return tiny(t).EncodeParts(parts, true, false)
}

// TestChunkReuseInScheduler: a request whose chunks were computed by an
// earlier one reuses them (cached tokens counted); with
// cacheblend(ratio=1) it generates what a full prefill generates; a tenant
// never reuses another's chunks; without chunks or a reusing policy
// nothing changes.
func TestChunkReuseInScheduler(t *testing.T) {
	store := kvchunk.New(16 << 20)
	s := newSched(t, Config{Chunks: store})
	run := func(rcp, tenant string, p engine.Prompt) result {
		r := greedy(p.Tokens, 6)
		r.Recipe, r.Tenant, r.Chunks = mustRecipe(t, rcp), tenant, p.Chunks
		h, err := s.Submit(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		return collect(t, h)
	}
	first := run("cacheblend(ratio=1)", "a", ragPrompt(t, []int{0, 1, 2}))
	if first.final.Cached != 0 || s.ChunkStats().Stored != 3 {
		t.Fatalf("first request: cached %d, %+v", first.final.Cached, s.ChunkStats())
	}
	p := ragPrompt(t, []int{2, 0, 1})
	want := reference(t, p.Tokens, 6, "f16")
	got := run("cacheblend(ratio=1)", "a", p)
	if !slices.Equal(got.tokens, want) {
		t.Errorf("cacheblend(ratio=1) generated %v, full prefill %v", got.tokens, want)
	}
	st := s.ChunkStats()
	if st.Hits != 3 || st.Tiers["ram"] != 3 || got.final.Cached != 0 {
		t.Errorf("second request: cached %d, %+v", got.final.Cached, st)
	}
	naive := run("naive", "a", p)
	n := 0
	for _, c := range p.Chunks {
		n += c.End - c.Start
	}
	if naive.final.Cached != n || len(naive.tokens) != 6 {
		t.Errorf("naive: cached %d of %d chunk tokens, %d tokens generated", naive.final.Cached, n, len(naive.tokens))
	}
	other := run("naive", "b", p)
	if other.final.Cached != 0 {
		t.Errorf("tenant b reused %d of tenant a's tokens", other.final.Cached)
	}
	plain := run("f16", "a", p)
	if plain.final.Cached != 0 || !slices.Equal(plain.tokens, want) {
		t.Errorf("a recipe without repair: cached %d, tokens %v", plain.final.Cached, plain.tokens)
	}
	waitFor(t, "idle", s.Idle)
	if st := s.Stats(); st.SeqBytes != 0 {
		t.Errorf("%d bytes still held by sequences", st.SeqBytes)
	}
}
