package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is an OpenAI-compatible streaming server on loopback
// (httptest listens on 127.0.0.1) that counts and records what it gets.
type fakeServer struct {
	*httptest.Server
	requests atomic.Int64
	scrapes  atomic.Int64
	mu       sync.Mutex
	bodies   []map[string]any
	paths    []string
	// answer, if set, handles a completion instead of the normal stream.
	answer func(w http.ResponseWriter, n int64) bool
	delay  time.Duration // before the first chunk
	// gap is the pause between chunks, so inter-token gaps are nonzero.
	gap time.Duration
}

func newFake(t *testing.T, configure func(*fakeServer)) *fakeServer {
	t.Helper()
	f := &fakeServer{gap: time.Millisecond}
	if configure != nil {
		configure(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"object":"list","data":[{"id":"fake-model"},{"id":"other"}]}`)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		f.scrapes.Add(1)
		fmt.Fprint(w, "# HELP kvgo_running_sequences x\nkvgo_running_sequences 3\nkvgo_queue_depth 2\n"+
			"kvgo_kv_bytes_in_use 1024\nkvgo_kv_bytes_peak 2048\nkvgo_kv_budget_bytes 4.194304e+06\nkvgo_kv_compression_ratio 2.5\n")
	})
	stream := func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.paths = append(f.paths, r.URL.Path)
		f.mu.Unlock()
		if f.answer != nil && f.answer(w, n) {
			return
		}
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
		max := int(body["max_tokens"].(float64))
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range max {
			if r.URL.Path == "/v1/chat/completions" {
				fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			} else {
				fmt.Fprintf(w, "data: {\"choices\":[{\"text\":\"t%d\"}]}\n\n", i)
			}
			fl.Flush()
			time.Sleep(f.gap)
		}
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":%d}}\n\ndata: [DONE]\n\n", max)
	}
	mux.HandleFunc("POST /v1/completions", stream)
	mux.HandleFunc("POST /v1/chat/completions", stream)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func config(url string) Config {
	return Config{URL: url, Clients: 3, Duration: 20 * time.Second, Requests: 7, PromptTokens: 30, MaxTokens: 4,
		Temperature: 0.5, Timeout: 10 * time.Second}
}

// TestRunCounts: exactly Requests requests are sent, every one streamed
// and timed; the model comes from /v1/models and the gauges from
// /metrics.
func TestRunCounts(t *testing.T) {
	f := newFake(t, nil)
	cfg := config(f.URL + "/")
	cfg.KV = "some(recipe=1)"
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 7 {
		t.Errorf("the server got %d requests, want 7", got)
	}
	if rep.Format != Format || rep.URL != f.URL || rep.Model != "fake-model" || rep.Recipe != "some(recipe=1)" || rep.Clients != 3 {
		t.Errorf("header %+v", rep)
	}
	if rep.OK != 7 || rep.Failed != 0 || rep.GenTokens != 28 || rep.PromptTokens != 70 || rep.Errors != nil {
		t.Errorf("counts %+v", rep)
	}
	if rep.TTFTp50 <= 0 || rep.TTFTp99 < rep.TTFTp50 || rep.ITLp50 <= 0 || rep.ITLp99 < rep.ITLp50 || rep.TokPerSec <= 0 || rep.ReqPerSec <= 0 {
		t.Errorf("timings %+v", rep)
	}
	if f.scrapes.Load() == 0 || rep.MaxRunning != 3 || rep.MeanRunning != 3 || rep.MaxQueue != 2 || rep.MaxKVBytes != 1024 ||
		rep.PeakKV != 2048 || rep.KVBudget != 4<<20 || rep.Compression != 2.5 {
		t.Errorf("gauges %+v (%d scrapes)", rep, f.scrapes.Load())
	}
	seeds := map[float64]bool{}
	for i, b := range f.bodies {
		if f.paths[i] != "/v1/completions" || b["model"] != "fake-model" || b["kv"] != "some(recipe=1)" || b["stream"] != true ||
			b["ignore_eos"] != true || b["max_tokens"] != 4.0 || b["temperature"] != 0.5 {
			t.Errorf("request %d to %s: %v", i, f.paths[i], b)
		}
		if p, _ := b["prompt"].(string); len(strings.Fields(p)) != 2+30*2/3 {
			t.Errorf("prompt %q: want %d words", p, 2+30*2/3)
		}
		seeds[b["seed"].(float64)] = true
	}
	if len(seeds) != 7 {
		t.Errorf("%d distinct seeds in 7 requests", len(seeds))
	}
}

// TestRunChat: --chat sends messages to /v1/chat/completions, no "kv"
// leaves the server's default, and a given model skips /v1/models.
func TestRunChat(t *testing.T) {
	f := newFake(t, nil)
	cfg := config(f.URL)
	cfg.Chat, cfg.Model, cfg.Requests, cfg.Clients = true, "mine", 2, 1
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 2 || rep.Model != "mine" || rep.Recipe != "(server default)" || rep.GenTokens != 8 {
		t.Errorf("%+v", rep)
	}
	for i, b := range f.bodies {
		msgs, _ := b["messages"].([]any)
		if f.paths[i] != "/v1/chat/completions" || len(msgs) != 1 || b["model"] != "mine" || b["kv"] != nil || b["prompt"] != nil {
			t.Errorf("request %d to %s: %v", i, f.paths[i], b)
		}
	}
}

// TestRunStopsAtDuration: with a huge request count the test still ends
// soon after Duration, having started requests only before it.
func TestRunStopsAtDuration(t *testing.T) {
	f := newFake(t, func(f *fakeServer) { f.delay = 20 * time.Millisecond })
	cfg := config(f.URL)
	cfg.Requests, cfg.Duration, cfg.Clients = 1_000_000, 300*time.Millisecond, 2
	t0 := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("took %s with a 300 ms duration", el)
	}
	// Each request takes at least 20 ms: two clients start at most ~32 in
	// 300 ms.
	if n := f.requests.Load(); n < 2 || n > 40 || int64(rep.OK) != n {
		t.Errorf("%d requests, %d ok", n, rep.OK)
	}
}

// TestRunTimeout: a request that outlives Timeout fails alone, and the
// test ends by Duration + Timeout even though the server never answers.
func TestRunTimeout(t *testing.T) {
	f := newFake(t, func(f *fakeServer) { f.delay = time.Hour })
	cfg := config(f.URL)
	cfg.Requests, cfg.Clients, cfg.Duration, cfg.Timeout = 3, 2, 50*time.Millisecond, 200*time.Millisecond
	t0 := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("took %s with a 200 ms timeout", el)
	}
	if rep.OK != 0 || rep.Failed != 2 || len(rep.Errors) != 2 || !strings.Contains(rep.Errors[0], "deadline exceeded") {
		t.Errorf("%+v", rep)
	}
}

// TestRunFailures: 429s are counted as rejected, other failures keep
// their first few messages.
func TestRunFailures(t *testing.T) {
	f := newFake(t, func(f *fakeServer) {
		f.answer = func(w http.ResponseWriter, n int64) bool {
			switch n % 4 {
			case 0:
				http.Error(w, `{"error":{"message":"queue full"}}`, http.StatusTooManyRequests)
			case 1:
				fmt.Fprint(w, "data: {\"error\":{\"message\":\"shutting down\"}}\n\ndata: [DONE]\n\n")
			case 2:
				fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}\n\n")
			default:
				return false
			}
			return true
		}
	})
	cfg := config(f.URL)
	cfg.Requests, cfg.Clients = 12, 1
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 3 || rep.Failed != 9 || rep.Rejected != 3 || len(rep.Errors) != maxErrors {
		t.Fatalf("%+v", rep)
	}
	if rep.Errors[0] != "error event: shutting down" || rep.Errors[1] != "the stream ended without [DONE]" {
		t.Errorf("errors %q", rep.Errors)
	}
}

func TestRunRefuses(t *testing.T) {
	f := newFake(t, nil)
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.URL = "http://10.0.0.1:8080" }, "only targets loopback"},
		{func(c *Config) { c.Clients = 0 }, "clients"},
		{func(c *Config) { c.Requests = 0 }, "requests"},
		{func(c *Config) { c.Duration = 0 }, "duration"},
		{func(c *Config) { c.Duration = MaxDuration + time.Second }, "duration"},
		{func(c *Config) { c.MaxTokens = 0 }, "max tokens"},
		{func(c *Config) { c.Timeout = 0 }, "timeout"},
	} {
		cfg := config(f.URL)
		c.edit(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", cfg, err, c.want)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests sent by refused tests", n)
	}

	// No model listed: the test does not start.
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"data":[]}`) }))
	defer empty.Close()
	if _, err := Run(context.Background(), config(empty.URL)); err == nil || !strings.Contains(err.Error(), "no model listed") {
		t.Errorf("no models: %v", err)
	}
}

func TestLoopbackURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080": "http://127.0.0.1:8080", "http://localhost:1/": "http://localhost:1",
		"http://[::1]:80": "http://[::1]:80", "https://127.9.9.9/base/": "https://127.9.9.9/base",
	} {
		if u, err := LoopbackURL(in); err != nil || u.String() != want {
			t.Errorf("%s: %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://192.168.1.2", "http://example.com", "http://0.0.0.0:80",
		"http://[::]:80", "ftp://127.0.0.1", "127.0.0.1:8080", "http://127.0.0.1.example.com"} {
		if _, err := LoopbackURL(bad); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for p, want := range map[float64]float64{50: 3, 99: 5, 0: 1, 20: 1, 21: 2, 100: 5} {
		if got := percentile(xs, p); got != want {
			t.Errorf("p%g = %g, want %g", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 || xs[0] != 5 {
		t.Error("empty input, or the input was sorted in place")
	}
}

func TestWriteText(t *testing.T) {
	r := &Report{Format: Format, URL: "http://127.0.0.1:8080", Model: "m", Recipe: "(server default)", Clients: 4, Seconds: 15.04,
		OK: 90, Failed: 12, Rejected: 10, PromptTokens: 9000, GenTokens: 9000, TokPerSec: 598.4, ReqPerSec: 5.984,
		TTFTp50: 12.34, TTFTp90: 40.01, TTFTp99: 80.06, TTFTMean: 20.55, ITLp50: 3.456, ITLp99: 9.001, MaxRunning: 8, MeanRunning: 6.25, MaxQueue: 3,
		MaxKVBytes: 3 << 20, PeakKV: 3.5 * (1 << 20), KVBudget: 4 << 20, Compression: 2.5, Errors: []string{"status 500: boom"}}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `kvgo loadtest: http://127.0.0.1:8080, model m, recipe (server default), 4 clients, 15.0 s
requests:    90 ok, 12 failed (10 rejected with 429)
tokens:      9000 prompt, 9000 generated
throughput:  598.4 generated tok/s, 5.98 req/s
TTFT:        p50 12.3 ms, p90 40.0 ms, p99 80.1 ms (mean 20.6)
inter-token: p50 3.46 ms, p99 9.00 ms
server:      running sequences max 8 (mean 6.2), queue max 3, compression 2.50x
KV memory:   sampled max 3.00 MiB, server peak 3.50 MiB, budget 4.00 MiB
error:       status 500: boom
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	r.WriteJSON(&b)
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["format"] != Format || back["rejected_429"] != 10.0 || back["kv_budget_bytes"] != float64(4<<20) {
		t.Errorf("json %s: %v", b.String(), err)
	}
}
