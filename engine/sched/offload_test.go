package sched

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv/offload"
	"github.com/kvgo/kvgo/model"
)

// coldEngine is a kvgo-tiny engine of its own whose sequences keep their
// pages in a cold tier in dir, with a heap budget of hot bytes.
func coldEngine(t *testing.T, dir string, hot int64) *engine.Engine {
	t.Helper()
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	e.Offload = &offload.Options{Dir: dir, HotBytes: hot}
	return e
}

// TestOffloadServes: batched sequences whose pages live in a cold tier
// give the tokens of the in-memory engine, and once they end no file of
// theirs is left open or in the directory.
func TestOffloadServes(t *testing.T) {
	dir := t.TempDir()
	s, err := New(coldEngine(t, dir, 16<<10), Config{KVBudget: 64 << 20, PrefillChunk: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recipes := []string{"quest(budget=64,dense=0)", "f16", "h2o(budget=48)+q8"}
	ids := prompt(t, longText(300))
	hs := make([]*Handle, len(recipes))
	for i, r := range recipes {
		req := greedy(ids, 12)
		req.Recipe = mustRecipe(t, r)
		if hs[i], err = s.Submit(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range hs {
		got := collect(t, h)
		want := reference(t, ids, 12, recipes[i])
		if fmt.Sprint(got.tokens) != fmt.Sprint(want) {
			t.Errorf("%s: with a cold tier %v, in memory %v", recipes[i], got.tokens, want)
		}
	}
	waitFor(t, "idle", s.Idle)
	if n := openUnder(dir); n != 0 {
		t.Errorf("%d files still open in the cold tier's directory", n)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("%d files left in the cold tier's directory", len(es))
	}
	if st := s.Stats(); st.InUse != 0 || st.Reserved != 0 {
		t.Errorf("after all sequences: %+v", st)
	}
}

// TestOffloadReservation: with a cold tier, a long sequence's reservation
// is what it can hold on the heap, far below its in-memory reservation,
// and the heap bytes of a real run stay within it.
func TestOffloadReservation(t *testing.T) {
	const hot = 64 << 10
	e := coldEngine(t, t.TempDir(), hot)
	mem, cold := newFootprint(e.Model.CacheShape(), 2048, 64), newFootprint(e.Model.CacheShape(), 2048, 64)
	cold.cold = e.Offload
	ids := prompt(t, longText(1000))
	const gen = 40
	for _, rs := range []string{"quest(budget=128,dense=0)", "q8", "h2o(budget=0.5)+q4"} {
		r := mustRecipe(t, rs)
		pm, err := mem.plan(r)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := cold.plan(r)
		if err != nil {
			t.Fatal(err)
		}
		want, inMem := pc.admit(len(ids), gen), pm.admit(len(ids), gen)
		if want >= inMem || (!pc.evicts && want >= inMem/2) {
			t.Errorf("%s: reservation %d with a cold tier, %d in memory", rs, want, inMem)
		}
		c, st, err := e.NewSeqCache(r, 2048)
		if err != nil {
			t.Fatal(err)
		}
		state := e.Model.NewState(e.Pool, 64, 2048)
		if pc.evicts {
			c.BeginPrefill(len(ids))
		}
		var peak int64
		for i := 0; i < len(ids); i += 64 {
			j := min(i+64, len(ids))
			if _, err := state.ForwardSeqs([]model.Seq{{Cache: c, Tokens: ids[i:j], Start: i, Logits: j == len(ids)}}); err != nil {
				t.Fatal(err)
			}
			peak = max(peak, c.PeakBytes())
		}
		for k := 0; k < gen; k++ {
			if _, err := state.ForwardSeqs([]model.Seq{{Cache: c, Tokens: []int{5 + k%50}, Start: len(ids) + k, Logits: true}}); err != nil {
				t.Fatal(err)
			}
			peak = max(peak, c.Bytes())
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if peak > want || c.ColdBytes() == 0 {
			t.Errorf("%s: %d bytes on the heap at most (%d cold at the end), reservation %d", rs, peak, c.ColdBytes(), want)
		}
		t.Logf("%-28s reserve %8d (in memory %8d)  heap peak %8d  cold %8d", rs, want, inMem, peak, c.ColdBytes())
		c.Release()
		st.Close()
	}
}

// openUnder counts the process's open files under dir (Linux; 0
// elsewhere), unlinked ones included.
func openUnder(dir string) int {
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
