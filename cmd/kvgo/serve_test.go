package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvgo/kvgo/loadtest"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"2GiB": 2 << 30, "512MiB": 512 << 20, "1G": 1 << 30, "64k": 64 << 10, "1.5GiB": 3 << 29,
		"1GB": 1e9, "100MB": 1e8, "4096": 4096, "10 MiB": 10 << 20, "1b": 1,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "2 parsecs", "-1GiB", "0", "1e30"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestLoopbackOnly: the command refuses a server elsewhere before any
// request (loadtest's own tests cover which addresses are loopback).
func TestLoopbackOnly(t *testing.T) {
	for _, bad := range []string{"http://10.1.2.3:8080", "ftp://127.0.0.1"} {
		code, _, errOut := kvgo(t, "loadtest", "--url", bad)
		if code != 1 || !strings.Contains(errOut, "kvgo loadtest: --url "+strconv.Quote(bad)) {
			t.Errorf("loadtest against %s: exit %d, %q", bad, code, errOut)
		}
	}
	code, _, errOut := kvgo(t, "loadtest", "--url", "http://10.1.2.3:8080")
	if code != 1 || !strings.Contains(errOut, "loopback") {
		t.Errorf("loadtest against 10.1.2.3: exit %d, %q", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs kvgo serve in-process on a free loopback port and
// returns its URL and the channel its exit code arrives on.
func startServe(t *testing.T, ctx context.Context, serveErr *syncBuffer, flags ...string) (string, chan int) {
	t.Helper()
	exited := make(chan int, 1)
	go func() {
		exited <- runMain(ctx, append([]string{"serve", "--port", "0", "-t", "1"}, flags...), &bytes.Buffer{}, serveErr)
	}()
	var addr string
	deadline := time.Now().Add(20 * time.Second)
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	for addr == "" {
		if m := re.FindStringSubmatch(serveErr.String()); m != nil {
			addr = m[1]
		}
		select {
		case code := <-exited:
			t.Fatalf("serve exited with %d: %s", code, serveErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", serveErr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return addr, exited
}

// kvgo serve on a free loopback port, kvgo loadtest against it, then the
// drain on shutdown.
func TestServeAndLoadtest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var serveErr syncBuffer
	addr, exited := startServe(t, ctx, &serveErr, "--kv-mem", "4MiB", "--max-seqs", "4")
	for _, kv := range []string{"", "snapkv(budget=16)+q4"} {
		args := []string{"loadtest", "--url", addr, "-c", "3", "--requests", "6", "--duration", "20s", "--prompt-tokens", "40", "--max-tokens", "6", "--json"}
		if kv != "" {
			args = append(args, "--kv", kv)
		}
		code, out, errOut := kvgo(t, args...)
		if code != 0 {
			t.Fatalf("loadtest %s: exit %d: %s", kv, code, errOut)
		}
		var rep loadtest.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report %q: %v", out, err)
		}
		if rep.OK != 6 || rep.Failed != 0 || rep.GenTokens != 36 || rep.TTFTp50 <= 0 || rep.ITLp50 <= 0 || rep.KVBudget != 4<<20 || rep.PeakKV > rep.KVBudget {
			t.Errorf("loadtest %s: %+v", kv, rep)
		}
	}
	cancel() // SIGINT/SIGTERM: drain and exit
	select {
	case code := <-exited:
		if code != 0 || !strings.Contains(serveErr.String(), "stopped") {
			t.Errorf("serve exited with %d: %s", code, serveErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// A stream still running when the drain timeout passes ends with an error
// event and [DONE], and serve exits cleanly.
func TestServeDrainTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var serveErr syncBuffer
	addr, exited := startServe(t, ctx, &serveErr, "--drain-timeout", "300ms")
	body := strings.NewReader(`{"model":"kvgo-tiny","prompt":"An endless story","max_tokens":2000,"stream":true,"ignore_eos":true}`)
	resp, err := http.Post(addr+"/v1/completions", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel() // as SIGTERM
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("reading the stream after shutdown: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n\n")
	if n := len(lines); n < 2 || lines[n-1] != "data: [DONE]" || !strings.Contains(lines[n-2], "shutting_down") {
		t.Errorf("the stream ended with %q", lines[max(0, len(lines)-2):])
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited with %d: %s", code, serveErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
