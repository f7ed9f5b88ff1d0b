package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kv/recipe"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
)

// ragDocs are four documents of the kind a RAG prompt carries, each well
// over 16 tokens.
var ragDocs = []string{
	"The special magic number for harbor is: 482913. The harbor master keeps the ledger of every ship that enters, with its cargo and the day it left.",
	"The special magic number for lantern is: 730156. A lantern on the pier burns all night, and the keeper trims its wick at midnight and again at dawn.",
	"The special magic number for orchard is: 215784. The orchard behind the mill has forty trees, and the apples are picked in the second week of autumn.",
	"The special magic number for compass is: 968402. Every compass on the boat is checked against the pole star before the fleet sails out at night.",
}

func ragParts(order []int, question string) []Part {
	parts := []Part{{Text: "Some special magic numbers are hidden within the following text.\n"}}
	for _, i := range order {
		parts = append(parts, Part{Text: ragDocs[i], Chunk: true})
	}
	return append(parts, Part{Text: "\nWhat is the special magic number for " + question + " mentioned in the provided text?\nAnswer: The special magic number for " + question + " is:"})
}

// fullLogits prefills p from scratch with the recipe's codec.
func fullLogits(t *testing.T, e *Engine, rcp string, p Prompt) []float32 {
	t.Helper()
	r, err := recipe.Parse(rcp)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(r, 1024, len(p.Tokens))
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Prefill(context.Background(), p.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(l)
}

func chunkedLogits(t *testing.T, e *Engine, store *kvchunk.Store, model, rcp string, p Prompt) ([]float32, ReuseStats) {
	t.Helper()
	r, err := recipe.Parse(rcp)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Repair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(r, 1024, len(p.Tokens))
	if err != nil {
		t.Fatal(err)
	}
	l, st, err := e.PrefillChunks(context.Background(), s, p, ChunkOptions{Store: store, Repair: rep, Recipe: r, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	if s.Cache.NextPos() != len(p.Tokens) {
		t.Fatalf("%s: the cache ends at %d, the prompt at %d", rcp, s.Cache.NextPos(), len(p.Tokens))
	}
	return slices.Clone(l), st
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// TestCacheBlendRatio1IsFullPrefill: the acceptance criterion of issue 12.
// Chunks computed in one request and reused by another at other positions,
// after other neighbours, with cacheblend(ratio=1) (every token recomputed
// at every layer, its fresh keys and values overwriting the spliced ones)
// give the logits of a full prefill of the second prompt within 1e-4, with
// f32 and f16 chunk caches; naive reuse of the same chunks does not.
func TestCacheBlendRatio1IsFullPrefill(t *testing.T) {
	e := loadTiny(t)
	const model = "test-model"
	for _, codec := range []string{"f32", "f16"} {
		store := kvchunk.New(64 << 20)
		first := e.EncodeParts(ragParts([]int{0, 1, 2, 3}, "harbor"), true, false)
		_, st := chunkedLogits(t, e, store, model, "cacheblend(ratio=1)+"+codec, first)
		if st.Hits != 0 || st.Misses != 4 || st.Stored != 4 {
			t.Fatalf("%s: first request: %+v", codec, st)
		}
		second := e.EncodeParts(ragParts([]int{2, 0, 3, 1}, "lantern"), true, false)
		want := fullLogits(t, e, codec, second)
		got, st := chunkedLogits(t, e, store, model, "cacheblend(ratio=1)+"+codec, second)
		if st.Hits != 4 || st.Recomputed != st.ChunkTokens || st.Reused != 0 {
			t.Fatalf("%s: second request: %+v", codec, st)
		}
		d := maxDiff(got, want)
		naive, nst := chunkedLogits(t, e, store, model, "naive+"+codec, second)
		dn := maxDiff(naive, want)
		t.Logf("%s: cacheblend(ratio=1) vs full prefill: %.3g; naive: %.3g (%d of %d chunk tokens reused)", codec, d, dn, nst.Reused, nst.ChunkTokens)
		if d > 1e-4 {
			t.Errorf("%s: cacheblend(ratio=1) logits differ from full prefill by %g", codec, d)
		}
		if dn < 1e-3 || nst.Reused != nst.ChunkTokens {
			t.Errorf("%s: naive reuse differs by only %g (reused %d of %d): the test cannot tell", codec, dn, nst.Reused, nst.ChunkTokens)
		}
	}
}

// TestChunkPoliciesRecompute: each policy recomputes what it says and the
// question is always computed.
func TestChunkPoliciesRecompute(t *testing.T) {
	e := loadTiny(t)
	const model = "test-model"
	store := kvchunk.New(64 << 20)
	first := e.EncodeParts(ragParts([]int{0, 1, 2, 3}, "harbor"), true, false)
	chunkedLogits(t, e, store, model, "naive", first)
	second := e.EncodeParts(ragParts([]int{3, 1, 0, 2}, "orchard"), true, false)
	want := fullLogits(t, e, "f16", second)
	nChunk := 0
	for _, c := range second.Chunks {
		nChunk += c.End - c.Start
	}
	for _, c := range []struct {
		rcp  string
		want func(st ReuseStats) bool
	}{
		{"naive", func(st ReuseStats) bool { return st.Recomputed == 0 }},
		{"epic(k=4)", func(st ReuseStats) bool { return st.Recomputed == 16 }},
		{"cacheblend(ratio=0.25)", func(st ReuseStats) bool { return st.Recomputed >= nChunk/4 && st.Recomputed <= nChunk/4+4 }},
		{"cachecraft", func(st ReuseStats) bool { return st.Recomputed > 0 && st.Recomputed < nChunk }},
		{"cachecraft(alpha=0)", func(st ReuseStats) bool { return st.Recomputed == 0 }},
	} {
		got, st := chunkedLogits(t, e, store, model, c.rcp, second)
		t.Logf("%-24s hits %d recomputed %3d/%d computed %d token-layers %d; max logit diff %.3g", c.rcp, st.Hits, st.Recomputed, st.ChunkTokens, st.Computed, st.TokenLayers, maxDiff(got, want))
		if st.Hits != 4 || st.ChunkTokens != nChunk || !c.want(st) {
			t.Errorf("%s: %+v", c.rcp, st)
		}
		if q := len(second.Tokens) - second.Chunks[3].End + second.Chunks[0].Start; st.Computed < q+st.Recomputed {
			t.Errorf("%s: computed %d tokens, fewer than the %d outside chunks plus %d recomputed", c.rcp, st.Computed, q, st.Recomputed)
		}
	}
}

// TestChunkBoundaryRule: a chunk's tokens in a prompt are the tokens it
// has alone, and parts join without merging across boundaries.
func TestChunkBoundaryRule(t *testing.T) {
	e := loadTiny(t)
	parts := ragParts([]int{1, 3}, "compass")
	p := e.EncodeParts(parts, true, false)
	if len(p.Chunks) != 2 || p.Tokens[0] != e.Tok.BOS() {
		t.Fatalf("chunks %v, first token %d", p.Chunks, p.Tokens[0])
	}
	for i, c := range p.Chunks {
		alone := e.Tok.Encode(ragDocs[[]int{1, 3}[i]], false, false)
		if !slices.Equal(p.Tokens[c.Start:c.End], alone) {
			t.Errorf("chunk %d: %v in the prompt, %v alone", i, p.Tokens[c.Start:c.End], alone)
		}
	}
	var n int
	for _, part := range parts {
		n += len(e.Tok.Encode(part.Text, false, false))
	}
	if len(p.Tokens) != n+1 {
		t.Errorf("%d tokens, want BOS + %d", len(p.Tokens), n)
	}
	// The separator convention.
	sp := SplitChunks("intro # # doc one # # doc two # # question", " # # ")
	want := fmt.Sprint([]Part{{"intro", false}, {"doc one", true}, {"doc two", true}, {"question", false}})
	if fmt.Sprint(sp) != want {
		t.Errorf("SplitChunks: %v, want %v", sp, want)
	}
	if sp := SplitChunks("no separator", " # # "); len(sp) != 1 || sp[0].Chunk {
		t.Errorf("SplitChunks without a separator: %v", sp)
	}
}
