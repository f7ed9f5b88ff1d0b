package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/defaultmodel"
)

// Regression tests of issue 14 for the command line; each fails on the
// code the issue was filed against.

// tinyFile writes the embedded model to a file, for commands that take one.
func tinyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kvgo-tiny.gguf")
	if err := os.WriteFile(p, defaultmodel.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Hole 1 on the CLI: -n near 2^63 is clamped to the room in the context,
// as -n 5000 is (the sum wrapped and generation ran into the cache's end).
func TestRunHugeN(t *testing.T) {
	for _, n := range []string{"5000", "9223372036854775807"} {
		code, _, errOut := kvgo(t, "run", "-p", "Once upon a time", "-n", n, "-c", "40", "--temp", "0", "--ignore-eos")
		if code != 0 || !regexp.MustCompile(`generated: 3\d tokens`).MatchString(errOut) {
			t.Errorf("-n %s in a context of 40: exit %d: %s", n, code, errOut)
		}
	}
}

// Hole 2 on the CLI: a prompt file that cannot fit is refused before it
// is tokenized (a 16 MB file used 1.25 GB).
func TestRunRefusesLongFileBeforeTokenizing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.txt")
	text := strings.Repeat("the cache keeps keys and values of every token ", 8<<20/48)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	code, _, errOut := kvgo(t, "run", "-f", p, "-n", "1")
	runtime.ReadMemStats(&m1)
	if code != 1 || !strings.Contains(errOut, "context length exceeded") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// Reading the file, its string and the model: a few times its size;
	// tokenizing it cost about 150 times.
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 8*uint64(len(text)) {
		t.Errorf("refusing an %d-byte prompt allocated %d bytes", len(text), a)
	}
}

// corruptKeyFile is a GGUF file whose metadata key length was corrupted
// to n bytes.
func corruptKeyFile(t *testing.T, n int) string {
	t.Helper()
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString(gguf.Magic)
	le(uint32(3))
	le(uint64(0))
	le(uint64(1))
	le(uint64(n))
	b.WriteString(strings.Repeat("k", n))
	le(uint32(99))
	b.Write(make([]byte, 16))
	p := filepath.Join(t.TempDir(), "corrupt.gguf")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Hole 3 on the CLI: an error line quotes little of what caused it (a 100
// KB key gave a 256 KB line; a 10 KB --kv came back whole).
func TestErrorLinesAreShort(t *testing.T) {
	long := strings.Repeat("x", 10<<10)
	for _, args := range [][]string{
		{"info", corruptKeyFile(t, 100_000)},
		{"run", "-p", "hi", "--kv", long},
		{"run", "-p", "hi", "--kv", "snapkv(budget=" + long + ")"},
		{"serve", "--kv", "q8)" + long},
		{"bench", "--kv", long},
	} {
		code, _, errOut := kvgo(t, args...)
		if code != 1 || len(errOut) > 1200 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s %.40s...: exit %d, %d bytes on stderr: %.300s", args[0], args[len(args)-1], code, len(errOut), errOut)
		}
	}
}

// Hole 5 on the CLI.
func TestCommandLineSmallerHoles(t *testing.T) {
	if code, out, errOut := kvgo(t); code == 0 || out != "" || !strings.Contains(errOut, "Usage:") {
		t.Errorf("kvgo with no arguments: exit %d, stdout %q", code, out)
	}
	for _, v := range []string{"--version", "version"} {
		if code, out, _ := kvgo(t, v); code != 0 || !regexp.MustCompile(`^kvgo \S+.* go1\.\d+`).MatchString(out) {
			t.Errorf("kvgo %s: exit %d, %q", v, code, out)
		}
	}
	file := tinyFile(t)
	if code, out, errOut := kvgo(t, "info", "-m", file); code != 0 || !strings.Contains(out, "context length:    2048") {
		t.Errorf("info -m FILE: exit %d: %s%s", code, out, errOut)
	}
	if code, _, errOut := kvgo(t, "run", "-p", strings.Repeat("once upon a time ", 200), "-c", "64"); code != 1 || !strings.Contains(errOut, "context length exceeded") {
		t.Errorf("run -c 64 with a long prompt: exit %d, %s", code, errOut)
	}
	_, _, help := kvgo(t, "run", "--help")
	for _, want := range []string{"(default 0.8)", "(default 0.95)", "(default 0.05)", "-c int"} {
		if !strings.Contains(help, want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
	if strings.Contains(help, "00000") {
		t.Errorf("run --help prints float32 noise:\n%s", help)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--max-seqs", "0"}, "--max-seqs"},
		{[]string{"--batch", "0"}, "--batch"},
		{[]string{"--prefill-chunk", "0"}, "--prefill-chunk"},
		{[]string{"--queue", "0"}, "--queue"},
		{[]string{"--drain-timeout", "-1s"}, "--drain-timeout"},
		{[]string{"--kv-mem", "1B"}, "--kv-mem 1B cannot hold"},
		{[]string{"--api-key", ""}, "empty API key"},
		{[]string{"--api-key-file", filepath.Join(t.TempDir(), "none")}, "--api-key-file"},
	} {
		code, _, errOut := kvgo(t, append([]string{"serve", "--port", "0"}, tc.flags...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("serve %v: exit %d, %q", tc.flags, code, errOut)
		}
	}
}

func get(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"kvgo-tiny","prompt":"hi","max_tokens":2}`))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// kvgo serve takes keys from --api-key, $KVGO_API_KEY and --api-key-file,
// and logs one line per request unless --quiet.
func TestServeKeysAndAccessLog(t *testing.T) {
	t.Setenv("KVGO_API_KEY", "env-key, other-env-key")
	keyFile := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keyFile, []byte("file-key\n\n"), 0o600)
	for _, quiet := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		var serveErr syncBuffer
		flags := []string{"--api-key", "flag-key", "--api-key-file", keyFile}
		if quiet {
			flags = append(flags, "--quiet")
		}
		addr, exited := startServe(t, ctx, &serveErr, flags...)
		if !strings.Contains(serveErr.String(), "4 API keys") {
			t.Errorf("the start line does not count 4 keys: %s", serveErr.String())
		}
		url := addr + "/v1/completions"
		for key, want := range map[string]int{"": 401, "nope": 401, "flag-key": 200, "env-key": 200, "other-env-key": 200, "file-key": 200} {
			if got := get(t, url, key); got != want {
				t.Errorf("key %q: %d, want %d", key, got, want)
			}
		}
		cancel()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
		}
		lines := regexp.MustCompile(`(?m)^\S+Z id=\S+ method=POST path=/v1/completions status=\d+`).FindAllString(serveErr.String(), -1)
		if want := map[bool]int{false: 6, true: 0}[quiet]; len(lines) != want {
			t.Errorf("quiet %v: %d access log lines, want %d:\n%s", quiet, len(lines), want, serveErr.String())
		}
		for _, k := range []string{"flag-key", "env-key", "file-key"} {
			if strings.Contains(serveErr.String(), k) {
				t.Errorf("the log holds the key %s", k)
			}
		}
	}
}
