package server

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/engine/sched"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
	"github.com/kvgo/kvgo/kv/reuse/chunk/chunktest"
)

var ragDocs = []string{
	"The special magic number for harbor is: 482913. The harbor master keeps the ledger of every ship that enters, with its cargo and the day it left.",
	"The special magic number for lantern is: 730156. A lantern on the pier burns all night, and the keeper trims its wick at midnight and again at dawn.",
	"The special magic number for orchard is: 215784. The orchard behind the mill has forty trees, and the apples are picked in the second week of autumn.",
}

const ragQuestion = "\nWhat is the special magic number for lantern?\nAnswer: The special magic number for lantern is:"

func docs(order ...int) []string {
	var out []string
	for _, i := range order {
		out = append(out, ragDocs[i])
	}
	return out
}

// completeChunks posts a completion with chunks and returns its usage.
func completeChunks(t *testing.T, ts *testServer, kv, salt string, chunks []string) usage {
	t.Helper()
	body := map[string]any{"model": modelID, "chunks": chunks, "prompt": ragQuestion, "max_tokens": 4, "temperature": 0, "kv": kv}
	if salt != "" {
		body["cache_salt"] = salt
	}
	resp, out := ts.post(t, "/v1/completions", body)
	var r completionResponse
	if err := json.Unmarshal(out, &r); err != nil || resp.StatusCode != 200 || r.Usage == nil {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	return *r.Usage
}

func chunkTokens(t *testing.T, chunks []string) int {
	n := 0
	for _, c := range chunks {
		n += len(tiny(t).Tok.Encode(c, false, false))
	}
	return n
}

// TestChunkedRequests: chunks sent as "chunks", as chat text parts or
// between separators are reused by a later request in another order;
// usage.prompt_tokens_details.cached_tokens counts the reused chunk
// tokens; another cache_salt reuses nothing; the metrics count it all.
func TestChunkedRequests(t *testing.T) {
	store := kvchunk.New(16 << 20)
	ts := start(t, sched.Config{Chunks: store}, Config{ChunkSep: " # # "})
	if u := completeChunks(t, ts, "naive", "", docs(0, 1, 2)); u.PromptTokensDetails.CachedTokens != 0 {
		t.Fatalf("first request: %+v", u)
	}
	n := chunkTokens(t, docs(2, 0, 1))
	if u := completeChunks(t, ts, "naive", "", docs(2, 0, 1)); u.PromptTokensDetails.CachedTokens != n {
		t.Errorf("reordered chunks: %d cached tokens, want the %d chunk tokens", u.PromptTokensDetails.CachedTokens, n)
	}
	if u := completeChunks(t, ts, "naive", "other tenant", docs(2, 0, 1)); u.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("another cache_salt reused %d tokens", u.PromptTokensDetails.CachedTokens)
	}
	if u := completeChunks(t, ts, "f16", "", docs(2, 0, 1)); u.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("a recipe without repair reused %d tokens", u.PromptTokensDetails.CachedTokens)
	}

	// The same documents as chat parts.
	var parts []map[string]string
	for _, d := range docs(1, 2) {
		parts = append(parts, map[string]string{"type": "text", "text": d})
	}
	resp, out := ts.post(t, "/v1/chat/completions", map[string]any{"model": modelID, "max_tokens": 4, "temperature": 0, "kv": "cachecraft",
		"messages": []map[string]any{{"role": "system", "content": parts}, {"role": "user", "content": "What is the special magic number for orchard?"}}})
	var cr chatResponse
	if err := json.Unmarshal(out, &cr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	if c := cr.Usage.PromptTokensDetails.CachedTokens; c == 0 || c > chunkTokens(t, docs(1, 2)) {
		t.Errorf("chat parts: %d cached tokens of %d chunk tokens", c, chunkTokens(t, docs(1, 2)))
	}

	// A plain prompt with the separator.
	sep := "Some numbers. # # " + strings.Join(docs(0, 2), " # # ") + " # # " + ragQuestion
	resp, out = ts.post(t, "/v1/completions", map[string]any{"model": modelID, "prompt": sep, "max_tokens": 2, "kv": "naive"})
	var r completionResponse
	if err := json.Unmarshal(out, &r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	if c := r.Usage.PromptTokensDetails.CachedTokens; c != chunkTokens(t, docs(0, 2)) {
		t.Errorf("separated prompt: %d cached tokens, want %d", c, chunkTokens(t, docs(0, 2)))
	}
	waitIdle(t, ts)
	if v := metric(t, ts, `kvgo_chunk_lookups_total{result="hit",tier="ram"}`); v < 7 {
		t.Errorf("ram hits %v", v)
	}
	total := n + cr.Usage.PromptTokensDetails.CachedTokens + r.Usage.PromptTokensDetails.CachedTokens
	if v := metric(t, ts, `kvgo_chunk_tokens_total{kind="reused"}`); v != float64(total) {
		t.Errorf("reused tokens %v, the responses' cached tokens add up to %d", v, total)
	}
	if v := metric(t, ts, `kvgo_chunk_store_bytes{tier="ram"}`); v <= 0 || v != float64(store.Bytes()) {
		t.Errorf("ram bytes %v, store %d", v, store.Bytes())
	}
}

// startOn runs a server with a chunk store on an engine of its own (a
// scheduler owns its engine's workers), as another `kvgo serve` would.
func startOn(t *testing.T, store *kvchunk.Store) *testServer {
	t.Helper()
	e, err := engine.Load("", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	sch, err := sched.New(e, sched.Config{KVBudget: 64 << 20, Chunks: store})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Engine: e, Sched: sch, ModelID: modelID})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{sch: sch, srv: srv}
	ts.Server = httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); sch.Close() })
	return ts
}

// TestTwoServersShareRedis: a second server serves the chunks the first
// computed, from one real redis-server; with Redis stopped every request
// still succeeds (its chunks are computed, and counted as tier errors).
func TestTwoServersShareRedis(t *testing.T) {
	url, stop := chunktest.StartRedis(t)
	tier := func() kvchunk.Tier {
		r, err := kvchunk.OpenRedis(url, 200*time.Millisecond, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	sa, sb := kvchunk.New(16<<20, tier()), kvchunk.New(16<<20, tier())
	a, b := startOn(t, sa), startOn(t, sb)
	completeChunks(t, a, "cachecraft", "", docs(0, 1, 2))
	sa.Flush()
	n := chunkTokens(t, docs(1, 2, 0))
	u := completeChunks(t, b, "naive", "", docs(1, 2, 0))
	if u.PromptTokensDetails.CachedTokens != n {
		t.Errorf("second server: %d cached tokens, want %d", u.PromptTokensDetails.CachedTokens, n)
	}
	if v := metric(t, b, `kvgo_chunk_lookups_total{result="hit",tier="redis"}`); v != 3 {
		t.Errorf("second server: %v redis hits", v)
	}
	stop()
	other := []string{ragDocs[2] + " More text.", ragDocs[0] + " More text."}
	for i := 0; i < 3; i++ {
		if u := completeChunks(t, b, "cachecraft", "", other); i == 0 && u.PromptTokensDetails.CachedTokens != 0 {
			t.Errorf("new chunks with Redis down: %d cached", u.PromptTokensDetails.CachedTokens)
		}
	}
	if v := metric(t, b, `kvgo_chunk_lookups_total{result="error",tier="redis"}`); v < 2 {
		t.Errorf("redis errors %v with the server stopped", v)
	}
}

// TestCorruptDiskChunkIsRecomputed: a chunk file damaged on disk is
// detected by a restarted server, computed again, and written back whole.
func TestCorruptDiskChunkIsRecomputed(t *testing.T) {
	dir := t.TempDir()
	disk := func() *kvchunk.Disk {
		d, err := kvchunk.OpenDisk(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	s1 := kvchunk.New(16<<20, disk())
	a := startOn(t, s1)
	completeChunks(t, a, "naive", "", docs(0, 1))
	s1.Flush()
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.kvc"))
	if len(files) != 2 {
		t.Fatalf("%d chunk files", len(files))
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		b[len(b)/3] ^= 0x5a
		os.WriteFile(f, b, 0o644)
	}
	s2 := kvchunk.New(16<<20, disk())
	b := startOn(t, s2)
	if u := completeChunks(t, b, "naive", "", docs(1, 0)); u.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("corrupted chunks served: %d cached tokens", u.PromptTokensDetails.CachedTokens)
	}
	s2.Flush()
	if v := metric(t, b, `kvgo_chunk_lookups_total{result="corrupt",tier="disk"}`); v != 2 {
		t.Errorf("corrupt lookups %v", v)
	}
	c := startOn(t, kvchunk.New(16<<20, disk()))
	if u := completeChunks(t, c, "naive", "", docs(0, 1)); u.PromptTokensDetails.CachedTokens != chunkTokens(t, docs(0, 1)) {
		t.Errorf("after the chunks were recomputed: %d cached tokens", u.PromptTokensDetails.CachedTokens)
	}
}
