package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/kv/offload"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/sample"
)

// TestGenerateOffload: a generation whose pages go to a cold tier gives
// the in-memory tokens, leaves its directory empty and holds no file
// there once it ends, also when it ends in an error; and its cache
// reported pages in the file.
func TestGenerateOffload(t *testing.T) {
	e, err := Load("", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, err := recipe.Parse("quest(budget=128,dense=0)")
	if err != nil {
		t.Fatal(err)
	}
	prompt := make([]int, 600)
	for i := range prompt {
		prompt[i] = 3 + (i*37)%200
	}
	gen := func(onToken func(int) error) ([]int, Stats, error) {
		var out []int
		st, err := e.Generate(context.Background(), Request{
			Prompt: prompt, MaxTokens: 12, KV: r, Context: 1024, Sampling: sample.Params{Temperature: 0},
			OnToken: func(id int) error {
				out = append(out, id)
				if onToken != nil {
					return onToken(id)
				}
				return nil
			},
		})
		return out, st, err
	}
	want, _, err := gen(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.Offload = &offload.Options{Dir: dir, HotBytes: 64 << 10}
	defer func() { e.Offload = nil }()
	var during int
	got, st, err := gen(func(int) error {
		during = max(during, openIn(dir))
		if n, _ := os.ReadDir(dir); len(n) != 0 {
			t.Errorf("directory holds %d files while the sequence runs", len(n))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tokens with the cold tier, %d in memory", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("token %d is %d with the cold tier, %d in memory", i, got[i], want[i])
		}
	}
	if st.ColdKVBytes == 0 {
		t.Error("no pages went to the cold tier")
	}
	if _, err := os.Stat("/proc/self/fd"); err == nil {
		if during == 0 {
			t.Error("no open file in the directory while the sequence ran (the test cannot see the store)")
		}
		if n := openIn(dir); n != 0 {
			t.Errorf("%d files still open in the directory after the sequence ended", n)
		}
	}
	// An error ends the sequence too.
	stop := errors.New("stop")
	if _, _, err := gen(func(int) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("err = %v", err)
	}
	if n := openIn(dir); n != 0 {
		t.Errorf("%d files still open in the directory after a failed sequence", n)
	}
}

// openIn counts the process's open files under dir, unlinked ones
// included (Linux; 0 elsewhere).
func openIn(dir string) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// TestOffloadFallback: an unwritable directory falls back to memory only
// when the cache fits the budget.
func TestOffloadFallback(t *testing.T) {
	checkErr := errors.New("kv/offload: cannot create the cold tier's file in /ro: read-only file system")
	if warn, err := OffloadFallback("/ro", checkErr, 100, 200); err != nil || !strings.Contains(warn, "stays in memory") {
		t.Errorf("fits: warn %q, err %v", warn, err)
	}
	if _, err := OffloadFallback("/ro", checkErr, 300, 200); err == nil || !errors.Is(err, checkErr) || !strings.Contains(err.Error(), "more than the memory budget") {
		t.Errorf("does not fit: err %v", err)
	}
}
