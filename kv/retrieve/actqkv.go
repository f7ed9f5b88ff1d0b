package retrieve

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// ActQKV chooses, at each decode step, the pages whose representative keys
// are closest to the step's probe-query, and lets each layer read as many
// pages as its scores are concentrated (Xiao et al. 2025, "Activation-aware
// Probe-Query: Effective Key-Value Retrieval for Long-Context LLMs
// Inference", arXiv:2502.13542; the public code is MrXiaoaa/ActQKV,
// attention/context_manager_activate_3_dev.py, built on InfLLM, Xiao et al.
// 2024, arXiv:2402.04617).
//
// What it does, per (layer, KV head) stream:
//
//   - Statistics (per layer, not one global state as the reference code
//     has): a running mean μ_d and variance σ²_d of the layer's query
//     vectors (all query heads side by side), over the prompt's windows.
//   - Activation Bias of a token t of a window: AB_t = mean over d of
//     (q_td − μ_d)² / (σ²_d + mean(σ²)/100), with μ and σ² updated with the
//     window first, as the code does; window weights w_t = AB_t / Σ AB.
//   - Probe-query: per window of Window (256) prompt tokens, P = Σ w_t·q_t
//     per query head; at a decode step the window is the current token, so
//     P = q. With Activation off, w_t = 1/n: the mean query of InfLLM (the
//     ablation `activation=off`).
//   - Blocks are kvgo's pages (32 tokens, ActQKV's block size). A page is
//     represented, for each query head h of the group, by K̄_h, the mean key
//     of its Repr (4) tokens that received the most local attention from
//     head h: the attention of the prompt's queries at most Local positions
//     after the token (kv.Stream.LocalAttention). Its score is
//     Σ_h cos(P_h, K̄_h) over the query heads of the group.
//   - Dynamic cut-off: Ĥ = −Σ p log p / log n, the normalized entropy of
//     p = softmax(scores) over a stream's n candidate pages, kept per layer
//     and KV head (the last 100; E is their mean). A decode step shares a
//     budget of topk·L pages over the L selecting layers of a KV head,
//     taken in layer order: layer ℓ reads k = clamp(round(ω_ℓ·B_rem), 1,
//     2·topk) pages with ω_ℓ = E_ℓ / Σ_{m≥ℓ} E_m of the B_rem left, where
//     topk = (budget − sinks − local) / 32, so that the layers read the
//     budget on average.
//   - Sinks (the first Sinks = 64 tokens) and the local window (the last
//     Local = 512 tokens, the unsealed tail included) are always read.
//
// Choices the paper or the code leave open, or where kvgo differs:
//
//   - The prompt's own attention stays dense. InfLLM and ActQKV run the
//     prompt itself in windows that each read only its probe's blocks;
//     that needs a window's queries before its attention, which kvgo's
//     model hands the cache one token at a time. The probe of each prompt
//     window is built as above (ReadPrompt gathers the queries, EndPrompt
//     weighs them) and scores the pages before the window's local reach,
//     and its entropies start each layer's cut-off history: the prompt's
//     probes steer how a decode step splits its budget over the layers,
//     and a decode step's own choice uses P = q, as in the code.
//   - Budget: the budget counts every token read (retrieve's package
//     comment); the code's default, 64 + 512 + 46·32 = 2048 tokens, is this
//     method's reference point. A budget below 2048 (kvgo-tiny's contexts
//     are 1024-2048 tokens) scales Sinks and Local by budget/2048, rounded
//     up to whole pages and at least one page each: at 256 tokens, 32 sink
//     tokens and 64 local ones leave 5 pages to choose.
//   - Scores are per KV head (the issue's "summed over the group's
//     heads"); the code scores one concatenation of every head of the
//     layer. Representatives are per query head, as the code keeps them
//     (g·d F16 values per page, counted in the cache's bytes: 11% of an
//     f16 page of qwen2.5-0.5b, g = 7, d = 64): summing the
//     group's local attention first found the pass key in 5 of 15 cases at
//     1024 tokens and a 25% budget where per-head found it in 8 (kvgo-tiny
//     run 3). Cosines are taken in InfLLM's frame: the cache holds keys
//     after RoPE, so a representative's keys are turned back to position 0
//     and every query (decode steps and the prompt's window rows) to
//     position Local, with the model's RoPE (kv.SelectView.RoPE), as
//     InfLLM places every retrieved block Local positions before the
//     query; post-RoPE cosines would favour pages by their distance
//     (passkey at a 25% budget, kvgo-tiny run 4: 8/15 → 10/15 at 1024
//     tokens, 3/15 → 5/15 at 2048). Without a RoPE, post-RoPE vectors.
//   - Running statistics: an exact merge of each window's mean and
//     (population) variance into the running ones, by token counts
//     capped at 1000 windows; the code divides the first variance by n−1
//     and caps at 1000 updates. They are updated by prompt windows only:
//     at decode they are never read (P = q), so updating them there, as
//     the code does, would change nothing.
//   - Local attention is summed while the prompt is prefilled, over the
//     unscaled Local (the ranking of a page's tokens only needs their near
//     queries, and the cache sums it before a fractional budget can be
//     resolved); a page sealed later (generated tokens) has none and is
//     represented by the mean of all its keys. Representatives are
//     computed once per page, when it is first scored, and again when the
//     page changes (its first or last position or its length), e.g. after
//     eviction; a page whose keys are overwritten in place (a chunk
//     repaired at the same positions) keeps its old representative.
//   - The cut-off's history: the code waits until every layer has 100
//     entropies, and its statistics are module globals that persist across
//     requests; a kvgo selector lives for one sequence, so E is the mean of
//     the up to 100 most recent entropies, and the split is uniform
//     (1/(L−ℓ)) only until every selecting layer has one. The code's lower
//     clamp of 32 blocks (its topk there is 46-92) is the 1 here.
//   - The code adds a question-weighted term (from Q-LLM) in its first
//     pass; it is optional there and left out here.
//   - Dense (default 0) first layers read every page.
type ActQKV struct {
	Budget kv.Budget
	// Sinks and Local are the first and last tokens every step reads,
	// before scaling to the budget.
	Sinks, Local int
	// Window is the number of prompt tokens per probe-query.
	Window int
	// Repr is the number of keys that represent a page.
	Repr int
	// Activation weighs a window's queries by their Activation Bias;
	// off, by 1/n (InfLLM's mean query).
	Activation bool
	// Dense is the number of first layers that read every page.
	Dense int

	mu     sync.Mutex // guards initialisation
	ready  atomic.Bool
	layers []*actLayer
	heads  []actHead // per KV head: the decode step's shared budget
	count  readCounter
	pool   sync.Pool // *actScratch
}

// actReference is the code's default budget (64 + 512 + 46·32 tokens), at
// which Sinks and Local apply unscaled.
const actReference = 2048

// actHistory is how many entropies E averages.
const actHistory = 100

var actqkvMethod = kv.Method{
	Name: "actqkv", Kind: kv.SelectorMethod,
	Summary: "at each decode step read the pages whose representative keys (the most locally attended) are closest to the probe-query; layers split the budget by the entropy of their scores; prompt windows build activation-weighted probes",
	Paper:   "ActQKV, Xiao et al. 2025, arXiv:2502.13542 (on InfLLM, arXiv:2402.04617)",
	Params: []kv.Param{
		{Name: "budget", Kind: kv.BudgetParam, Default: "2048", Help: "tokens read per (layer, KV head) and decode step on average over the layers, sinks, local window and unsealed tail included: a count, or a fraction of the prompt"},
		{Name: "sinks", Kind: kv.IntParam, Min: 0, Max: 1 << 20, Default: "64", Help: "first tokens always read (scaled by budget/2048 below 2048, whole pages)"},
		{Name: "local", Kind: kv.IntParam, Min: 1, Max: 1 << 20, Default: "512", Help: "most recent tokens always read (scaled by budget/2048 below 2048, whole pages)"},
		{Name: "window", Kind: kv.IntParam, Min: 1, Max: 1 << 16, Default: "256", Help: "prompt tokens per probe-query window"},
		{Name: "repr", Kind: kv.IntParam, Min: 1, Max: kv.PageTokens, Default: "4", Help: "most locally attended keys whose mean represents a page"},
		{Name: "activation", Kind: kv.ChoiceParam, Choices: []string{"on", "off"}, Default: "on", Help: "weigh a window's queries by their Activation Bias (off: InfLLM's mean query)"},
		{Name: "dense", Kind: kv.IntParam, Min: 0, Max: 1 << 10, Default: "0", Help: "first layers that read every page"},
	},
	NewSelector: func(a kv.Args) (kv.Selector, error) {
		return NewActQKV(a.Budget("budget"), a.Int("sinks"), a.Int("local"), a.Int("window"), a.Int("repr"), a.Choice("activation") == "on", a.Int("dense"))
	},
}

// NewActQKV returns an ActQKV selector.
func NewActQKV(budget kv.Budget, sinks, local, window, repr int, activation bool, dense int) (*ActQKV, error) {
	if budget.IsZero() {
		return nil, fmt.Errorf("budget must be set")
	}
	if sinks < 0 || local < 1 || window < 1 || repr < 1 || repr > kv.PageTokens || dense < 0 {
		return nil, fmt.Errorf("sinks=%d, local=%d, window=%d, repr=%d, dense=%d: need sinks >= 0, local >= 1, window >= 1, 1 <= repr <= %d, dense >= 0", sinks, local, window, repr, dense, kv.PageTokens)
	}
	return &ActQKV{Budget: budget, Sinks: sinks, Local: local, Window: window, Repr: repr, Activation: activation, Dense: dense}, nil
}

func (*ActQKV) Name() string    { return "actqkv" }
func (*ActQKV) Summaries() bool { return false }

// LocalWindow asks the cache for the local attention of the unscaled
// window: a scaled one is smaller, and the ranking of a page's tokens only
// needs the attention of their near queries.
func (a *ActQKV) LocalWindow() int { return a.Local }

// Reads returns what the decode steps have read so far.
func (a *ActQKV) Reads() ReadStats { return a.count.Reads() }

// Check refuses a budget larger than the context.
func (a *ActQKV) Check(capacity int) error { return checkBudget(a.Budget, capacity) }

// Bytes is the memory of the page representatives (g·d F16 values per
// page and stream, plus their identities) and of the prompt rows not yet
// weighed. It must not run while attention does.
func (a *ActQKV) Bytes() int64 {
	if !a.ready.Load() {
		return 0
	}
	var b int64
	for _, l := range a.layers {
		b += int64(cap(l.rows))*4 + int64(cap(l.have)) + int64(len(l.mean)+len(l.vari))*8
		for i := range l.streams {
			b += int64(cap(l.streams[i].rep))*2 + int64(cap(l.streams[i].repKey))*12
		}
	}
	return b
}

// Fork gives a forked cache its own statistics and histories; page
// representatives are recomputed from the fork's own streams.
func (a *ActQKV) Fork() kv.Selector {
	f := &ActQKV{Budget: a.Budget, Sinks: a.Sinks, Local: a.Local, Window: a.Window, Repr: a.Repr, Activation: a.Activation, Dense: a.Dense}
	if !a.ready.Load() {
		return f
	}
	f.layers = make([]*actLayer, len(a.layers))
	for i, l := range a.layers {
		c := &actLayer{n: l.n, mean: append([]float64(nil), l.mean...), vari: append([]float64(nil), l.vari...),
			rows: append([]float32(nil), l.rows...), start: l.start, floor: l.floor, have: append([]bool(nil), l.have...), dim: l.dim}
		c.pending.Store(l.pending.Load())
		c.streams = make([]actStream, len(l.streams))
		for h, s := range l.streams {
			c.streams[h] = actStream{ent: s.ent, entN: s.entN, entAt: s.entAt, entSum: s.entSum, gd: s.gd, d: s.d, prompt: s.prompt, rope: s.rope}
		}
		f.layers[i] = c
	}
	f.heads = append([]actHead(nil), a.heads...)
	f.ready.Store(true)
	return f
}

// actLayer is one layer's state.
type actLayer struct {
	mu sync.Mutex // guards the prompt rows while ReadPrompt runs in parallel
	// Running statistics of the layer's queries, per dimension.
	n          float64
	mean, vari []float64
	// The prompt queries not yet weighed: rows of dim values for positions
	// start, start+1, ...; have marks the positions seen.
	rows  []float32
	have  []bool
	start int32
	// floor: every position before it has been weighed (or skipped).
	floor int32
	dim   int // KVHeads·g·d, the width of a row
	// pending: rows wait for the next EndPrompt or decode step.
	pending atomic.Bool
	streams []actStream // per KV head
}

// actStream is the state of one (layer, KV head).
type actStream struct {
	stream *kv.Stream // the stream, as the last call saw it
	rep    []uint16   // per page, the unit representative keys of the group's heads, F16
	repKey []pageKey
	// The cut-off's entropy history: a ring of the last actHistory.
	ent         [actHistory]float32
	entN, entAt int
	entSum      float64
	gd, d       int // the group's query width and the key width
	prompt      int // the announced prompt, for a fractional budget
	rope        kv.Rotary
}

// pageKey identifies a page's content for its cached representative.
type pageKey struct{ first, last, n int32 }

// actHead is the shared budget of one KV head during a decode step.
type actHead struct {
	remaining int
	last      int // the last layer that selected; a lower one starts a step
}

// actScratch is one call's memory.
type actScratch struct {
	probe []float32 // the group's unit queries
	score []float32
	idx   []int32
	key   []float32
	loc   []float32 // a page's local attention of one head
	top   []int32
	rep   []float32 // a page's representatives before F16
}

func (a *ActQKV) scratch(gd, d, n int) *actScratch {
	sc, _ := a.pool.Get().(*actScratch)
	if sc == nil {
		sc = &actScratch{loc: make([]float32, kv.PageTokens), top: make([]int32, 0, kv.PageTokens)}
	}
	if cap(sc.probe) < gd {
		sc.probe, sc.rep = make([]float32, gd), make([]float32, gd)
	}
	if cap(sc.key) < d {
		sc.key = make([]float32, d)
	}
	sc.probe, sc.key = sc.probe[:gd], sc.key[:d]
	if cap(sc.score) < n {
		sc.score, sc.idx = make([]float32, n+n/2), make([]int32, n+n/2)
	}
	sc.score, sc.idx = sc.score[:n], sc.idx[:0]
	return sc
}

// init sizes the state on the first call.
func (a *ActQKV) init(v *kv.SelectView) {
	if a.ready.Load() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ready.Load() {
		return
	}
	a.layers = make([]*actLayer, v.Layers)
	for i := range a.layers {
		// Key widths may differ per layer (kv.Shape.LayerDims); the
		// layer's own width is learned on its first call.
		a.layers[i] = &actLayer{streams: make([]actStream, v.KVHeads), floor: math.MinInt32}
	}
	a.heads = make([]actHead, v.KVHeads)
	for h := range a.heads {
		a.heads[h].last = v.Layers
	}
	a.ready.Store(true)
}

// scaled returns the sinks and local window for a resolved budget.
func (a *ActQKV) scaled(budget int) (sinks, local int) {
	sinks, local = a.Sinks, a.Local
	if budget < actReference {
		f := float64(budget) / actReference
		sinks = int(math.Ceil(float64(sinks) * f))
		local = int(math.Ceil(float64(local) * f))
	}
	page := func(n int) int { return max(kv.PageTokens, (n+kv.PageTokens-1)/kv.PageTokens*kv.PageTokens) }
	if sinks > 0 {
		sinks = page(sinks)
	}
	return sinks, page(local)
}

// ReadPrompt keeps the prompt query of (layer, KV head) at qpos for the
// window statistics.
func (a *ActQKV) ReadPrompt(v *kv.SelectView, q []float32, g int, qpos int32) {
	a.init(v)
	l := a.layers[v.Layer]
	gd := g * v.Stream.Dim()
	W := int32(a.Window)
	l.mu.Lock()
	st := &l.streams[v.KVHead]
	st.stream, st.gd, st.d, st.prompt, st.rope = v.Stream, gd, v.Stream.Dim(), v.Prompt, v.RoPE
	if l.dim == 0 {
		l.dim = v.KVHeads * gd
		l.mean, l.vari = make([]float64, l.dim), make([]float64, l.dim)
	}
	if qpos < l.floor {
		// A position already weighed (a batch that overwrites held
		// positions): it joins no window.
		l.mu.Unlock()
		return
	}
	if len(l.have) == 0 {
		l.start = qpos - qpos%W
	}
	if qpos < l.start {
		// Workers run a batch's tokens in any order: the rows before
		// the first one seen come in front.
		k := int(l.start - (qpos - qpos%W))
		l.have = append(make([]bool, k, k+len(l.have)), l.have...)
		l.rows = append(make([]float32, k*l.dim, k*l.dim+len(l.rows)), l.rows...)
		l.start -= int32(k)
	}
	i := int(qpos - l.start)
	if i >= len(l.have) {
		n := i + 1
		l.have = append(l.have, make([]bool, n-len(l.have))...)
		l.rows = append(l.rows, make([]float32, n*l.dim-len(l.rows))...)
	}
	row := l.rows[i*l.dim+v.KVHead*gd : i*l.dim+(v.KVHead+1)*gd]
	copy(row, q[:gd])
	a.frame(v, row, g, int32(a.Local)-qpos)
	l.have[i] = true
	l.pending.Store(true)
	l.mu.Unlock()
}

// EndPrompt weighs every whole window of prompt queries gathered so far, in
// order, and the last partial one when the prompt is over (otherwise the
// first decode step does).
func (a *ActQKV) EndPrompt(last bool) {
	if !a.ready.Load() {
		return
	}
	for li, l := range a.layers {
		l.mu.Lock()
		a.flush(li, l, last)
		l.mu.Unlock()
	}
}

// flush weighs the windows of layer l: the whole ones, and with partial
// also the last one (the prompt has ended). l.mu is held.
func (a *ActQKV) flush(li int, l *actLayer, partial bool) {
	W := a.Window
	for len(l.have) >= W || (partial && len(l.have) > 0) {
		n := min(W, len(l.have))
		a.window(li, l, n)
		l.have = l.have[:copy(l.have, l.have[n:])]
		l.rows = l.rows[:copy(l.rows, l.rows[n*l.dim:])]
		l.start += int32(n)
		l.floor = l.start
	}
	if partial || len(l.have) == 0 {
		// Nothing waits (or the prompt is over): give back the rows'
		// memory, about a batch of every head's queries.
		l.rows, l.have = nil, nil
	}
	l.pending.Store(len(l.have) > 0)
}

// window weighs the first n rows of layer l: the running statistics take
// them in, each row gets its Activation Bias, and the probe of every KV
// head scores the pages before the window's local reach; the normalized
// entropy of the scores joins the head's cut-off history.
func (a *ActQKV) window(li int, l *actLayer, n int) {
	D := l.dim
	var rows []float32
	var tokens []int // the rows seen (a prompt starting mid-window has gaps)
	for t := 0; t < n; t++ {
		if l.have[t] {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		return
	}
	rows = l.rows
	l.n = mergeStats(l.n, l.mean, l.vari, rows, tokens, D, float64(1000*a.Window))
	w := make([]float64, len(tokens))
	if a.Activation {
		activationWeights(w, rows, tokens, D, l.mean, l.vari)
	} else {
		for i := range w {
			w[i] = 1 / float64(len(tokens))
		}
	}
	// Per KV head: the probe of each query head, and the entropy of the
	// scores of the pages before the window's local reach.
	first := l.start
	for h := range l.streams {
		st := &l.streams[h]
		s := st.stream
		if s == nil || st.gd == 0 {
			continue
		}
		g, d := st.gd/st.d, st.d
		probe := make([]float64, st.gd)
		for i, t := range tokens {
			for c, x := range rows[t*D+h*st.gd : t*D+(h+1)*st.gd] {
				probe[c] += w[i] * float64(x)
			}
		}
		unit := make([]float32, g*d)
		for j := 0; j < g; j++ {
			p := probe[j*d : (j+1)*d]
			var norm float64
			for _, x := range p {
				norm += x * x
			}
			if norm == 0 {
				continue
			}
			inv := 1 / math.Sqrt(norm)
			for c, x := range p {
				unit[j*d+c] = float32(x * inv)
			}
		}
		budget := resolve(a.Budget, &kv.SelectView{Stream: s, Prompt: st.prompt})
		sinks, local := a.scaled(budget)
		// Candidates: pages after the sinks whose last token is at least
		// local positions before the window.
		head, _ := ends(s, sinks, 0, s.PagedLen())
		pos := s.Positions()
		var scores []float32
		rep := make([]float32, g*d)
		idx := 0
		for p := 0; p < s.Pages(); p++ {
			n := s.PageLen(p)
			if p >= head && pos[idx+n-1] < first-int32(local) {
				// Not kept: later prompt queries still add local
				// attention to the page.
				represent(&kv.SelectView{Layer: li, Stream: s, RoPE: st.rope}, p, idx, g, a.Repr, rep, nil)
				scores = append(scores, kernel.Dot(unit, rep))
			}
			idx += n
		}
		if len(scores) > 1 {
			st.push(entropy(scores))
		}
	}
}

// mergeStats merges the mean and population variance of the rows tokens
// (of D values each) into the running mean and vari of n tokens (Chan et
// al.'s pairwise update), and returns the new count, capped at most.
func mergeStats(n float64, mean, vari []float64, rows []float32, tokens []int, D int, most float64) float64 {
	m := float64(len(tokens))
	wm, wv := make([]float64, D), make([]float64, D)
	for _, t := range tokens {
		for d, x := range rows[t*D : (t+1)*D] {
			wm[d] += float64(x)
		}
	}
	for d := range wm {
		wm[d] /= m
	}
	for _, t := range tokens {
		for d, x := range rows[t*D : (t+1)*D] {
			e := float64(x) - wm[d]
			wv[d] += e * e
		}
	}
	for d := range wv {
		wv[d] /= m
	}
	if n == 0 {
		copy(mean, wm)
		copy(vari, wv)
		return m
	}
	tot := n + m
	for d := range mean {
		delta := wm[d] - mean[d]
		vari[d] = (n*vari[d] + m*wv[d] + delta*delta*n*m/tot) / tot
		mean[d] += delta * m / tot
	}
	return min(tot, most)
}

// activationWeights writes into w the window weights of the rows tokens:
// AB_t = mean over d of (q_td − μ_d)² / (σ²_d + mean(σ²)/100), w_t = AB_t /
// Σ AB (1/n when every AB is 0).
func activationWeights(w []float64, rows []float32, tokens []int, D int, mean, vari []float64) {
	var mv float64
	for _, x := range vari {
		mv += x
	}
	eps := mv / float64(D) / 100
	var sum float64
	for i, t := range tokens {
		var ab float64
		for d, x := range rows[t*D : (t+1)*D] {
			if den := vari[d] + eps; den > 0 {
				e := float64(x) - mean[d]
				ab += e * e / den
			}
		}
		w[i] = ab / float64(D)
		sum += w[i]
	}
	for i := range w {
		if sum > 0 {
			w[i] /= sum
		} else {
			w[i] = 1 / float64(len(tokens))
		}
	}
}

// representative returns the unit representative keys of page p, one per
// query head of the group (g·d values, F16), whose first token is the
// stream's token idx, computing them when the page is new or has changed.
func (st *actStream) representative(v *kv.SelectView, p, idx, g, repr int, sc *actScratch) []uint16 {
	s := v.Stream
	d := s.Dim()
	w := g * d
	pos := s.Positions()
	n := s.PageLen(p)
	key := pageKey{pos[idx], pos[idx+n-1], int32(n)}
	if p < len(st.repKey) && st.repKey[p] == key && len(st.rep) >= (p+1)*w {
		return st.rep[p*w : (p+1)*w]
	}
	if len(st.repKey) <= p {
		grow := p + 1 - len(st.repKey)
		st.repKey = append(st.repKey, make([]pageKey, grow)...)
		st.rep = append(st.rep, make([]uint16, grow*w)...)
	}
	st.repKey[p] = key
	rep := st.rep[p*w : (p+1)*w]
	represent(v, p, idx, g, repr, sc.rep[:w], sc)
	kernel.ToF16(rep, sc.rep[:w])
	return rep
}

// represent writes into rep (g·d values) the unit representative key of
// each query head of the group for page p, whose first token is the
// stream's token idx: the mean of the keys of its repr tokens of most local
// attention from that head.
func represent(v *kv.SelectView, p, idx, g, repr int, rep []float32, sc *actScratch) {
	s := v.Stream
	d := s.Dim()
	pos := s.Positions()
	n := s.PageLen(p)
	clear(rep)
	var x, score []float32
	var top []int32
	if sc != nil {
		x, score, top = sc.key, sc.loc, sc.top[:0]
	} else {
		x, score = make([]float32, d), make([]float32, kv.PageTokens)
	}
	loc, lg := s.LocalAttention()
	if lg != g {
		loc = nil
	}
	for j := 0; j < g; j++ {
		// Head j's repr tokens of most local attention (ties to the
		// later token); none recorded: every token of the page.
		seen := false
		for t := 0; t < n && loc != nil; t++ {
			score[t] = loc[(idx+t)*g+j]
			seen = seen || score[t] > 0
		}
		top = top[:0]
		for t := 0; t < n; t++ {
			top = append(top, int32(t))
		}
		if seen {
			topK(score[:n], top, repr)
			top = top[:min(repr, n)]
		}
		rj := rep[j*d : (j+1)*d]
		for _, t := range top {
			s.PageKey(p, int(t), x)
			if v.RoPE != nil {
				// Every key at position 0 (InfLLM's global blocks).
				v.RoPE.Rotate(v.Layer, x[:d], -pos[idx+int(t)])
			}
			for c, y := range x[:d] {
				rj[c] += y
			}
		}
		var norm float64
		for _, v := range rj {
			norm += float64(v) * float64(v)
		}
		if norm > 0 {
			inv := float32(1 / math.Sqrt(norm))
			for c := range rj {
				rj[c] *= inv
			}
		}
	}
	if sc != nil {
		sc.top = top[:0]
	}
}

// frame turns the g query heads x (after RoPE at their position) by delta
// positions, into the frame where every page's representative sits at
// position 0 and the query Local positions after it (InfLLM gives
// retrieved blocks one shared position this way); nothing without RoPE.
func (a *ActQKV) frame(v *kv.SelectView, x []float32, g int, delta int32) {
	if v.RoPE == nil {
		return
	}
	d := len(x) / g
	for j := 0; j < g; j++ {
		v.RoPE.Rotate(v.Layer, x[j*d:(j+1)*d], delta)
	}
}

// share is how many pages layer reads for kvHead when remaining are left
// of the step's budget: ω·remaining, ω = E_layer / Σ_{m >= layer} E_m (1/(L −
// layer) until every layer from this one on has an entropy), clamped to [1,
// 2·topk].
func (a *ActQKV) share(layer, kvHead, remaining, topk int) int {
	w := 1 / float64(len(a.layers)-layer)
	var rest float64
	all := true
	for m := layer; m < len(a.layers); m++ {
		e := &a.layers[m].streams[kvHead]
		if e.entN == 0 {
			all = false
			break
		}
		rest += e.mean()
	}
	if all && rest > 0 {
		w = a.layers[layer].streams[kvHead].mean() / rest
	}
	k := int(math.Round(w * float64(remaining)))
	return min(max(k, 1), 2*topk)
}

// push adds a normalized entropy to the history.
func (st *actStream) push(h float32) {
	if st.entN == actHistory {
		st.entSum -= float64(st.ent[st.entAt])
	} else {
		st.entN++
	}
	st.ent[st.entAt] = h
	st.entSum += float64(h)
	st.entAt = (st.entAt + 1) % actHistory
}

// mean is E, the mean of the history (0 when empty).
func (st *actStream) mean() float64 {
	if st.entN == 0 {
		return 0
	}
	return st.entSum / float64(st.entN)
}

// entropy is the normalized entropy of softmax(scores), in [0, 1].
func entropy(scores []float32) float32 {
	m := float32(math.Inf(-1))
	for _, s := range scores {
		m = max(m, s)
	}
	var z float64
	for _, s := range scores {
		z += math.Exp(float64(s - m))
	}
	var h float64
	for _, s := range scores {
		p := math.Exp(float64(s-m)) / z
		if p > 0 {
			h -= p * math.Log(p)
		}
	}
	return float32(h / math.Log(float64(len(scores))))
}

// Select reads the sinks, the local window and the pages of the best
// representatives, as many as this layer's share of the step's budget.
func (a *ActQKV) Select(v *kv.SelectView, q []float32, g int, qpos int32, read []bool) {
	a.init(v)
	s := v.Stream
	l := a.layers[v.Layer]
	if l.pending.Load() {
		// The prompt ended within a window: weigh what is left.
		l.mu.Lock()
		if l.pending.Load() {
			a.flush(v.Layer, l, true)
		}
		l.mu.Unlock()
	}
	if v.Layer < a.Dense {
		a.count.add(s.Len(), s.Len())
		return
	}
	budget := resolve(a.Budget, v)
	if budget >= s.Len() {
		a.count.add(s.Len(), s.Len())
		return
	}
	sinks, local := a.scaled(budget)
	paged := s.PagedLen()
	head, tail := ends(s, sinks, local, paged)
	spent := s.Len() - paged
	for i := range read {
		if i >= head && i < tail {
			read[i] = false
		} else {
			spent += s.PageLen(i)
		}
	}
	topk := (budget - spent) / kv.PageTokens
	hs := &a.heads[v.KVHead]
	if v.Layer <= hs.last {
		// A new decode step: the budget of every selecting layer.
		hs.remaining = max(0, topk) * (v.Layers - a.Dense)
	}
	hs.last = v.Layer
	cands := tail - head
	if topk <= 0 || cands <= 0 {
		a.count.add(spent, s.Len())
		return
	}
	st := &l.streams[v.KVHead]
	d := s.Dim()
	sc := a.scratch(g*d, d, cands)
	// The group's unit queries, so that a dot product with the unit
	// representatives is Σ_h cos(q_h, K̄_h).
	copy(sc.probe, q[:g*d])
	a.frame(v, sc.probe, g, int32(a.Local)-qpos)
	for j := 0; j < g; j++ {
		pj := sc.probe[j*d : (j+1)*d]
		nq := kernel.Dot(pj, pj)
		if nq == 0 {
			continue
		}
		kernel.Scale(pj, float32(1/math.Sqrt(float64(nq))))
	}
	idx := 0
	for p := 0; p < head; p++ {
		idx += s.PageLen(p)
	}
	for p := head; p < tail; p++ {
		rep := st.representative(v, p, idx, g, a.Repr, sc)
		sc.score[p-head] = kernel.DotF16(sc.probe, rep)
		sc.idx = append(sc.idx, int32(p-head))
		idx += s.PageLen(p)
	}
	// The cut-off: this layer's share of what the step has left.
	if cands > 1 {
		st.push(entropy(sc.score))
	}
	k := min(a.share(v.Layer, v.KVHead, hs.remaining, topk), cands)
	hs.remaining = max(0, hs.remaining-k)
	topK(sc.score, sc.idx, k)
	for _, i := range sc.idx[:k] {
		read[head+int(i)] = true
		spent += s.PageLen(head + int(i))
	}
	a.pool.Put(sc)
	a.count.add(spent, s.Len())
}
