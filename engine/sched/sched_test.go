package sched

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/internal/golden"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
	"github.com/kvgo/kvgo/model"
	"github.com/kvgo/kvgo/sample"
)

var (
	engOnce     sync.Once
	eng, refEng *engine.Engine
	engErr      error
)

// tiny loads the embedded kvgo-tiny model once for all tests.
func tiny(t *testing.T) *engine.Engine {
	t.Helper()
	engOnce.Do(func() {
		if eng, engErr = engine.Load("", 2); engErr == nil {
			// References run on an engine of their own: a Scheduler owns
			// its engine's worker pool, which runs one pass at a time.
			refEng, engErr = engine.Load("", 1)
		}
	})
	if engErr != nil {
		t.Fatal(engErr)
	}
	return eng
}

func newSched(t *testing.T, cfg Config) *Scheduler {
	t.Helper()
	if cfg.KVBudget == 0 {
		cfg.KVBudget = 64 << 20
	}
	s, err := New(tiny(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func mustRecipe(t *testing.T, s string) *recipe.Recipe {
	t.Helper()
	r, err := recipe.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func prompt(t *testing.T, text string) []int {
	return tiny(t).Tok.Encode(text, true, false)
}

// longText is prose of about n tokens.
func longText(n int) string {
	words := strings.Fields("the cache keeps keys and values of every token so that attention over the past does not recompute them and a server admits requests by the memory they need")
	var b strings.Builder
	for i := 0; b.Len() < n*4; i++ {
		b.WriteString(words[i%len(words)])
		b.WriteByte(' ')
	}
	return b.String()
}

type result struct {
	tokens []int
	final  Event
}

// collect reads a handle to its end.
func collect(t *testing.T, h *Handle) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r result
	for {
		e, err := h.Recv(ctx)
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if e.Done {
			r.final = e
			return r
		}
		r.tokens = append(r.tokens, e.Token)
	}
}

// reference generates greedily with the one-sequence engine path.
func reference(t *testing.T, ids []int, n int, rcp string) []int {
	t.Helper()
	tiny(t)
	var out []int
	_, err := refEng.Generate(context.Background(), engine.Request{
		Prompt: ids, MaxTokens: n, KV: mustRecipe(t, rcp),
		OnToken: func(id int) error { out = append(out, id); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func greedy(ids []int, n int) Request {
	return Request{Prompt: ids, MaxTokens: n, Sampling: sample.Params{Temperature: 0}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBatchedMatchesSingleSequence(t *testing.T) {
	s := newSched(t, Config{PrefillChunk: 16})
	texts := []string{
		"The quick brown fox",
		"Once upon a time there was a cache",
		longText(70),
		longText(30),
	}
	hs := make([]*Handle, len(texts))
	for i, tx := range texts {
		h, err := s.Submit(context.Background(), greedy(prompt(t, tx), 10))
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
	}
	for i, h := range hs {
		got := collect(t, h)
		want := reference(t, prompt(t, texts[i]), 10, "f16")
		if fmt.Sprint(got.tokens) != fmt.Sprint(want) {
			t.Errorf("prompt %d: batched %v, alone %v", i, got.tokens, want)
		}
		if got.final.Finish != FinishLength || got.final.Generated != 10 {
			t.Errorf("prompt %d: final %+v", i, got.final)
		}
	}
	waitFor(t, "idle", s.Idle)
	if st := s.Stats(); st.InUse != 0 || st.Reserved != 0 {
		t.Errorf("after all sequences: %+v", st)
	}
}

// A long prompt is fed in chunks between decode steps: a stream that is
// already decoding gets tokens while the prompt is still being prefilled.
func TestChunkedPrefillDoesNotStallDecoding(t *testing.T) {
	s := newSched(t, Config{PrefillChunk: 8, Batch: 32, MaxSeqs: 8})
	short, err := s.Submit(context.Background(), greedy(prompt(t, "Hello"), 100))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := short.Recv(ctx); err != nil { // decoding now
		t.Fatal(err)
	}
	longIDs := prompt(t, longText(120))
	long, err := s.Submit(context.Background(), greedy(longIDs, 4))
	if err != nil {
		t.Fatal(err)
	}
	steps0 := s.Stats().Steps
	// Count the short stream's tokens until the long prompt's first token.
	var during int
	first := make(chan struct{})
	go func() {
		if _, err := long.Recv(ctx); err == nil {
			close(first)
		}
	}()
	for {
		select {
		case <-first:
			goto done
		default:
		}
		e, err := short.Recv(ctx)
		if err != nil || e.Done {
			break
		}
		during++
	}
done:
	chunks := (len(longIDs) + 7) / 8
	if during < chunks/2 {
		t.Errorf("the decoding stream got %d tokens while a %d-token prompt was fed in %d chunks (steps %d)", during, len(longIDs), chunks, s.Stats().Steps-steps0)
	}
}

func TestAdmissionByBytes(t *testing.T) {
	e := tiny(t)
	ids := prompt(t, longText(40))
	const gen = 16
	full := e.FullCacheBytes(len(ids) + gen)
	for _, tc := range []struct {
		recipe  string
		minPeak int // concurrent sequences the budget should admit at least
	}{
		{"f16", 2},
		{"q4", 5},
		{"snapkv(budget=16)+q4", 3}, // the F32-staged prompt is the peak (see SERVER.md)
	} {
		t.Run(tc.recipe, func(t *testing.T) {
			budget := 2*full + full/2 // two full sequences fit, not three
			s := newSched(t, Config{KVBudget: budget, MaxSeqs: 16, MaxQueue: 32, PrefillChunk: 64})
			r := mustRecipe(t, tc.recipe)
			const n = 6
			var hs []*Handle
			for range n {
				req := greedy(ids, gen)
				req.Recipe = r
				h, err := s.Submit(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				hs = append(hs, h)
			}
			maxRunning := 0
			var mu sync.Mutex
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					st := s.Stats()
					mu.Lock()
					maxRunning = max(maxRunning, st.Running)
					mu.Unlock()
					if st.InUse > budget {
						t.Errorf("KV bytes %d over the budget %d", st.InUse, budget)
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			})
			for _, h := range hs {
				if r := collect(t, h); r.final.Finish != FinishLength {
					t.Errorf("final %+v", r.final)
				}
			}
			close(stop)
			wg.Wait()
			st := s.Stats()
			if st.Peak > budget {
				t.Errorf("peak KV bytes %d over the budget %d", st.Peak, budget)
			}
			if maxRunning < tc.minPeak {
				t.Errorf("at most %d sequences ran at once; want at least %d", maxRunning, tc.minPeak)
			}
			if tc.recipe == "f16" && maxRunning > 2 {
				t.Errorf("%d full-cache sequences ran at once in a budget for 2", maxRunning)
			}
			t.Logf("%s: up to %d concurrent, peak %d of %d bytes", tc.recipe, maxRunning, st.Peak, budget)
		})
	}
}

// The reservation of a recipe without an evictor is exact for f16 and an
// upper bound of the real bytes at every step for the other codecs.
func TestReservationBoundsRealBytes(t *testing.T) {
	e := tiny(t)
	s := newSched(t, Config{})
	for _, n := range []int{1, 31, 32, 33, 500, 1500} {
		got, err := s.Reservation(nil, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := e.FullCacheBytes(n); got != want {
			t.Errorf("f16 reservation of %d tokens: %d, want FullCacheBytes %d", n, got, want)
		}
	}
	ids := prompt(t, longText(100))
	for _, rs := range []string{"f16", "q8", "q4", "kivi(bits=2,residual=32)", "snapkv(budget=40)+q8", "h2o(budget=48)+q4", "tova(budget=64)+q8", "streaming(budget=40)+kivi(bits=4,residual=16)"} {
		r := mustRecipe(t, rs)
		p, err := s.fp.plan(r)
		if err != nil {
			t.Fatal(err)
		}
		const gen = 40
		want := p.admit(len(ids), gen)
		c, err := e.NewCache(r, 2048)
		if err != nil {
			t.Fatal(err)
		}
		st := e.Model.NewState(e.Pool, 64, 2048)
		if p.evicts {
			c.BeginPrefill(len(ids))
		}
		var peak int64
		for i := 0; i < len(ids); i += 64 {
			j := min(i+64, len(ids))
			if _, err := st.ForwardSeqs([]model.Seq{{Cache: c, Tokens: ids[i:j], Start: i, Logits: j == len(ids)}}); err != nil {
				t.Fatal(err)
			}
			peak = max(peak, c.Bytes())
		}
		c.EndPrefill()
		after := p.running(c.Bytes(), c.Len(), len(ids), gen)
		var decodePeak int64
		for k := 0; k < gen; k++ {
			if _, err := st.ForwardSeqs([]model.Seq{{Cache: c, Tokens: []int{5 + k%50}, Start: len(ids) + k, Logits: true}}); err != nil {
				t.Fatal(err)
			}
			if b := c.Bytes(); b > after {
				t.Errorf("%s: %d bytes after %d decode steps exceed the running reservation %d", rs, b, k+1, after)
				break
			}
			peak = max(peak, c.Bytes())
			decodePeak = max(decodePeak, c.Bytes())
		}
		t.Logf("%-44s after prefill: reserve %7d, decode peak %7d", rs, after, decodePeak)
		if peak > want {
			t.Errorf("%s: peak %d bytes exceeds the admission reservation %d", rs, peak, want)
		}
		t.Logf("%-44s reserve %7d  peak %7d  full %7d", rs, want, peak, e.FullCacheBytes(len(ids)+gen))
	}
}

func TestCancelFreesMemory(t *testing.T) {
	s := newSched(t, Config{MaxSeqs: 4})
	ctx, cancel := context.WithCancel(context.Background())
	h, err := s.Submit(ctx, greedy(prompt(t, longText(60)), 1500))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Submit(context.Background(), greedy(prompt(t, "Hello there"), 8))
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	for range 3 {
		if _, err := h.Recv(rctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.InUse == 0 {
		t.Fatalf("a running sequence holds no KV bytes: %+v", st)
	}
	cancel()
	r := collect(t, h)
	if r.final.Finish != FinishCancelled {
		t.Errorf("final %+v, want cancelled", r.final)
	}
	collect(t, other)
	waitFor(t, "idle", s.Idle)
	if st := s.Stats(); st.InUse != 0 || st.Reserved != 0 || st.Running != 0 {
		t.Errorf("after cancel: %+v", st)
	}
}

func TestCancelWhileQueued(t *testing.T) {
	s := newSched(t, Config{MaxSeqs: 1, MaxQueue: 4, Batch: 8, PrefillChunk: 4})
	long, err := s.Submit(context.Background(), greedy(prompt(t, "Hello"), 400))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", func() bool { return s.Stats().Running == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	h, err := s.Submit(ctx, greedy(prompt(t, "Queued"), 4))
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Queued != 1 {
		t.Fatalf("queued %d, want 1", st.Queued)
	}
	cancel()
	if r := collect(t, h); r.final.Finish != FinishCancelled || len(r.tokens) != 0 {
		t.Errorf("queued then cancelled: %+v", r)
	}
	if st := s.Stats(); st.Queued != 0 {
		t.Errorf("queue holds %d after cancel", st.Queued)
	}
	long.Cancel()
	collect(t, long)
}

func TestQueueFull(t *testing.T) {
	s := newSched(t, Config{MaxSeqs: 1, MaxQueue: 1, Batch: 8, PrefillChunk: 4})
	a, err := s.Submit(context.Background(), greedy(prompt(t, "Hello"), 400))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", func() bool { return s.Stats().Running == 1 })
	b, err := s.Submit(context.Background(), greedy(prompt(t, "Second"), 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(context.Background(), greedy(prompt(t, "Third"), 4)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third request: %v, want ErrQueueFull", err)
	}
	a.Stop()
	if r := collect(t, a); r.final.Finish != FinishStop {
		t.Errorf("stopped: %+v", r.final)
	}
	if r := collect(t, b); r.final.Finish != FinishLength || len(r.tokens) != 4 {
		t.Errorf("second: %+v", r)
	}
}

func TestSubmitErrors(t *testing.T) {
	s := newSched(t, Config{KVBudget: 1 << 20})
	ids := prompt(t, "Hello")
	for _, tc := range []struct {
		req  Request
		want error
	}{
		{Request{MaxTokens: 4}, ErrInvalid},
		{Request{Prompt: ids}, ErrInvalid},
		{Request{Prompt: []int{1, 99999}, MaxTokens: 4}, ErrInvalid},
		{Request{Prompt: ids, MaxTokens: 4, Sampling: sample.Params{Temperature: -1}}, ErrInvalid},
		{Request{Prompt: make([]int, 2048), MaxTokens: 1}, ErrContext},
		{Request{Prompt: ids, MaxTokens: 2047}, ErrContext},
		{Request{Prompt: prompt(t, longText(700)), MaxTokens: 600}, ErrTooLarge},
	} {
		if _, err := s.Submit(context.Background(), tc.req); !errors.Is(err, tc.want) {
			t.Errorf("prompt %d tokens, max %d: %v, want %v", len(tc.req.Prompt), tc.req.MaxTokens, err, tc.want)
		}
	}
	s.Drain()
	if _, err := s.Submit(context.Background(), greedy(ids, 2)); !errors.Is(err, ErrDraining) {
		t.Errorf("while draining: %v", err)
	}
}

// A panic in one sequence's step fails that sequence only.
func TestPanicFailsOneSequence(t *testing.T) {
	var victim uint64
	var mu sync.Mutex
	s := newSched(t, Config{advanceHook: func(id uint64) {
		mu.Lock()
		defer mu.Unlock()
		if id == victim {
			panic("injected")
		}
	}})
	mu.Lock()
	hs := make([]*Handle, 3)
	for i := range hs {
		h, err := s.Submit(context.Background(), greedy(prompt(t, fmt.Sprintf("Sequence %d", i)), 12))
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
	}
	victim = hs[1].ID()
	mu.Unlock()
	for i, h := range hs {
		r := collect(t, h)
		if i == 1 {
			if r.final.Finish != FinishError || !errors.Is(r.final.Err, ErrInternal) {
				t.Errorf("victim: %+v", r.final)
			}
			continue
		}
		if r.final.Finish != FinishLength || len(r.tokens) != 12 {
			t.Errorf("sequence %d: %+v", i, r.final)
		}
	}
	waitFor(t, "idle", s.Idle)
	if st := s.Stats(); st.InUse != 0 || st.Panics != 1 {
		t.Errorf("stats %+v", st)
	}
}

// failing wraps the model pass and panics whenever a marked cache is part
// of the batch, like a bug triggered by one sequence's data.
type failing struct {
	forwarder
	bad func(model.Seq) bool
}

func (f failing) ForwardSeqs(seqs []model.Seq) ([][]float32, error) {
	for _, q := range seqs {
		if f.bad(q) {
			panic("injected forward failure")
		}
	}
	return f.forwarder.ForwardSeqs(seqs)
}

func TestForwardPanicIsolated(t *testing.T) {
	badIDs := prompt(t, "poison pill prompt")
	s := newSched(t, Config{wrapForward: func(f forwarder) forwarder {
		return failing{forwarder: f, bad: func(q model.Seq) bool {
			return q.Start == 0 && len(q.Tokens) == len(badIDs) && q.Tokens[1] == badIDs[1] && q.Tokens[2] == badIDs[2]
		}}
	}})
	good, err := s.Submit(context.Background(), greedy(prompt(t, "Hello"), 30))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := good.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.Submit(context.Background(), greedy(badIDs, 5))
	if err != nil {
		t.Fatal(err)
	}
	if r := collect(t, bad); r.final.Finish != FinishError || !errors.Is(r.final.Err, ErrInternal) {
		t.Errorf("bad sequence: %+v", r.final)
	}
	r := collect(t, good)
	got := append([]int{first.Token}, r.tokens...)
	if want := reference(t, prompt(t, "Hello"), 30, "f16"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the good sequence changed after the rollback:\n got %v\nwant %v", got, want)
	}
}

func TestPrefixReuse(t *testing.T) {
	pc := prefix.New()
	s := newSched(t, Config{Prefix: pc})
	history := longText(60)
	first := prompt(t, history)
	r1 := collect(t, must(s.Submit(context.Background(), greedy(first, 8))))
	if r1.final.Cached != 0 {
		t.Errorf("first turn cached %d", r1.final.Cached)
	}
	waitFor(t, "offer", func() bool { return s.Stats().PrefixBytes > 0 })
	second := prompt(t, history+" and then the reply")
	r2 := collect(t, must(s.Submit(context.Background(), greedy(second, 8))))
	if r2.final.Cached < len(first)-4 {
		t.Errorf("second turn reused %d of %d shared tokens", r2.final.Cached, len(first))
	}
	if want := reference(t, second, 8, "f16"); fmt.Sprint(r2.tokens) != fmt.Sprint(want) {
		t.Errorf("with a reused prefix %v, from scratch %v", r2.tokens, want)
	}
	st := s.Stats()
	if st.PrefixHits != 1 || st.PrefixQueries != 2 || st.PrefixBytes == 0 || st.InUse != st.PrefixBytes {
		t.Errorf("stats %+v", st)
	}
	// Evicting recipes never use it.
	req := greedy(second, 4)
	req.Recipe = mustRecipe(t, "snapkv(budget=32)")
	if r := collect(t, must(s.Submit(context.Background(), req))); r.final.Cached != 0 {
		t.Errorf("snapkv reused %d tokens", r.final.Cached)
	}
	s.Close()
	if pc.Len() != 0 || pc.Bytes() != 0 {
		t.Errorf("after Close the prefix cache holds %d entries, %d bytes", pc.Len(), pc.Bytes())
	}
}

// A cache offered under one model is not reused by a scheduler on
// another: the embedded kvgo-tiny (run 3) and ../shared/models/kvgo-tiny.gguf
// (run 4) share architecture, tokenizer and recipe, and only the model
// identity in the key tells their caches apart.
func TestPrefixNotReusedAcrossModels(t *testing.T) {
	a := tiny(t)
	path := golden.Path(t, "models/kvgo-tiny.gguf")
	b, err := engine.Load(path, 1)
	if err != nil {
		t.Skipf("the second model %s is unavailable: %v", path, err)
	}
	defer b.Close()
	idA, idB := a.Identity(), b.Identity()
	if idA == idB {
		t.Skipf("%s is the embedded model; this test needs another checkpoint", path)
	}
	history := prompt(t, longText(60))
	second := prompt(t, longText(60)+" and then the reply")
	if fmt.Sprint(b.Tok.Encode(longText(60), true, false)) != fmt.Sprint(history) {
		t.Skip("the two models tokenize differently")
	}

	// Model A's cache of the history, offered under A's identity.
	store := prefix.New()
	c, err := a.NewCache(nil, 512)
	if err != nil {
		t.Fatal(err)
	}
	st := a.Model.NewState(a.Pool, 128, 512)
	if _, err := st.Forward(c, history, 0); err != nil {
		t.Fatal(err)
	}
	f16 := mustRecipe(t, "").String()
	store.Offer(prefix.Key{Model: idA, Recipe: f16}, history, c)
	if fork, n := store.Acquire(prefix.Key{Model: idA, Recipe: f16}, second); fork == nil || n != len(history) {
		t.Fatalf("model A's own key reuses %d tokens, want %d", n, len(history))
	} else {
		fork.Release()
	}

	// B's greedy continuation from scratch, before B's scheduler owns its pool.
	var want []int
	if _, err := b.Generate(context.Background(), engine.Request{
		Prompt: second, MaxTokens: 8, KV: mustRecipe(t, ""),
		OnToken: func(id int) error { want = append(want, id); return nil },
	}); err != nil {
		t.Fatal(err)
	}
	s, err := New(b, Config{KVBudget: 64 << 20, Prefix: store})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := collect(t, must(s.Submit(context.Background(), greedy(second, 8))))
	if r.final.Cached != 0 {
		t.Errorf("model B reused %d tokens of model A's cache", r.final.Cached)
	}
	if fmt.Sprint(r.tokens) != fmt.Sprint(want) {
		t.Errorf("model B generated %v, from scratch %v", r.tokens, want)
	}
	if st := s.Stats(); st.PrefixQueries != 1 || st.PrefixHits != 0 {
		t.Errorf("stats %+v", st)
	}
}

func must(h *Handle, err error) *Handle {
	if err != nil {
		panic(err)
	}
	return h
}

func TestAbortEndsRunningSequences(t *testing.T) {
	s := newSched(t, Config{MaxSeqs: 1, MaxQueue: 4})
	a := must(s.Submit(context.Background(), greedy(prompt(t, "Hello"), 1500)))
	waitFor(t, "running", func() bool { return s.Stats().Running == 1 })
	b := must(s.Submit(context.Background(), greedy(prompt(t, "Waiting"), 4)))
	s.Abort(nil)
	for _, h := range []*Handle{a, b} {
		if r := collect(t, h); r.final.Finish != FinishError || !errors.Is(r.final.Err, ErrShutdown) {
			t.Errorf("after abort: %+v", r.final)
		}
	}
	waitFor(t, "idle", s.Idle)
	if st := s.Stats(); st.InUse != 0 {
		t.Errorf("after abort: %+v", st)
	}
}

// When the loop stops with several sequences running (quit seen right
// after a step, before any abort reached reap), it ends each of them with
// ErrShutdown on its way out, although finishing one removes it from the
// list of running sequences.
func TestLoopExitEndsSeveralRunningSequences(t *testing.T) {
	s := newSched(t, Config{MaxSeqs: 3, MaxQueue: 4})
	var hs []*Handle
	for _, p := range []string{"One", "Two", "Three"} {
		hs = append(hs, must(s.Submit(context.Background(), greedy(prompt(t, p), 1500))))
	}
	waitFor(t, "running", func() bool { return s.Stats().Running == 3 })
	close(s.quit) // the loop's own way out, without Close's abort first
	<-s.done
	for _, h := range hs {
		if r := collect(t, h); r.final.Finish != FinishError || !errors.Is(r.final.Err, ErrShutdown) {
			t.Errorf("after the loop stopped: %+v", r.final)
		}
	}
	if st := s.Stats(); st.Running != 0 || st.InUse != 0 {
		t.Errorf("after the loop stopped: %+v", st)
	}
}
