package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// kvgo run --kv-offload: the tokens of the in-memory run, no file left
// behind; a directory that cannot hold a file falls back to memory with a
// warning only when the cache fits the heap budget (--kv-hot); bad sizes
// and budgets are clear errors.
func TestRunOffload(t *testing.T) {
	args := []string{"run", "-p", "The cache keeps keys and values of every token", "-n", "8", "--temp", "0", "--kv", "quest(budget=64,dense=0)"}
	code, want, errOut := kvgo(t, args...)
	if code != 0 {
		t.Fatalf("in memory: exit %d: %s", code, errOut)
	}
	dir := t.TempDir()
	code, got, errOut := kvgo(t, append(args, "--kv-offload", dir, "--kv-hot", "4KiB")...)
	if code != 0 || got != want || !strings.Contains(errOut, "KV cold tier:") {
		t.Fatalf("cold tier: exit %d, %q (in memory %q): %s", code, got, want, errOut)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("%d files left in the cold tier's directory", len(es))
	}
	missing := filepath.Join(t.TempDir(), "missing")
	code, got, errOut = kvgo(t, append(args, "--kv-offload", missing)...)
	if code != 0 || got != want || !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "stays in memory") {
		t.Errorf("unwritable directory, cache within the budget: exit %d, %q: %s", code, got, errOut)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--kv-offload", missing, "--kv-hot", "1KiB"}, "more than the memory budget"},
		{[]string{"--kv-offload", dir, "--kv-hot", "lots"}, "--kv-hot"},
		{[]string{"--kv-offload", dir, "--kv", "quest(budget=0)"}, "at least 1 token"},
		{[]string{"--kv-offload", dir, "--kv", "quest(budget=-4)"}, "at least 1 token"},
		{[]string{"--kv-offload", dir, "--kv", "quest(budget=100000)"}, "exceeds the context"},
	} {
		code, _, errOut := kvgo(t, append(slices.Clip(args[:len(args)-2]), tc.flags...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("run %v: exit %d, %q", tc.flags, code, errOut)
		}
	}
}
