package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
)

// chaosFor is how long TestChaos drives the server: a few seconds in the
// ordinary test run, about a minute in .ci/run (-chaos 45s).
var chaosFor = flag.Duration("chaos", 4*time.Second, "how long TestChaos sends requests")

// chaosRecipes are the recipes valid chaos requests choose from: codecs,
// evictors (staged and rolling), a selector.
var chaosRecipes = []string{"", "f16", "q8", "q4", "kivi(bits=2)", "snapkv(budget=64)+q4", "streaming(budget=32)", "h2o(budget=0.5)+q8", "window+q8"}

// chaosStats counts what the clients sent and got.
type chaosStats struct {
	mu       sync.Mutex
	sent     map[string]int // by kind
	answered map[string]int // valid requests answered in full, by kind
	status   map[string]int // kind/status
	bad      []string       // violations, kept short
}

func (c *chaosStats) note(kind string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[kind]++
	c.status[fmt.Sprintf("%s/%d", kind, status)]++
}

func (c *chaosStats) ok(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered[kind]++
}

func (c *chaosStats) fail(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) < 20 {
		c.bad = append(c.bad, clip(fmt.Sprintf(format, a...))[:min(400, len(clip(fmt.Sprintf(format, a...))))])
	}
}

// TestChaos drives a server on loopback with concurrent clients sending a
// mix of valid, malformed and extreme requests and disconnecting at
// random, for chaosFor. Afterwards: no panic anywhere, every valid request
// answered in full, never a 5xx, kvgo_kv_bytes_peak never above the budget
// (watched throughout), and no KV bytes left to sequences.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a server for seconds")
	}
	const budget = 3 << 20
	var panics atomic.Int64
	logf := func(format string, a ...any) {
		if strings.Contains(fmt.Sprintf(format, a...), "panic") {
			panics.Add(1)
			t.Logf("logged: %.500s", fmt.Sprintf(format, a...))
		}
	}
	goroutines := runtime.NumGoroutine()
	ts := start(t, sched.Config{KVBudget: budget, MaxSeqs: 8, MaxQueue: 256, PrefillChunk: 64, Prefix: prefix.New(), Logf: logf},
		Config{MaxBodyBytes: 1 << 20, DefaultMaxTokens: 24, Logf: logf})
	ctx := ts.sch.Context()

	// Watch the budget throughout, from /metrics as an operator would.
	stop := make(chan struct{})
	var watch sync.WaitGroup
	var overBudget atomic.Int64
	watch.Go(func() {
		for {
			if p := metric(t, ts, "kvgo_kv_bytes_peak"); p > budget {
				overBudget.Store(int64(p))
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	st := &chaosStats{sent: map[string]int{}, answered: map[string]int{}, status: map[string]int{}}
	deadline := time.Now().Add(*chaosFor)
	const workers = 12
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(14, uint64(w)))
			for time.Now().Before(deadline) {
				switch k := rng.IntN(100); {
				case k < 55:
					chaosValid(t, client, ts.URL, rng, st, ctx, false)
				case k < 65:
					chaosValid(t, client, ts.URL, rng, st, ctx, true)
				case k < 85:
					chaosMalformed(client, ts.URL, rng, st)
				default:
					chaosExtreme(client, ts.URL, rng, st, ctx)
				}
			}
		})
	}
	wg.Wait()
	waitIdle(t, ts)
	close(stop)
	watch.Wait()

	s := ts.sch.Stats()
	t.Logf("%v: sent %v; valid answered %v; statuses %v; %d scheduler steps, peak %d of %d KV bytes, prefix cache %d bytes (%d hits)",
		*chaosFor, st.sent, st.answered, st.status, s.Steps, s.Peak, int64(budget), s.PrefixBytes, s.PrefixHits)
	for _, b := range st.bad {
		t.Error(b)
	}
	if st.answered["valid"] != st.sent["valid"] || st.sent["valid"] == 0 {
		t.Errorf("%d of %d valid requests answered in full", st.answered["valid"], st.sent["valid"])
	}
	if n := panics.Load(); n != 0 || s.Panics != 0 || metric(t, ts, "kvgo_recovered_panics_total") != 0 {
		t.Errorf("panics: %d logged, %d recovered by the scheduler", n, s.Panics)
	}
	if p := overBudget.Load(); p != 0 || s.Peak > budget || metric(t, ts, "kvgo_kv_bytes_peak") > budget {
		t.Errorf("KV peak %d (seen %d) above the budget %d", s.Peak, p, budget)
	}
	if s.Preempted != 0 {
		t.Errorf("%d sequences failed with kv_memory_exhausted", s.Preempted)
	}
	if s.SeqBytes != 0 || s.Reserved != 0 || s.InUse != s.PrefixBytes || s.Running != 0 || s.Queued != 0 {
		t.Errorf("after the chaos: %+v; want no bytes but the prefix cache's", s)
	}
	for _, m := range []string{"kvgo_kv_sequence_bytes", "kvgo_kv_bytes_reserved", "kvgo_running_sequences", "kvgo_queue_depth"} {
		if v := metric(t, ts, m); v != 0 {
			t.Errorf("%s = %v after the chaos", m, v)
		}
	}
	if resp, out := ts.post(t, "/v1/completions", map[string]any{"model": modelID, "prompt": "still here", "max_tokens": 2}); resp.StatusCode != 200 {
		t.Errorf("after the chaos: %d %s", resp.StatusCode, out)
	}
	client.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	waitUntil(t, "the handlers' goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines+12 })
}

func words(rng *rand.Rand, n int) string {
	w := strings.Fields("the cache keeps keys and values of every token so attention over the past need not recompute them; a server admits requests by the memory they need. Passkey 4821 is hidden here.")
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w[rng.IntN(len(w))])
	}
	return b.String()
}

// chaosValid sends a valid request (both endpoints, streaming or not, any
// recipe, salts, stops) and checks it is answered in full; with
// disconnect, the client goes away at a random moment instead.
func chaosValid(t *testing.T, client *http.Client, url string, rng *rand.Rand, st *chaosStats, ctxLen int, disconnect bool) {
	kind := "valid"
	if disconnect {
		kind = "disconnect"
	}
	maxTokens := 1 + rng.IntN(40)
	req := map[string]any{"model": modelID, "max_tokens": maxTokens, "stream": rng.IntN(2) == 0, "seed": rng.IntN(1000), "temperature": rng.Float64()}
	if r := chaosRecipes[rng.IntN(len(chaosRecipes))]; r != "" {
		req["kv"] = r
	}
	if rng.IntN(3) == 0 {
		req["cache_salt"] = []string{"a", "b"}[rng.IntN(2)]
	}
	if rng.IntN(4) == 0 {
		req["stop"] = []string{"cache", "\n"}
	}
	if rng.IntN(2) == 0 {
		req["ignore_eos"] = true
	}
	path := "/v1/completions"
	switch rng.IntN(3) {
	case 0:
		path = "/v1/chat/completions"
		// A few shared system prompts, so the prefix cache is hit (within
		// a tenant) and shrunk under pressure.
		system := words(rand.New(rand.NewPCG(uint64(rng.IntN(3)), 0)), 60)
		req["messages"] = []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": words(rng, 1+rng.IntN(120))}}
	case 1:
		n := 1 + rng.IntN(300)
		if rng.IntN(10) == 0 {
			n = 1 + rng.IntN(ctxLen-maxTokens-1) // up to the edge of the context
		}
		ids := make([]int, n)
		for i := range ids {
			ids[i] = 3 + rng.IntN(1000)
		}
		if len(ids) > 600 {
			req["kv"] = "q4" // a long prompt in a compact recipe, within the budget
		}
		req["prompt"] = ids
	default:
		req["prompt"] = words(rng, 1+rng.IntN(250))
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if disconnect {
		time.AfterFunc(time.Duration(rng.IntN(40))*time.Millisecond, cancel)
	}
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(body))
	resp, err := client.Do(hr)
	if err != nil {
		if !disconnect {
			st.fail("valid %s: %v", path, err)
		}
		st.note(kind, 0)
		return
	}
	defer resp.Body.Close()
	st.note(kind, resp.StatusCode)
	if disconnect {
		// Read a little, then go away mid-stream.
		io.CopyN(io.Discard, resp.Body, int64(rng.IntN(400)))
		cancel()
		if resp.StatusCode >= 500 {
			st.fail("disconnecting %s: status %d", path, resp.StatusCode)
		}
		return
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		st.fail("valid %s %.200s: %d %.300s (%v)", path, body, resp.StatusCode, out, err)
		return
	}
	if req["stream"] == true {
		if !streamComplete(out, maxTokens) {
			st.fail("valid stream %s: incomplete %.300s", path, out)
			return
		}
	} else {
		var r struct {
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
		}
		if json.Unmarshal(out, &r) != nil || len(r.Choices) != 1 || r.Usage == nil || r.Usage.CompletionTokens > maxTokens ||
			(r.Choices[0].FinishReason != "stop" && r.Choices[0].FinishReason != "length") {
			st.fail("valid %s: answer %.300s", path, out)
			return
		}
	}
	st.ok(kind)
}

// streamComplete reports whether an SSE body ended as a stream must: a
// finish reason, a usage chunk within max_tokens, [DONE], and no error.
func streamComplete(body []byte, maxTokens int) bool {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	finish, done := false, false
	var u *usage
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		switch {
		case !ok:
		case data == "[DONE]":
			done = true
		default:
			var c struct {
				Error   any `json:"error"`
				Choices []struct {
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Usage *usage `json:"usage"`
			}
			if json.Unmarshal([]byte(data), &c) != nil || c.Error != nil {
				return false
			}
			if len(c.Choices) == 1 && c.Choices[0].FinishReason != nil {
				finish = true
			}
			if c.Usage != nil {
				u = c.Usage
			}
		}
	}
	return finish && done && u != nil && u.CompletionTokens <= maxTokens
}

// checkRefusal checks a refusal: a short OpenAI error object with a code,
// never a 5xx.
func checkRefusal(st *chaosStats, kind string, body []byte, status int, out []byte) {
	if status >= 500 || status == 0 {
		st.fail("%s %.200q: status %d %.300s", kind, body, status, out)
		return
	}
	if status == 200 {
		return // a mutation that is still a valid request
	}
	var v struct {
		Error *struct {
			Message string  `json:"message"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(out, &v) != nil || v.Error == nil || v.Error.Message == "" || len(out) > 2048 {
		st.fail("%s %.200q: %d, not a short error object: %.300s", kind, body, status, out)
	}
}

func post(client *http.Client, url string, body []byte) (int, []byte) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// chaosMalformed sends a probe of the fuzz seeds or a valid body with
// bytes flipped, cut or repeated.
func chaosMalformed(client *http.Client, url string, rng *rand.Rand, st *chaosStats) {
	var body []byte
	if rng.IntN(2) == 0 {
		body = []byte(probes[rng.IntN(len(probes))])
	} else {
		body = []byte(fmt.Sprintf(`{"model":"kvgo-tiny","prompt":%q,"max_tokens":%d,"stream":%v}`, words(rng, 10), 1+rng.IntN(8), rng.IntN(2) == 0))
		for range 1 + rng.IntN(4) {
			i := rng.IntN(len(body))
			switch rng.IntN(3) {
			case 0:
				body[i] = byte(rng.IntN(256))
			case 1:
				body = body[:i]
			default:
				body = append(body[:i], append(bytes.Repeat(body[i:i+1], rng.IntN(50)), body[i:]...)...)
			}
			if len(body) == 0 {
				break
			}
		}
	}
	path := []string{"/v1/completions", "/v1/chat/completions"}[rng.IntN(2)]
	status, out := post(client, url+path, body)
	st.note("malformed", status)
	checkRefusal(st, "malformed", body, status, out)
}

// chaosExtreme sends requests at and past the limits: sizes, counts and
// values a hostile client picks.
func chaosExtreme(client *http.Client, url string, rng *rand.Rand, st *chaosStats, ctxLen int) {
	long := strings.Repeat("word ", 220_000) // 1.1 MB: over --max-body
	ids := make([]int, ctxLen-8)
	for i := range ids {
		ids[i] = 5
	}
	cases := []map[string]any{
		{"model": modelID, "prompt": "hi", "max_tokens": math.MaxInt64},
		{"model": modelID, "prompt": "hi", "max_tokens": math.MaxInt64 - 1, "stream": true},
		{"model": modelID, "messages": []map[string]string{{"role": "user", "content": "hi"}}, "max_completion_tokens": math.MaxInt64 - 3},
		{"model": modelID, "prompt": long},
		{"model": modelID, "prompt": long[:900_000]},
		{"model": modelID, "prompt": strings.Repeat("x", 200_000)},
		{"model": modelID, "prompt": ids, "max_tokens": 9},
		{"model": modelID, "prompt": ids, "max_tokens": 8, "kv": "f32"},
		{"model": modelID, "prompt": []int{1, math.MaxInt64}},
		{"model": modelID, "prompt": "hi", "kv": strings.Repeat("q8+", 3000)},
		{"model": modelID, "prompt": "hi", "kv": "snapkv(budget=" + strings.Repeat("9", 5000) + ")"},
		{"model": modelID, "prompt": "hi", "stop": []string{"a", "b", "c", "d", "e", "f"}},
		{"model": modelID, "prompt": "hi", "stop": strings.Repeat("s", 100_000), "max_tokens": 2},
		{"model": strings.Repeat("m", 50_000), "prompt": "hi"},
		{"model": modelID, "messages": []map[string]string{{"role": strings.Repeat("r", 50_000), "content": "hi"}}},
		{"model": modelID, "messages": make([]map[string]string, 5000)},
		{"model": modelID, "prompt": "hi", "temperature": 1e308},
		{"model": modelID, "prompt": "hi", "seed": math.MinInt64, "max_tokens": 1},
	}
	body, _ := json.Marshal(cases[rng.IntN(len(cases))])
	path := "/v1/completions"
	if bytes.Contains(body, []byte(`"messages"`)) {
		path = "/v1/chat/completions"
	}
	status, out := post(client, url+path, body)
	st.note("extreme", status)
	checkRefusal(st, "extreme", body, status, out)
}
