package evict

import "github.com/kvgo/kvgo/kv"

// A Scorer is an eviction method that ranks tokens: all it writes is a
// score per token, from the stream's attention statistics or its keys,
// and which statistics it reads. Everything else an evictor does (the
// budget, the protected tokens, pooling, per-head or per-layer top-k,
// when to evict) is Ranked's, written once, as kvpress's ScorerPress owns
// the budget and the pruning and a press writes only score().
type Scorer interface {
	// Name identifies the method in reports.
	Name() string
	// Window and StepStats are the attention statistics Score reads in
	// Stream.Observed, as kv.Evictor declares them: the last Window prompt
	// queries' after prefill (-1 all of them, 0 none), and each decode
	// step's when StepStats.
	Window() int
	StepStats() bool
	// Score writes into dst (one entry per token of s, len(dst) ==
	// s.Len()) how much each token is worth keeping: the higher, the
	// more.
	Score(s *kv.Stream, dst []float32)
}

// An Accumulator is a Scorer whose score is a running total kept in
// Stream.Acc (H2O's accumulated attention). Ranked calls Accumulate on
// every stream at every hook, before anything is selected and whether or
// not the hook evicts, so that no statistics are lost.
type Accumulator interface {
	Accumulate(s *kv.Stream)
}

// A Spread gives the layers different budgets around the mean (PyramidKV).
type Spread interface {
	// Share is how many tokens the streams of the given layer select when
	// the layers select mean on average and each stream has avail tokens
	// to select from (avail > mean).
	Share(mean, avail, layer, layers int) int
}

// Ranked is the evictor of every Scorer: the selection machinery that
// StreamingLLM, H2O, TOVA, SnapKV, PyramidKV and KNorm share, each of them
// declaring only its score and the settings below. KVCrush wraps it.
//
// A hook (AfterPrefill, and AfterStep when Steady) does, per layer:
//
//  1. An Accumulator adds the hook's statistics to every stream's Acc.
//  2. The budget is resolved: a token count, or a fraction of
//     LayerView.Prompt; with no prompt announced (Prompt == 0) a
//     fractional budget cannot be resolved and the hook keeps everything
//     until one is.
//  3. A stream of n tokens over its budget b keeps its first Sinks tokens
//     (at most b-1, so that the newest token can stay) and a protected
//     tail of its last tokens: the scorer's observation window when
//     KeepWindow (halved to b/2, at least one token, when it does not fit
//     the budget), else Recent × b (rounded). Of the tokens between them
//     it keeps the top b - sinks - tail by score, after pooling the scores
//     over those tokens when Kernel > 1; Spread moves that number up or
//     down by layer.
//  4. Scope: per KV head, each stream ranks and keeps its own tokens; with
//     Layer, the scores of the layer's streams are summed (a sum ranks as
//     the mean over the layer's heads does), and the same tokens leave
//     every stream, so the streams of a layer stay aligned token for token.
//
// Conventions:
//
//   - Budgets are per (layer, KV head) stream: after a hook that acts, each
//     stream holds at most its budget of tokens (its layer's, with Spread),
//     and at least one.
//   - Ranking ties are broken towards the more recent token (larger index
//     in the stream), so every selection is deterministic.
//   - Selections run in expected O(T) (quickselect, or one scan when a
//     decode step evicts a single token), and the evictor reuses its own
//     scratch between calls, so the per-step hooks do not allocate once the
//     scratch has grown to the cache's size (Score must not allocate
//     either).
type Ranked struct {
	Scorer Scorer
	Budget kv.Budget
	// Layer ranks the layer's streams together (summed scores; the same
	// tokens leave every stream) instead of each stream on its own.
	Layer bool
	// Kernel > 1 pools the scores with a centred 1-D window of that odd
	// size before ranking, clipped at the ends of the scored tokens: the
	// maximum, or with Avg the sum divided by Kernel.
	Kernel int
	Avg    bool
	// Sinks is how many first tokens are always kept (attention sinks).
	Sinks int
	// Recent is the fraction of the budget kept as the most recent tokens.
	Recent float64
	// KeepWindow keeps the scorer's observation window (its Window() last
	// tokens) instead of Recent.
	KeepWindow bool
	// Steady evicts after every decode step too; otherwise only after the
	// prompt, and generated tokens are all kept.
	Steady bool
	// Rolling (a Steady scorer that reads no prompt statistics) evicts
	// after every batch of the prompt too, so a long prompt is never held
	// whole (kv.Bound.Rolling).
	Rolling bool
	// Spread, when set, gives each layer its own budget around Budget.
	Spread Spread

	sc scratch
}

func (r *Ranked) Name() string    { return r.Scorer.Name() }
func (r *Ranked) Window() int     { return r.Scorer.Window() }
func (r *Ranked) StepStats() bool { return r.Scorer.StepStats() }

func (r *Ranked) AfterPrefill(l *kv.LayerView, _ int) { r.apply(l) }

func (r *Ranked) AfterStep(l *kv.LayerView) {
	if r.Steady {
		r.apply(l)
	}
}

// Bound: the budget after the prompt, and at every decode step when
// Steady. With Spread the budget is the mean over layers: the lower layers
// exceed it and the upper ones keep less, and the layers' budgets sum to
// Layers × budget, which is what admission reserves for the whole cache.
func (r *Ranked) Bound() kv.Bound {
	return kv.Bound{Budget: r.Budget, Steady: r.Steady || r.Rolling, Rolling: r.Rolling}
}

// Protected (kv.Protector) is the sinks and the protected tail a prompt
// of n tokens keeps after it is cut to the budget: the observation window
// or the recent tokens, and for a scorer that ranks by arrival alone
// (StreamingLLM) every token it keeps besides the sinks. The tail is the
// one at the end of the prompt; a Steady evictor's recent window moves on
// with the generated tokens.
func (r *Ranked) Protected(n int) (first, last int) {
	head, tail, b := r.ruled(n)
	if _, ok := r.Scorer.(byArrival); ok && tail < n {
		tail = b - head
	}
	return head, tail
}

// ruled is the sinks and the tail the budget's rules protect for a prompt
// of n tokens, and the resolved budget (n, 0, n when the prompt fits).
func (r *Ranked) ruled(n int) (head, tail, b int) {
	b, ok := resolve(r.Budget, n)
	if !ok || n <= b {
		return n, 0, n
	}
	head, tail, _ = r.plan(b, n, 0, 1)
	return head, tail, b
}

// byArrival marks a Scorer whose ranking is the tokens' order of arrival,
// so the tokens it keeps are always the most recent ones.
type byArrival interface{ byArrival() }

// check validates the settings a recipe cannot: an odd pooling kernel.
func (r *Ranked) check() error {
	if r.Kernel != 0 {
		return checkKernel(r.Kernel)
	}
	return nil
}

// LayerBudget is how many tokens each stream of the given layer keeps
// when the resolved budget is b and the stream holds n tokens.
func (r *Ranked) LayerBudget(b, n, layer, layers int) int {
	if n <= b {
		return n
	}
	head, tail, sel := r.plan(b, n, layer, layers)
	return min(n, head+tail+sel)
}

// plan splits the budget b of a stream of n > b tokens of the given
// layer: head first and tail last tokens kept as they are, and sel tokens
// selected by score from the n - head - tail between them.
func (r *Ranked) plan(b, n, layer, layers int) (head, tail, sel int) {
	head = min(r.Sinks, b-1)
	if r.KeepWindow {
		tail = snapWindow(r.Scorer.Window(), n, b)
	} else {
		tail = part(r.Recent, b, 0)
	}
	tail = min(tail, b-head)
	sel = b - head - tail
	if r.Spread != nil && layers > 1 && sel > 0 {
		sel = r.Spread.Share(sel, n-head-tail, layer, layers)
	}
	return head, tail, sel
}

// snapWindow is how many of the last tokens a budget of b out of n keeps
// as the observation window.
func snapWindow(win, n, b int) int {
	w := min(win, n)
	if w >= b {
		w = max(1, b/2)
	}
	return w
}

// observe lets an Accumulator add the hook's statistics.
func (r *Ranked) observe(l *kv.LayerView) {
	if a, ok := r.Scorer.(Accumulator); ok {
		for _, s := range l.Streams {
			a.Accumulate(s)
		}
	}
}

// score writes into dst the scores of the stream's tokens [lo, hi),
// pooled over that range when Kernel > 1.
func (r *Ranked) score(s *kv.Stream, lo, hi int, dst []float32) {
	raw := grown(&r.sc.raw, s.Len())
	r.Scorer.Score(s, raw)
	if r.Kernel > 1 {
		pool(dst, raw[lo:hi], r.Kernel, r.Avg)
		return
	}
	copy(dst, raw[lo:hi])
}

func (r *Ranked) apply(l *kv.LayerView) {
	r.observe(l)
	b, ok := resolve(r.Budget, l.Prompt)
	if !ok {
		return
	}
	if r.Layer {
		r.selectLayer(l, b)
		return
	}
	for _, s := range l.Streams {
		n := s.Len()
		if n <= b {
			continue
		}
		head, tail, sel := r.plan(b, n, l.Layer, l.Layers)
		m := n - head - tail
		if sel >= m {
			continue
		}
		sc := grown(&r.sc.score, m)
		r.score(s, head, n-tail, sc)
		mask := r.sc.maskOf(n, true)
		r.sc.keepTop(mask[head:], sc, m, sel)
		s.Keep(mask)
	}
}

// selectLayer ranks the layer's streams by their summed scores and keeps
// the same tokens in each.
func (r *Ranked) selectLayer(l *kv.LayerView, b int) {
	n := sameLength(l)
	if n <= b {
		return
	}
	head, tail, sel := r.plan(b, n, l.Layer, l.Layers)
	m := n - head - tail
	if sel >= m {
		return
	}
	sum := r.sc.scores(m)
	row := grown(&r.sc.row, m)
	for _, s := range l.Streams {
		r.score(s, head, n-tail, row)
		for i, v := range row {
			sum[i] += v
		}
	}
	mask := r.sc.maskOf(n, true)
	r.sc.keepTop(mask[head:], sum, m, sel)
	for _, s := range l.Streams {
		s.Keep(mask)
	}
}

// ranked returns the Ranked evictor e is, if it is one, for wrappers
// that reuse its scores and settings (KVCrush).
func ranked(e kv.Evictor) (*Ranked, bool) {
	r, ok := e.(*Ranked)
	return r, ok && r != nil && r.Scorer != nil
}
