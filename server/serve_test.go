package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine/sched"
)

// serving runs ListenAndServe on a free loopback port and returns the
// server's URL, the figures its Draining hook was told (one value, after
// the context ends) and the channel its result arrives on.
func serving(t *testing.T, ctx context.Context, drain time.Duration) (string, chan sched.Stats, chan error) {
	t.Helper()
	e := tiny(t)
	sch, err := sched.New(e, sched.Config{KVBudget: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sch.Close)
	srv, err := New(Config{Engine: e, Sched: sch, ModelID: modelID})
	if err != nil {
		t.Fatal(err)
	}
	addrs := make(chan net.Addr, 1)
	drained := make(chan sched.Stats, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.ListenAndServe(ctx, "127.0.0.1:0", ServeOptions{
			DrainTimeout: drain,
			Listening:    func(a net.Addr) { addrs <- a },
			Draining:     func(st sched.Stats) { drained <- st },
		})
	}()
	select {
	case a := <-addrs:
		return "http://" + a.String(), drained, done
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("ListenAndServe did not start")
	}
	return "", nil, nil
}

// stream starts a streaming completion and returns its body once the first
// event has arrived, so the request is running.
func stream(t *testing.T, url string, maxTokens int) *bufio.Reader {
	t.Helper()
	body := `{"model":"` + modelID + `","prompt":"An endless story","max_tokens":` + itoa(maxTokens) + `,"stream":true,"ignore_eos":true}`
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return rd
}

func finished(t *testing.T, done chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe returned %v after the drain", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
}

// A request in flight when the context ends runs to its end within the
// drain timeout; the listener is closed; ListenAndServe returns nil.
func TestListenAndServeDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, drained, done := serving(t, ctx, 30*time.Second)
	resp, err := http.Get(url + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health: %v %v", resp, err)
	}
	resp.Body.Close()
	rd := stream(t, url, 300)
	cancel() // as SIGTERM
	if st := <-drained; st.Running+st.Queued != 1 {
		t.Errorf("Draining was told %d running and %d queued, want the one stream", st.Running, st.Queued)
	}
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("reading the stream during the drain: %v", err)
	}
	// An error event, not the word: the random model's text may say "error".
	if s := string(rest); strings.Contains(s, `data: {"error":`) || !strings.Contains(s, `"finish_reason":"length"`) || !strings.HasSuffix(s, "data: [DONE]\n\n") {
		t.Errorf("the stream did not run to its end during the drain:\n%s", s[max(0, len(s)-600):])
	}
	finished(t, done)
	if _, err := http.Get(url + "/health"); err == nil {
		t.Error("the server still answers after ListenAndServe returned")
	}
}

// A stream still running when the drain timeout passes ends with an error
// event and [DONE], and ListenAndServe returns nil.
func TestListenAndServeDrainTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, _, done := serving(t, ctx, 300*time.Millisecond)
	rd := stream(t, url, 2000)
	t0 := time.Now()
	cancel()
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("reading the stream after the drain timeout: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n\n")
	if n := len(lines); n < 2 || lines[n-1] != "data: [DONE]" || !strings.Contains(lines[n-2], "shutting_down") {
		t.Errorf("the stream ended with %q", lines[max(0, len(lines)-2):])
	}
	finished(t, done)
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("the stream was aborted after %v, before the drain timeout", d)
	}
}

func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &Server{}
	if err := srv.ListenAndServe(context.Background(), ln.Addr().String(), ServeOptions{}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("ListenAndServe on a bound port: %v", err)
	}
}
