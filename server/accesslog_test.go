package server

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/engine/sched"
)

// syncBuffer is a bytes.Buffer safe for the log's writes and the test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// One line per request, with its id, tenant, status, tokens, KV bytes,
// recipe and timings.
func TestAccessLog(t *testing.T) {
	var log syncBuffer
	ts := start(t, sched.Config{}, Config{AccessLog: &log, APIKeys: []string{"sk-log"}})
	resp, out := ts.do(t, "POST", "/v1/completions", `{"model":"kvgo-tiny","prompt":"Hello there","max_tokens":4,"kv":"q8","cache_salt":"s1"}`, bearer("sk-log"))
	var r completionResponse
	if err := json.Unmarshal(out, &r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	ts.do(t, "POST", "/v1/completions", `{"model":"kvgo-tiny","prompt":"hi","max_tokens":0}`, bearer("sk-log"))
	ts.do(t, "GET", "/health", "", nil)
	ts.do(t, "GET", "/metrics", "", map[string]string{"Authorization": "Bearer sk-leaked"})
	ts.do(t, "GET", "/v1/x y\"z", "", bearer("sk-log"))
	waitUntil(t, "five log lines", func() bool { return len(log.lines()) >= 5 })
	lines := log.lines()
	if len(lines) != 5 {
		t.Fatalf("%d lines for 5 requests:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	id := strings.TrimPrefix(r.ID, "cmpl-")
	if resp.Header.Get("X-Request-Id") != id {
		t.Errorf("X-Request-Id %q, completion id %q", resp.Header.Get("X-Request-Id"), r.ID)
	}
	tenant := `key:[0-9a-f]{16}/salt:[0-9a-f]{16}`
	for i, want := range []string{
		`^\S+Z id=` + id + ` method=POST path=/v1/completions status=200 tenant=` + tenant + ` prompt=\d+ cached=0 completion=4 kv_bytes=[1-9]\d* recipe=q8\(group=32,mode=sym\) finish=length ttft_ms=[\d.]+ ms=[\d.]+ remote=127\.0\.0\.1:\d+$`,
		`^\S+Z id=[0-9a-f]{24} method=POST path=/v1/completions status=400 error=invalid_value tenant=key:[0-9a-f]{16} ms=[\d.]+ remote=\S+$`,
		`^\S+Z id=[0-9a-f]{24} method=GET path=/health status=200 ms=`,
		`^\S+Z id=[0-9a-f]{24} method=GET path=/metrics status=401 error=invalid_api_key ms=`,
		`^\S+Z id=[0-9a-f]{24} method=GET path="/v1/x y\\"z" status=404 error=not_found tenant=key:`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i]) {
			t.Errorf("line %d:\n%s\ndoes not match\n%s", i, lines[i], want)
		}
	}
	if strings.Contains(strings.Join(lines, "\n"), "sk-") {
		t.Error("the log holds a key")
	}
}
