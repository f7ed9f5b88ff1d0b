package retrieve

import (
	"fmt"
	"sync"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	ggml "github.com/kvgo/kvgo/quant"
)

// Quest chooses, at each decode step, the pages whose keys can give the
// query the largest attention logits (Tang et al. 2024, "Quest: Query-Aware
// Sparsity for Efficient Long-Context LLM Inference", ICML 2024,
// arXiv:2406.10774; the public code is mit-han-lab/Quest,
// evaluation/quest_attention.py).
//
// Each page keeps, per KV head, the per-channel minimum m and maximum M of
// its post-RoPE keys (kv.Stream.PageBounds, kept by the cache through every
// change of the page, in half precision rounded outward, so still bounds,
// and exact for F16 keys). For a query q, Σ_d max(q_d·M_d, q_d·m_d) is an
// upper bound of q·k over the page's keys; the page's score is that bound
// summed over the query heads of the GQA group, and the step reads the
// pages of highest score that fit the read budget, plus the attention sinks
// and the most recent window, always.
//
// Choices the paper leaves open, or where kvgo differs:
//
//   - Pages are kvgo's pages of kv.PageTokens (32) tokens, and Page (a
//     multiple of 32) joins adjacent pages into one Quest page whose bounds
//     are the element-wise min and max of theirs (exact). Quest's default
//     page of 16 tokens is below kvgo's page and would need summaries per
//     half page in the cache.
//   - Quest selects per query head; kvgo reads a page once for all heads of
//     a GQA group, so the group shares one selection, scored by the sum of
//     its heads' bounds. The sum is computed as Q⁺·M + Q⁻·m with Q⁺ the sum
//     over heads of max(q, 0) and Q⁻ of min(q, 0): one inner product of
//     [Q⁻; Q⁺] with [m; M] per page whatever the group size.
//   - Bounds are halves: rounded outward from the decoded keys, they
//     remain bounds and cost half the bytes of F32 ones to keep and to
//     score. A key beyond the half range makes a bound infinite; a page
//     whose score is then NaN (a zero query channel times it) is read.
//   - The budget counts every token read (retrieve's package comment):
//     sinks, the recent window and the unsealed tail are read first, and
//     the best ⌊(budget − those) / Page⌋ Quest pages fill the rest. Quest's
//     code reads max(3, budget/16) pages and no separate sinks or window;
//     the sinks (Sinks tokens, default one page) and the window (Recent
//     tokens, default one page, at least the newest token) are the issue's
//     and StreamingLLM's safeguard, rounded up to whole pages.
//   - The first Dense layers (default 2, as in the paper) read every page,
//     and so does a stream whose tokens fit the budget. Prefill is dense,
//     as in the paper: kvgo's selectors choose for decode steps only.
type Quest struct {
	Budget kv.Budget
	// Page is the number of tokens per Quest page, a multiple of
	// kv.PageTokens.
	Page int
	// Sinks and Recent are how many first and last tokens every step
	// reads, rounded up to whole pages.
	Sinks, Recent int
	// Dense is the number of first layers that read every page.
	Dense int

	pool  sync.Pool // *questScratch
	count readCounter
}

var questMethod = kv.Method{
	Name: "quest", Kind: kv.SelectorMethod,
	Summary: "at each decode step read the pages whose per-channel key bounds give the query the highest upper bound of attention, within a read budget; sinks, the recent window and the first layers are always read",
	Paper:   "Quest, Tang et al. 2024, arXiv:2406.10774",
	Params: []kv.Param{
		{Name: "budget", Kind: kv.BudgetParam, Default: "1024", Help: "tokens read per (layer, KV head) and decode step, sinks, recent window and unsealed tail included: a count, or a fraction of the prompt"},
		{Name: "page", Kind: kv.IntParam, Min: kv.PageTokens, Max: 1 << 16, Default: "32", Help: "tokens per Quest page, a multiple of the cache's 32-token page"},
		{Name: "sinks", Kind: kv.IntParam, Min: 0, Max: 1 << 20, Default: "32", Help: "first tokens always read (rounded up to whole pages)"},
		{Name: "recent", Kind: kv.IntParam, Min: 1, Max: 1 << 20, Default: "32", Help: "most recent tokens always read (rounded up to whole pages)"},
		{Name: "dense", Kind: kv.IntParam, Min: 0, Max: 1 << 10, Default: "2", Help: "first layers that read every page"},
	},
	NewSelector: func(a kv.Args) (kv.Selector, error) {
		return NewQuest(a.Budget("budget"), a.Int("page"), a.Int("sinks"), a.Int("recent"), a.Int("dense"))
	},
}

// NewQuest returns a Quest selector; page must be a multiple of
// kv.PageTokens.
func NewQuest(budget kv.Budget, page, sinks, recent, dense int) (*Quest, error) {
	if page < kv.PageTokens || page%kv.PageTokens != 0 {
		return nil, fmt.Errorf("page=%d must be a multiple of the cache's page of %d tokens", page, kv.PageTokens)
	}
	if budget.IsZero() {
		return nil, fmt.Errorf("budget must be set")
	}
	if sinks < 0 || recent < 1 || dense < 0 {
		return nil, fmt.Errorf("sinks=%d, recent=%d, dense=%d: need sinks >= 0, recent >= 1, dense >= 0", sinks, recent, dense)
	}
	return &Quest{Budget: budget, Page: page, Sinks: sinks, Recent: recent, Dense: dense}, nil
}

func (*Quest) Name() string    { return "quest" }
func (*Quest) Summaries() bool { return true }

// Reads returns what the decode steps have read so far.
func (q *Quest) Reads() ReadStats { return q.count.Reads() }

// Check refuses a budget larger than the context.
func (q *Quest) Check(capacity int) error { return checkBudget(q.Budget, capacity) }

// questScratch is one Select call's memory.
type questScratch struct {
	// signed is [Q⁻; Q⁺], the query's negative and positive parts summed
	// over the group, against a page's bounds [m; M] (kv.Stream.PageBounds).
	signed []float32
	// bounds holds the merged bounds of a Quest page of several cache
	// pages.
	bounds []float32
	score  []float32
	idx    []int32
}

func (q *Quest) scratch(d, groups int) *questScratch {
	sc, _ := q.pool.Get().(*questScratch)
	if sc == nil {
		sc = &questScratch{}
	}
	if cap(sc.signed) < 2*d {
		sc.signed, sc.bounds = make([]float32, 2*d), make([]float32, 2*d)
	}
	sc.signed, sc.bounds = sc.signed[:2*d], sc.bounds[:2*d]
	if cap(sc.score) < groups {
		sc.score = make([]float32, groups+groups/2)
		sc.idx = make([]int32, groups+groups/2)
	}
	sc.score, sc.idx = sc.score[:groups], sc.idx[:0]
	return sc
}

// Select marks the sinks, the recent window and the best-bounded pages.
func (q *Quest) Select(v *kv.SelectView, qv []float32, g int, _ int32, read []bool) {
	s := v.Stream
	paged := s.PagedLen()
	budget := resolve(q.Budget, v)
	if v.Layer < q.Dense || budget >= s.Len() {
		q.count.add(s.Len(), s.Len())
		return
	}
	head, tail := ends(s, q.Sinks, q.Recent, paged)
	per := q.Page / kv.PageTokens
	// Quest pages are runs of per cache pages from head on.
	groups := (tail - head + per - 1) / per
	spent := s.Len() - paged
	for i := range read {
		if i >= head && i < tail {
			read[i] = false
		} else {
			spent += s.PageLen(i)
		}
	}
	k := (budget - spent) / q.Page
	if k <= 0 || groups == 0 {
		q.count.add(spent, s.Len())
		return
	}
	if k >= groups {
		for i := head; i < tail; i++ {
			read[i] = true
		}
		q.count.add(s.Len(), s.Len())
		return
	}
	d := s.Dim()
	sc := q.scratch(d, groups)
	neg, pos := sc.signed[:d], sc.signed[d:]
	clear(sc.signed)
	for j := 0; j < g; j++ {
		for c, x := range qv[j*d : (j+1)*d] {
			if x > 0 {
				pos[c] += x
			} else {
				neg[c] += x
			}
		}
	}
	for gi := 0; gi < groups; gi++ {
		first := head + gi*per
		last := min(first+per, tail)
		b := s.PageBounds(first)
		if b == nil {
			// No summary (the cache keeps them for this selector; a
			// page without one is read rather than guessed).
			sc.score[gi] = float32(1e38)
			sc.idx = append(sc.idx, int32(gi))
			continue
		}
		var score float32
		if last-first > 1 {
			// A Quest page of several cache pages: their bounds merged.
			// Halves widen to float32 exactly, so the merge is exact.
			kernel.FromF16(sc.bounds, b)
			lo, hi := sc.bounds[:d], sc.bounds[d:]
			for p := first + 1; p < last; p++ {
				b2 := s.PageBounds(p)
				for c := range lo {
					lo[c] = min(lo[c], ggml.F16ToF32(b2[c]))
					hi[c] = max(hi[c], ggml.F16ToF32(b2[d+c]))
				}
			}
			score = kernel.Dot(sc.signed, sc.bounds)
		} else {
			score = kernel.DotF16(sc.signed, b)
		}
		if score != score {
			// A key beyond the half range has an infinite bound, and a
			// query channel of zero times it is NaN: read the page.
			score = float32(1e38)
		}
		sc.score[gi] = score
		sc.idx = append(sc.idx, int32(gi))
	}
	topK(sc.score, sc.idx, k)
	for _, gi := range sc.idx[:k] {
		first := head + int(gi)*per
		for p := first; p < min(first+per, tail); p++ {
			read[p] = true
			spent += s.PageLen(p)
		}
	}
	q.pool.Put(sc)
	q.count.add(spent, s.Len())
}
