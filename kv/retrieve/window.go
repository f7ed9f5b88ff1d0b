package retrieve

import "github.com/kvgo/kvgo/kv"

// Window reads only the most recent Pages pages of each stream (and the
// tokens not yet sealed into a page): sliding-window attention over a cache
// that deletes nothing. It is the floor a query-aware selector (Quest,
// ActQKV) must beat at the same read budget, and the simplest test of the
// selector seam: the pages it skips stay in the cache and are read again
// as soon as a wider selector asks.
type Window struct {
	Pages int

	count readCounter
}

var windowMethod = kv.Method{
	Name: "window", Kind: kv.SelectorMethod,
	Summary: "read only the most recent `pages` pages of each stream at each decode step (sliding-window attention that deletes nothing); the baseline of query-aware selectors",
	Paper:   "baseline (sliding-window attention, Longformer, Beltagy et al. 2020, arXiv:2004.05150)",
	Params: []kv.Param{
		{Name: "pages", Kind: kv.IntParam, Min: 1, Max: 1 << 20, Default: "8", Help: "most recent sealed pages read per (layer, KV head), besides the unsealed tail"},
	},
	NewSelector: func(a kv.Args) (kv.Selector, error) { return &Window{Pages: a.Int("pages")}, nil },
}

func (*Window) Name() string    { return "window" }
func (*Window) Summaries() bool { return false }

// Reads returns what the decode steps have read so far.
func (w *Window) Reads() ReadStats { return w.count.Reads() }

// Select reads the last Pages pages.
func (w *Window) Select(v *kv.SelectView, _ []float32, _ int, _ int32, read []bool) {
	for i := range len(read) - min(w.Pages, len(read)) {
		read[i] = false
	}
	s := v.Stream
	w.count.add(readTokens(s, read, s.PagedLen()), s.Len())
}
