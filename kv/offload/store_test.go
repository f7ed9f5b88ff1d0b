package offload

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

var testShape = kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 16}

const testGroup = 2 // query heads per KV head

// run drives a cache as the model does: a prompt of n tokens in batches
// of 64, then steps decode steps; it returns every attention output in
// order. Keys, values and queries come from a fixed seed, so two caches
// given the same recipe see the same inputs.
func run(t *testing.T, c *kv.Cache, n, steps int) []float32 {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	d, H, g := testShape.HeadDim, testShape.KVHeads, testGroup
	sc := kv.NewScratch(g)
	out := make([]float32, g*d)
	var all []float32
	vec := func(m int) []float32 {
		x := make([]float32, m)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	batch := func(pos []int32) {
		if err := c.Begin(pos); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < testShape.Layers; l++ {
			c.Store(l, vec(len(pos)*H*d), vec(len(pos)*H*d))
			for _, p := range pos {
				for h := 0; h < H; h++ {
					c.Attend(l, h, vec(g*d), g, p, out, sc)
					all = append(all, out...)
				}
			}
		}
		c.End()
	}
	c.BeginPrefill(n)
	for i := 0; i < n; i += 64 {
		pos := make([]int32, min(64, n-i))
		for j := range pos {
			pos[j] = int32(i + j)
		}
		batch(pos)
	}
	for s := 0; s < steps; s++ {
		batch([]int32{int32(n + s)})
	}
	return all
}

// newCache makes a cache of recipe r, with its codecs in st when st is
// not nil.
func newCache(t *testing.T, r string, st *Store) *kv.Cache {
	t.Helper()
	cfg := recipeConfig(t, r)
	var err error
	if st != nil {
		if cfg.K, err = st.Codec(cfg.K); err != nil {
			t.Fatal(err)
		}
		if cfg.V, err = st.Codec(cfg.V); err != nil {
			t.Fatal(err)
		}
	}
	c, err := kv.New(testShape, cfg, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOffloadExact: with a heap budget of a few pages, every attention
// output is the in-memory cache's bit for bit, for every kind of codec,
// with a selector, with evictors that delete from sealed pages (which load
// the page, delete and write it again), and the pages really left the
// heap.
func TestOffloadExact(t *testing.T) {
	for _, r := range []string{
		"f16",
		"q8",
		"q4(mode=asym)",
		"kivi(bits=2,residual=32)",
		"quest(budget=96,dense=0)",
		"quest(budget=96,dense=0)+kivi(bits=4,residual=32)",
		"h2o(budget=0.5)",
		"tova(budget=200)+q8",
		"snapkv(budget=0.25)+kivi(bits=4,residual=32)",
	} {
		t.Run(r, func(t *testing.T) {
			want := run(t, newCache(t, r, nil), 700, 24)
			st, err := Open(Options{Dir: t.TempDir(), HotBytes: 8 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			c := newCache(t, r, st)
			got := run(t, c, 700, 24)
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("output %d = %g, in memory %g", i, got[i], want[i])
				}
			}
			s := st.Stats()
			if c.ColdBytes() == 0 || s.Writes == 0 || s.Loads == 0 {
				t.Fatalf("nothing went cold: cold %d bytes, %+v", c.ColdBytes(), s)
			}
			// Pages the cache dropped (an evictor packed them) give their
			// bytes back once collected.
			for i := 0; i < 100 && c.ColdBytes() != st.ColdBytes(); i++ {
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
			if c.ColdBytes() != st.ColdBytes() {
				t.Errorf("cache counts %d cold bytes, store %d", c.ColdBytes(), st.ColdBytes())
			}
			// Pages being filled (one per stream and codec) may exceed the
			// budget; sealed pages may not.
			if h := st.HotBytes(); h > 8<<10+int64(testShape.Streams())*2*4096 {
				t.Errorf("%d bytes of pages on the heap, budget 8 KiB", h)
			}
		})
	}
}

// TestOffloadFork: a fork shares the store's pages, copies one before it
// changes it, and both caches then read what they would in memory.
func TestOffloadFork(t *testing.T) {
	st, err := Open(Options{Dir: t.TempDir(), HotBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := newCache(t, "q8", st)
	run(t, a, 300, 0)
	b := a.Fork()
	b.Truncate(200) // deletes from sealed, shared pages: copy-on-write
	if a.Len() != 300 || b.Len() != 200 {
		t.Fatalf("lengths %d and %d after the fork, want 300 and 200", a.Len(), b.Len())
	}
	m := newCache(t, "q8", nil)
	run(t, m, 300, 0)
	k, v := make([]float32, 16), make([]float32, 16)
	k2, v2 := make([]float32, 16), make([]float32, 16)
	for i := 0; i < 300; i++ {
		m.Stream(1, 1).Vector(i, k, v)
		a.Stream(1, 1).Vector(i, k2, v2)
		if k[3] != k2[3] || v[7] != v2[7] {
			t.Fatalf("token %d differs from the in-memory cache after the fork", i)
		}
		if i < 200 {
			b.Stream(1, 1).Vector(i, k2, v2)
			if k[3] != k2[3] || v[7] != v2[7] {
				t.Fatalf("token %d of the fork differs", i)
			}
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestOffloadFileRemoved: the file is never in the directory (unlinked
// once created), and after Close the process holds no file there either,
// on the normal path and after a failure.
func TestOffloadFileRemoved(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir, HotBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, "f16", st)
	run(t, c, 300, 4)
	if c.ColdBytes() == 0 {
		t.Fatal("nothing went cold")
	}
	if names := list(t, dir); len(names) != 0 {
		t.Fatalf("directory holds %v while the sequence runs", names)
	}
	if runtime.GOOS == "linux" && openIn(t, dir) == 0 {
		t.Fatal("no open file in the directory while the sequence runs (the test cannot see the store)")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if names := list(t, dir); len(names) != 0 {
		t.Fatalf("directory holds %v after Close", names)
	}
	if runtime.GOOS == "linux" && openIn(t, dir) != 0 {
		t.Fatal("the store's file is still open after Close")
	}
	// A page read after Close fails with ErrClosed, not a panic.
	run(t, c, 0, 1)
	if err := st.Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Err after reading a closed store = %v, want ErrClosed", err)
	}
}

func list(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// openIn counts the process's open files under dir, unlinked ones
// included (Linux: /proc/self/fd).
func openIn(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
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

// fullFile is a disk that fills after limit bytes.
type fullFile struct {
	data  []byte
	limit int64
}

func (f *fullFile) WriteAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.limit {
		return 0, &os.PathError{Op: "write", Path: "kvgo-cold-test.kv", Err: syscall.ENOSPC}
	}
	if need := int(off) + len(b); need > len(f.data) {
		f.data = append(f.data, make([]byte, need-len(f.data))...)
	}
	return copy(f.data[off:], b), nil
}

func (f *fullFile) ReadAt(b []byte, off int64) (int, error) { return copy(b, f.data[off:]), nil }
func (f *fullFile) Close() error                            { return nil }

// TestOffloadDiskFull: a full disk is a clear error from Err, the pages
// that could not be written stay on the heap, and nothing panics.
func TestOffloadDiskFull(t *testing.T) {
	st := newStore(Options{Dir: "/full", HotBytes: 4 << 10}, &fullFile{limit: 16 << 10}, "")
	c := newCache(t, "f16", st)
	run(t, c, 400, 2)
	err := st.Err()
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/full") || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("Err = %v, want a clear no-space error naming the directory", err)
	}
	if c.Bytes() < 400*int64(testShape.Streams())*16*2*2-16<<10 {
		t.Errorf("only %d bytes on the heap: pages were dropped without being written", c.Bytes())
	}
}

// TestOffloadBadInput: options no store can have, and directories that
// cannot hold a file, are clear errors.
func TestOffloadBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no directory"},
		{Options{Dir: t.TempDir(), HotBytes: -1}, "negative"},
		{Options{Dir: filepath.Join(t.TempDir(), "missing")}, "cannot create"},
		{Options{Dir: file}, "not a directory"},
	} {
		if _, err := Open(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want an error saying %q", tc.o, err, tc.want)
		}
	}
	if os.Geteuid() != 0 {
		ro := t.TempDir()
		if err := os.Chmod(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(ro, 0o700)
		if err := Check(ro); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Check(read-only dir) = %v, want permission denied", err)
		}
	}
	if err := Check(t.TempDir()); err != nil {
		t.Errorf("Check(writable dir) = %v", err)
	}
	// A codec without a wire form cannot be offloaded.
	st, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Codec(noWire{}); err == nil || !strings.Contains(err.Error(), "no wire form") {
		t.Errorf("Codec(no wire form) = %v", err)
	}
}

type noWire struct{}

func (noWire) Name() string               { return "nowire" }
func (noWire) Residual() int              { return 0 }
func (noWire) Group() int                 { return 0 }
func (noWire) NewPage(d, cap int) kv.Page { return nil }

// recipeConfig is recipe r's cache configuration.
func recipeConfig(t *testing.T, r string) kv.Config {
	t.Helper()
	rc, err := recipe.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openTiny opens a store whose heap holds no sealed page: every page
// that fills is written out at once.
func openTiny(t *testing.T) *Store {
	t.Helper()
	st, err := Open(Options{Dir: t.TempDir(), HotBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
