package loadtest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/eval/ragkb"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
	"github.com/kvgo/kvgo/server"
)

// realServer runs a kvgo server on the embedded model in process, on
// loopback, with a chunk store and the chunk separator.
func realServer(t *testing.T) (*httptest.Server, *engine.Engine) {
	t.Helper()
	e, err := engine.Load("", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	sch, err := sched.New(e, sched.Config{KVBudget: 64 << 20, Chunks: kvchunk.New(32 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Engine: e, Sched: sch, ModelID: "kvgo-tiny", ChunkSep: " # # "})
	if err != nil {
		sch.Close()
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); sch.Close() })
	return ts, e
}

// TestRAGServed runs the RAG workload against a real server: a recipe
// that reuses chunks reports cached tokens, full prefill none; both
// answer the same questions (same seed, same prompt tokens) and every
// answer is scored.
func TestRAGServed(t *testing.T) {
	ts, e := realServer(t)
	run := func(kv string) *Report {
		t.Helper()
		cfg := Config{URL: ts.URL, Clients: 2, Duration: time.Minute, Requests: 6, MaxTokens: 8, KV: kv, Timeout: time.Minute,
			RAG: &RAG{Shape: ragkb.Config{Docs: 8, DocTokens: 128, K: 4}, Seed: 3, Warm: 12,
				Count: func(s string) int { return len(e.Tok.Encode(s, false, false)) }}}
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK != 6 || rep.Failed != 0 || rep.RAG == nil || rep.RAG.WarmFailed != 0 {
			t.Fatalf("%s: %+v %+v", kv, rep, rep.RAG)
		}
		return rep
	}
	full, craft := run("full"), run("cachecraft+f16")
	if full.CachedTokens != 0 {
		t.Errorf("full: %d cached tokens", full.CachedTokens)
	}
	// 8 documents, 12 warm-up questions of 4: most chunks are cached.
	if craft.CachedTokens <= 0 || craft.RAG.CachedShare <= 0 || craft.RAG.CachedShare >= 1 {
		t.Errorf("cachecraft: %d cached of %d prompt tokens", craft.CachedTokens, craft.PromptTokens)
	}
	if full.PromptTokens != craft.PromptTokens || full.PromptTokens < 6*4*128 {
		t.Errorf("prompt tokens: full %d, cachecraft %d: want the same questions", full.PromptTokens, craft.PromptTokens)
	}
	for _, r := range []*Report{full, craft} {
		s := r.RAG
		if s.Cases != 6 || s.Correct < 0 || s.Correct > 6 || s.Lo > s.Accuracy || s.Hi < s.Accuracy || s.Hi <= s.Lo || s.DocTokens < 128 {
			t.Errorf("%s: answers %+v", r.Recipe, s)
		}
		if r.TTFTp50 <= 0 || r.TTFTp90 < r.TTFTp50 || r.ReqPerSec <= 0 || r.PromptTokPerSec <= 0 {
			t.Errorf("%s: timings %+v", r.Recipe, r)
		}
		if !strings.HasPrefix(s.Salt, "kvgo-loadtest-rag-3-") {
			t.Errorf("salt %q", s.Salt)
		}
	}
}

// TestRAGItem: the prompt has the instruction, every document between
// separators and the question last; a document holding the separator is
// refused.
func TestRAGItem(t *testing.T) {
	r, err := newRAGRun(RAG{Shape: ragkb.Config{Docs: 5, DocTokens: 40, K: 3}, Seed: 1, Warm: -1}, "naive")
	if err != nil {
		t.Fatal(err)
	}
	if r.warm != 0 || r.cfg.Sep != " # # " || r.counted == "model tokenizer" {
		t.Errorf("defaults %+v", r.cfg)
	}
	if _, ok := r.nextWarm(); ok {
		t.Error("a warm-up question with Warm < 0")
	}
	it := r.next()
	parts := strings.Split(it.prompt, " # # ")
	if len(parts) != 5 || parts[0] != ragkb.Instruction || !strings.HasPrefix(parts[4], "What is the special magic number for "+r.docs[it.q.Target].Key) {
		t.Fatalf("%q", parts)
	}
	for i, d := range it.q.Docs {
		if parts[1+i] != r.docs[d].Text+"\n" {
			t.Errorf("part %d: %q", 1+i, parts[1+i])
		}
	}
	if !it.q.Correct(r.docs, " "+r.docs[it.q.Target].Value+".") || it.q.Correct(r.docs, "no") {
		t.Error("scoring")
	}
	if _, err := newRAGRun(RAG{Shape: ragkb.Config{Docs: 5, DocTokens: 40}, Sep: "the"}, "naive"); err == nil {
		t.Error("a separator inside the documents was accepted")
	}
}
