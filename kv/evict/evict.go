// Package evict holds the KV-cache methods that keep fewer tokens:
// StreamingLLM, H2O, TOVA, SnapKV, PyramidKV, KNorm and KVCrush. Each
// deletes tokens from the cache's streams, freeing their memory, rather
// than masking them.
//
// A method that ranks tokens is a Scorer: it writes a score per token and
// declares its settings, and Ranked (scorer.go) is the one evictor that
// turns scores into kept tokens (budget, protected sinks and tail,
// pooling, per-head or per-layer top-k, per-step eviction, Bound); its
// doc holds the conventions of every selection. KVCrush is a wrapper: it
// changes how any Ranked evictor spends its budget.
//
// Conventions shared by every evictor here:
//
//   - Attention statistics are the cache's Stream.Observed: probabilities
//     summed over the query heads that share the KV head (GQA group). Sums
//     rank tokens exactly as means do, so no division by the group size.
//   - An evictor value serves one cache: kv/recipe builds a fresh one per
//     cache, and the cache calls the hooks of one layer at a time.
//   - Positions are never rewritten. The cache stores keys after RoPE with
//     their original positions; papers that re-index positions inside the
//     cache (StreamingLLM) are followed in what they keep, not in how they
//     re-rotate (the kv core keeps positions so a later re-rotation can).
package evict

import (
	"fmt"
	"math"

	"github.com/kvgo/kvgo/kv"
)

// Methods are the evictors of this package, and the KVCrush wrapper, as
// recipe entries.
var Methods = []kv.Method{
	{
		Name: "streaming", Kind: kv.EvictorMethod,
		Summary: "StreamingLLM: keep the first `sinks` tokens (attention sinks) and the most recent ones, after prefill and at every decode step",
		Paper:   "StreamingLLM, Xiao et al. 2023, arXiv:2309.17453",
		Params:  []kv.Param{budgetParam(), sinksParam()},
		NewEvictor: func(a kv.Args) (kv.Evictor, error) {
			return NewStreaming(a.Budget("budget"), a.Int("sinks")), nil
		},
	},
	{
		Name: "h2o", Kind: kv.EvictorMethod,
		Summary: "H2O: per-head accumulated attention (all prompt queries, then every decode step); keep a recent window plus the heavy hitters, evict the lowest",
		Paper:   "H2O, Zhang et al. 2023, arXiv:2306.14048",
		Params:  []kv.Param{budgetParam(), recentParam()},
		NewEvictor: func(a kv.Args) (kv.Evictor, error) {
			return NewH2O(a.Budget("budget"), a.Float("recent")), nil
		},
	},
	{
		Name: "tova", Kind: kv.EvictorMethod,
		Summary: "TOVA: layer-wise; keep the top tokens by the last prompt query's attention, then at each step evict the token with the lowest current attention averaged over the layer's heads",
		Paper:   "TOVA (Transformers are Multi-State RNNs), Oren et al. 2024, arXiv:2401.06104",
		Params:  []kv.Param{budgetParam()},
		NewEvictor: func(a kv.Args) (kv.Evictor, error) {
			return NewTOVA(a.Budget("budget")), nil
		},
	},
	{
		Name: "snapkv", Kind: kv.EvictorMethod,
		Summary: "SnapKV (prefill only): per head, pool the observation window's attention and keep the top (budget - window) tokens plus the window",
		Paper:   "SnapKV, Li et al. 2024, arXiv:2404.14469",
		Params:  []kv.Param{budgetParam(), windowParam(), kernelParam(), poolParam()},
		NewEvictor: func(a kv.Args) (kv.Evictor, error) {
			e := NewSnapKV(a.Budget("budget"), a.Int("window"), a.Int("kernel"), a.Choice("pool"))
			return e, e.check()
		},
	},
	{
		Name: "pyramidkv", Kind: kv.EvictorMethod,
		Summary: "PyramidKV (prefill only): SnapKV selection with per-layer budgets falling linearly from the bottom layer to the top, averaging `budget`",
		Paper:   "PyramidKV, Cai et al. 2024, arXiv:2406.02069",
		Params:  []kv.Param{budgetParam(), windowParam(), kernelParam(), poolParam(), betaParam()},
		NewEvictor: func(a kv.Args) (kv.Evictor, error) {
			e := NewPyramidKV(a.Budget("budget"), a.Int("window"), a.Int("kernel"), a.Choice("pool"), a.Float("beta"))
			return e, e.check()
		},
	},
	knormMethod,
	{
		Name: "kvcrush", Kind: kv.WrapperMethod,
		Summary: "KVCrush: of the budget the recipe's evictor leaves after its protected tokens, a `split` keeps the evictor's top tokens and the rest keeps representatives of the tokens it drops, one per bucket of Hamming distance between head-behaviour vectors and an `anchor`; representatives are shared by the heads of a layer",
		Paper:   "KVCrush, Jha et al. 2025, arXiv:2503.00022",
		Params: []kv.Param{
			{Name: "split", Kind: kv.FloatParam, Min: 0, Max: 1, Default: "0.75", Help: "of the budget left after the evictor's protected tokens (snapkv's window, h2o's recent tokens), the fraction kept by the evictor's ranking; the rest are representatives (1 = the evictor alone)"},
			{Name: "anchor", Kind: kv.ChoiceParam, Choices: []string{"alternate", "ones", "zeros", "mean"}, Default: "alternate", Help: "anchor head-behaviour vector the Hamming distances are measured from"},
			{Name: "scope", Kind: kv.ChoiceParam, Choices: []string{"head", "layer"}, Default: "head", Help: "head: each KV head keeps its own ranked tokens and all share the representatives; layer: every head of a layer keeps the same tokens"},
			{Name: "threshold", Kind: kv.ChoiceParam, Choices: []string{"median", "mean"}, Default: "median", Help: "a head-behaviour bit is 1 for the top half of the head's scores (median) or above their mean"},
		},
		Wrap: func(a kv.Args, inner kv.Evictor) (kv.Evictor, error) {
			e, err := NewKVCrush(inner, a.Float("split"), a.Choice("anchor"), a.Choice("scope"), a.Choice("threshold"))
			if err != nil {
				return nil, err
			}
			return e, nil
		},
	},
}

// DefaultBudget is every evictor's default budget: half of the prompt.
const DefaultBudget = "0.5"

func budgetParam() kv.Param {
	return kv.Param{Name: "budget", Kind: kv.BudgetParam, Default: DefaultBudget,
		Help: "tokens kept per (layer, KV head): a count, or a fraction of the prompt"}
}

func sinksParam() kv.Param {
	return kv.Param{Name: "sinks", Kind: kv.IntParam, Min: 0, Max: 1024, Default: "4",
		Help: "initial tokens always kept (attention sinks; the paper uses 4)"}
}

func recentParam() kv.Param {
	return kv.Param{Name: "recent", Kind: kv.FloatParam, Min: 0, Max: 1, Default: "0.5",
		Help: "fraction of the budget kept as the most recent tokens; the rest are heavy hitters (h2o)"}
}

func windowParam() kv.Param {
	return kv.Param{Name: "window", Kind: kv.IntParam, Min: 1, Max: 4096, Default: "32",
		Help: "observation window: the last prompt queries whose attention scores tokens; the window itself is kept (snapkv)"}
}

func kernelParam() kv.Param {
	return kv.Param{Name: "kernel", Kind: kv.IntParam, Min: 1, Max: 63, Default: "7",
		Help: "odd size of the 1-D pooling that smooths the window's attention (snapkv)"}
}

func poolParam() kv.Param {
	return kv.Param{Name: "pool", Kind: kv.ChoiceParam, Choices: []string{"max", "avg"}, Default: "max",
		Help: "pooling of the window's attention (snapkv)"}
}

func betaParam() kv.Param {
	return kv.Param{Name: "beta", Kind: kv.FloatParam, Min: 1, Max: 1000, Default: "20",
		Help: "top layer keeps (budget - window)/beta selected tokens; 1 gives every layer the same budget"}
}

func checkKernel(k int) error {
	if k < 1 || k%2 == 0 {
		return fmt.Errorf("kernel=%d must be odd (1, 3, 5, 7, ...) so that pooling is centred", k)
	}
	return nil
}

// resolve turns a budget into tokens for the layer's prompt. ok is false
// when a fractional budget has no prompt to refer to.
func resolve(b kv.Budget, prompt int) (n int, ok bool) {
	if b.Tokens > 0 {
		return b.Tokens, true
	}
	if prompt <= 0 {
		return 0, false
	}
	return b.Resolve(prompt), true
}

// part returns round(f*n) clamped to [lo, n].
func part(f float64, n, lo int) int {
	return min(n, max(lo, int(math.Round(f*float64(n)))))
}

// scratch is per-evictor working memory, grown on demand and reused.
type scratch struct {
	mask  []bool
	score []float32
	idx   []int32
	// raw holds a scorer's scores of a whole stream, row one stream's
	// scores of the scored tokens (layer scope).
	raw, row []float32
}

// grown returns (*x)[:n], reallocating when its capacity is short; the
// contents are not cleared.
func grown(x *[]float32, n int) []float32 {
	if cap(*x) < n {
		*x = make([]float32, n, n+n/4+16)
	}
	return (*x)[:n]
}

// maskOf returns a mask of n entries all set to v.
func (s *scratch) maskOf(n int, v bool) []bool {
	if cap(s.mask) < n {
		s.mask = make([]bool, n, n+n/4+16)
	}
	m := s.mask[:n]
	for i := range m {
		m[i] = v
	}
	return m
}

// scores returns a zeroed score buffer of n entries.
func (s *scratch) scores(n int) []float32 {
	b := grown(&s.score, n)
	clear(b)
	return b
}

// iota returns the indices 0..n-1.
func (s *scratch) iota(n int) []int32 {
	if cap(s.idx) < n {
		s.idx = make([]int32, n, n+n/4+16)
	}
	x := s.idx[:n]
	for i := range x {
		x[i] = int32(i)
	}
	return x
}

// better reports whether token a outranks token b: a higher score, or on
// a tie the more recent token.
func better(s []float32, a, b int32) bool {
	if s[a] != s[b] {
		return s[a] > s[b]
	}
	return a > b
}

// selectTop reorders idx so that idx[:k] are the k best tokens by s (in
// no particular order) and idx[k-1] is the k-th best, in expected
// O(len(idx)) time (quickselect with a median-of-three pivot; the order
// of better is total, so equal scores do not degrade it).
func selectTop(idx []int32, s []float32, k int) {
	if k <= 0 || k >= len(idx) {
		return
	}
	lo, hi, target := 0, len(idx)-1, k-1
	for lo < hi {
		p := partition(idx, s, lo, hi, median3(idx, s, lo, lo+(hi-lo)/2, hi))
		switch {
		case p == target:
			return
		case p < target:
			lo = p + 1
		default:
			hi = p - 1
		}
	}
}

func median3(idx []int32, s []float32, a, b, c int) int {
	if better(s, idx[b], idx[a]) {
		a, b = b, a
	}
	// Now idx[a] is better than idx[b].
	if better(s, idx[c], idx[a]) {
		return a
	}
	if better(s, idx[c], idx[b]) {
		return c
	}
	return b
}

// partition moves the tokens better than idx[p] before it and returns its
// final place.
func partition(idx []int32, s []float32, lo, hi, p int) int {
	pv := idx[p]
	idx[p], idx[hi] = idx[hi], idx[p]
	st := lo
	for i := lo; i < hi; i++ {
		if better(s, idx[i], pv) {
			idx[st], idx[i] = idx[i], idx[st]
			st++
		}
	}
	idx[st], idx[hi] = idx[hi], idx[st]
	return st
}

// worst returns the index in [lo, hi) of the lowest-ranked token by s.
func worst(s []float32, lo, hi int) int {
	w := lo
	for i := lo + 1; i < hi; i++ {
		if better(s, int32(w), int32(i)) {
			w = i
		}
	}
	return w
}

// keepTop marks in mask the best `keep` tokens of [0, n) by s, in expected
// O(n), and leaves the rest of [0, n) false; mask entries at n and beyond
// are not touched. One eviction (keep == n-1) is a single scan.
func (sc *scratch) keepTop(mask []bool, s []float32, n, keep int) {
	switch {
	case keep >= n:
		for i := 0; i < n; i++ {
			mask[i] = true
		}
	case keep <= 0:
		for i := 0; i < n; i++ {
			mask[i] = false
		}
	case keep == n-1:
		for i := 0; i < n; i++ {
			mask[i] = true
		}
		mask[worst(s, 0, n)] = false
	default:
		idx := sc.iota(n)
		selectTop(idx, s, keep)
		for i := 0; i < n; i++ {
			mask[i] = false
		}
		for _, i := range idx[:keep] {
			mask[i] = true
		}
	}
}

// sameLength returns the common length of the layer's streams; layer-wise
// selections (Ranked with Layer, KVCrush) keep the streams of a layer
// aligned token for token, so a mismatch is a broken invariant.
func sameLength(l *kv.LayerView) int {
	n := l.Streams[0].Len()
	for _, s := range l.Streams[1:] {
		if s.Len() != n {
			panic(fmt.Sprintf("evict: layer %d streams hold %d and %d tokens; a layer-wise evictor needs them aligned", l.Layer, n, s.Len()))
		}
	}
	return n
}
