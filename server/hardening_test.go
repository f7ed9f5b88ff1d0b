package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine/sched"
)

// Regression tests of issue 14: each fails on the code the issue was
// filed against.

// Hole 1: max_tokens near 2^63 made len(prompt)+max_tokens wrap negative
// and passed the context check, the reservation came out near 0 bytes, and
// six such requests under --kv-mem 3MiB drove kvgo_kv_bytes_peak to
// 3,240,352 with five 503 kv_memory_exhausted.
func TestHugeMaxTokensRefused(t *testing.T) {
	const budget = 3 << 20
	ts := start(t, sched.Config{KVBudget: budget}, Config{})
	prompt := strings.Repeat("words of a prompt ", 60)
	n := len(tiny(t).Tok.Encode(prompt, true, false))
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for _, field := range []string{"max_tokens", "max_completion_tokens"} {
				path, body := "/v1/completions", map[string]any{"model": modelID, "prompt": prompt, field: math.MaxInt64 - n + 1 + i}
				if field == "max_completion_tokens" {
					path, body = "/v1/chat/completions", map[string]any{"model": modelID, "messages": []map[string]string{{"role": "user", "content": prompt}}, field: math.MaxInt64 - i}
				}
				resp, out := ts.post(t, path, body)
				if e := errorBody(t, out); resp.StatusCode != 400 || e["code"] != "context_length_exceeded" || e["param"] != "max_tokens" {
					t.Errorf("%s near 2^63: %d %s", field, resp.StatusCode, out)
				}
			}
		})
	}
	wg.Wait()
	if peak := metric(t, ts, "kvgo_kv_bytes_peak"); peak > budget {
		t.Errorf("kvgo_kv_bytes_peak %v above the budget %d", peak, budget)
	}
	if v := metric(t, ts, "kvgo_kv_preempted_total"); v != 0 {
		t.Errorf("%v sequences failed with kv_memory_exhausted", v)
	}
}

// allocated runs f and returns the bytes the process allocated meanwhile.
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// Hole 2: a prompt that cannot fit the context is refused before it is
// tokenized. Four concurrent 4 MB prompts took the server from 330 MB to
// 1.07 GB RSS and about 20 s, only to be refused for their length.
func TestLongPromptRefusedBeforeTokenizing(t *testing.T) {
	ts := start(t, sched.Config{}, Config{MaxBodyBytes: 4 << 20})
	text := strings.Repeat("the cache keeps keys and values of every token ", 3<<20/48)
	for _, tc := range []struct {
		path string
		body any
	}{
		{"/v1/completions", map[string]any{"model": modelID, "prompt": text}},
		{"/v1/completions", map[string]any{"model": modelID, "prompt": []string{text}}},
		{"/v1/chat/completions", map[string]any{"model": modelID, "messages": []map[string]string{{"role": "user", "content": text}}}},
	} {
		body, _ := json.Marshal(tc.body)
		var resp *http.Response
		var out []byte
		t0 := time.Now()
		a := allocated(func() { resp, out = ts.post(t, tc.path, body) })
		e := errorBody(t, out)
		if resp.StatusCode != 400 || e["code"] != "context_length_exceeded" {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, out)
		}
		// Reading and decoding the body costs a few times its size;
		// tokenizing it cost about 150 times.
		if ratio := float64(a) / float64(len(body)); ratio > 16 {
			t.Errorf("%s: refusing a %d-byte body allocated %d bytes (%.0fx)", tc.path, len(body), a, ratio)
		}
		t.Logf("%s: refused a %d-byte prompt in %v, %.1fx its size allocated", tc.path, len(body), time.Since(t0).Round(time.Millisecond), float64(a)/float64(len(body)))
	}
}

// Hole 3: errors quote at most a short piece of hostile input (a 10 KB
// recipe came back whole in the 400 body).
func TestErrorsQuoteLittle(t *testing.T) {
	ts := start(t, sched.Config{}, Config{})
	long := strings.Repeat("x", 10<<10)
	chat := func(m map[string]any) map[string]any {
		return map[string]any{"model": modelID, "messages": []any{m}}
	}
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
	}{
		{"recipe", "/v1/completions", map[string]any{"model": modelID, "prompt": "hi", "kv": long}, 400},
		{"recipe parameter", "/v1/completions", map[string]any{"model": modelID, "prompt": "hi", "kv": "snapkv(budget=" + long + ")"}, 400},
		{"recipe tail", "/v1/completions", map[string]any{"model": modelID, "prompt": "hi", "kv": "q8)" + long}, 400},
		{"model", "/v1/completions", map[string]any{"model": long, "prompt": "hi"}, 404},
		{"number literal", "/v1/completions", `{"model":"kvgo-tiny","prompt":"hi","max_tokens":` + strings.Repeat("9", 10<<10) + `}`, 400},
		{"fraction literal", "/v1/completions", `{"model":"kvgo-tiny","prompt":"hi","max_tokens":1.` + strings.Repeat("5", 10<<10) + `}`, 400},
		{"role", "/v1/chat/completions", chat(map[string]any{"role": long, "content": "hi"}), 400},
		{"content part type", "/v1/chat/completions", chat(map[string]any{"role": "user", "content": []map[string]string{{"type": long}}}), 400},
	} {
		resp, out := ts.post(t, tc.path, tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d: %.300s", tc.name, resp.StatusCode, tc.status, out)
		}
		if tc.status != 200 {
			errorBody(t, out)
			if len(out) > 1500 || longestRun(out) > maxQuoted {
				t.Errorf("%s: a %d-byte error body: %.300s...", tc.name, len(out), out)
			}
		}
	}
	resp, out := ts.get(t, "/"+long)
	if resp.StatusCode != 404 || len(out) > 1500 {
		t.Errorf("a 10 KB path: %d, %d-byte body", resp.StatusCode, len(out))
	}
}

// longestRun is the length of the longest run of one byte in b: how much
// of a filler an error echoed.
func longestRun(b []byte) int {
	best, n := 0, 0
	for i := range b {
		if i > 0 && b[i] == b[i-1] {
			n++
		} else {
			n = 1
		}
		best = max(best, n)
	}
	return best
}

// Hole 4: after the context ends (SIGTERM), /health answers 503 draining
// on a new connection while a request in flight finishes; the listener
// used to close at once, so health checks saw a refused connection.
func TestHealthAnswersWhileDraining(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, drained, done := serving(t, ctx, 30*time.Second)
	rd := stream(t, url, 400)
	cancel()
	<-drained
	var resp *http.Response
	var err error
	for range 100 { // Drain runs right after the Draining hook
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		if resp, err = c.Get(url + "/health"); err != nil || resp.StatusCode == 503 {
			break
		}
		resp.Body.Close()
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GET /health while draining: %v", err)
	}
	var h struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 503 || h.Status != "draining" {
		t.Errorf("GET /health while draining: %d %q", resp.StatusCode, h.Status)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	r2, err := c.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"model":"`+modelID+`","prompt":"late","max_tokens":2}`))
	if err != nil {
		t.Fatalf("a new request while draining: %v", err)
	}
	r2.Body.Close()
	if r2.StatusCode != 503 {
		t.Errorf("a new request while draining: %d, want 503", r2.StatusCode)
	}
	events, ok := sse(t, rd)
	if !ok || !strings.Contains(events[len(events)-1], `"usage"`) {
		t.Errorf("the stream in flight did not finish during the drain")
	}
	finished(t, done)
}

// Hole 5, the API's smaller ones: no Go type names, no package prefixes,
// codes everywhere, and roles and fields the server cannot honour refused
// rather than ignored.
func TestSmallerHoles(t *testing.T) {
	ts := start(t, sched.Config{}, Config{})
	user := []map[string]string{{"role": "user", "content": "hi"}}
	for _, tc := range []struct {
		name, path string
		body       any
		param      string
		code       string
	}{
		{"messages of the wrong type", "/v1/chat/completions", `{"model":"kvgo-tiny","messages":"hi"}`, "messages", "invalid_type"},
		{"a message of the wrong type", "/v1/chat/completions", `{"model":"kvgo-tiny","messages":["hi"]}`, "messages", "invalid_type"},
		{"stream_options of the wrong type", "/v1/completions", `{"model":"kvgo-tiny","prompt":"hi","stream_options":3}`, "stream_options", "invalid_type"},
		{"token out of vocabulary", "/v1/completions", `{"model":"kvgo-tiny","prompt":[1, 99999]}`, "prompt", "invalid_value"},
		{"negative token", "/v1/completions", `{"model":"kvgo-tiny","prompt":[-1]}`, "prompt", "invalid_value"},
		{"unknown role", "/v1/chat/completions", map[string]any{"model": modelID, "messages": []map[string]string{{"role": "wizard", "content": "hi"}}}, "messages[0].role", "unsupported"},
		{"tool role", "/v1/chat/completions", map[string]any{"model": modelID, "messages": []map[string]string{{"role": "tool", "content": "42"}}}, "messages[0].role", "unsupported"},
		{"tool calls", "/v1/chat/completions", map[string]any{"model": modelID, "messages": []map[string]any{{"role": "assistant", "tool_calls": []map[string]any{{"id": "1"}}}}}, "messages[0].tool_calls", "unsupported"},
		{"tools", "/v1/chat/completions", map[string]any{"model": modelID, "messages": user, "tools": []map[string]any{{"type": "function", "function": map[string]any{"name": "f"}}}}, "tools", "unsupported"},
		{"tool_choice", "/v1/chat/completions", map[string]any{"model": modelID, "messages": user, "tool_choice": "required"}, "tool_choice", "unsupported"},
		{"functions", "/v1/chat/completions", map[string]any{"model": modelID, "messages": user, "functions": []map[string]any{{"name": "f"}}}, "functions", "unsupported"},
		{"a 100 KB stop string", "/v1/completions", map[string]any{"model": modelID, "prompt": "hi", "stop": strings.Repeat("s", 100_000)}, "stop", "invalid_value"},
		{"a long stop in a list", "/v1/completions", map[string]any{"model": modelID, "prompt": "hi", "stop": []string{"ok", strings.Repeat("s", 513)}}, "stop", "invalid_value"},
		{"response_format json", "/v1/chat/completions", map[string]any{"model": modelID, "messages": user, "response_format": map[string]any{"type": "json_object"}}, "response_format", "unsupported"},
	} {
		resp, out := ts.post(t, tc.path, tc.body)
		e := errorBody(t, out)
		msg, _ := e["message"].(string)
		if resp.StatusCode != 400 || e["param"] != tc.param || e["code"] != tc.code {
			t.Errorf("%s: %d %s; want param %s, code %s", tc.name, resp.StatusCode, out, tc.param, tc.code)
		}
		if strings.Contains(msg, "server.") || strings.Contains(msg, "sched:") || strings.Contains(msg, "[]") {
			t.Errorf("%s: the message speaks Go: %s", tc.name, msg)
		}
	}
	// What asks for nothing is accepted: no tools, tool_choice "none",
	// a text response format, the developer role.
	for _, body := range []map[string]any{
		{"model": modelID, "messages": user, "tools": []any{}, "tool_choice": "none", "response_format": map[string]any{"type": "text"}, "max_tokens": 2},
		{"model": modelID, "messages": []map[string]string{{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}}, "max_tokens": 2},
	} {
		if resp, out := ts.post(t, "/v1/chat/completions", body); resp.StatusCode != 200 {
			t.Errorf("%v: %d %s", body, resp.StatusCode, out)
		}
	}
}

// A fallback-format chat reply does not begin with whitespace: kvgo-tiny's
// replies often began with "\n".
func TestChatReplyHasNoLeadingWhitespace(t *testing.T) {
	ts := start(t, sched.Config{}, Config{})
	for seed := range 8 {
		resp, out := ts.post(t, "/v1/chat/completions", map[string]any{"model": modelID, "seed": seed, "max_tokens": 6,
			"messages": []map[string]string{{"role": "user", "content": fmt.Sprintf("Question %d: what is a cache?", seed)}}})
		var r chatResponse
		if err := json.Unmarshal(out, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
		if c := *r.Choices[0].Message.Content; c != strings.TrimLeft(c, " \t\r\n") {
			t.Errorf("seed %d: reply %q starts with whitespace", seed, c)
		}
	}
}
