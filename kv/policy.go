package kv

// An Evictor decides which tokens a cache keeps. It sees one layer at a
// time, with every KV head's stream of that layer, so that methods that
// choose per head (H2O, SnapKV) and per layer (TOVA, KVCrush) fit.
type Evictor interface {
	// Name identifies the method in reports.
	Name() string
	// Window is how many of the prompt's last queries' attention
	// AfterPrefill needs in Stream.Observed: 0 for none, -1 for all of them.
	Window() int
	// StepStats reports whether AfterStep needs the decode step's attention
	// probabilities in Stream.Observed.
	StepStats() bool
	// AfterPrefill selects the tokens to keep once the whole prompt is in
	// the cache, calling Stream.Keep.
	AfterPrefill(l *LayerView, promptLen int)
	// AfterStep runs after each decode step and may delete tokens. An
	// evictor whose Bound is Rolling also runs it after each batch of the
	// prompt.
	AfterStep(l *LayerView)
	// Bound declares how many tokens the evictor lets a stream hold, which
	// admission, eval and bench read instead of knowing the method.
	Bound() Bound
}

// Bound is an evictor's promise about the memory of the streams it acts on.
type Bound struct {
	// Budget is the most tokens a stream holds once the prompt is done
	// (before generated tokens are added, unless Steady); the zero Budget
	// promises nothing.
	Budget Budget
	// Steady: the evictor evicts at every decode step, so a stream never
	// holds more than Budget tokens while decoding either.
	Steady bool
	// Rolling: the evictor needs no attention statistics of the prompt
	// and evicts as the prompt arrives (AfterStep after each batch), so the
	// prompt is never staged whole: a stream holds at most Budget tokens
	// plus one batch of the prompt. It implies Steady.
	Rolling bool
}

// LayerView is what an Evictor sees of one layer.
type LayerView struct {
	Layer, Layers int
	Streams       []*Stream
	// Prompt is the prompt length, to which fractional budgets refer.
	Prompt int
}

// A Selector chooses, at each decode step, which pages of a stream
// attention reads (Quest, ActQKV). It deletes nothing: a page it skips now
// may be read at the next step. Select runs inside attention, in parallel
// for different streams, so it must only write its own per-stream state.
type Selector interface {
	// Name identifies the method in reports.
	Name() string
	// Summaries reports whether the selector reads page summaries
	// (PageBounds); the cache keeps them only when asked.
	Summaries() bool
	// Select sets read[i] to whether page i of the stream of (layer,
	// kvHead) is read by the g query heads q (after RoPE) at position qpos.
	// read arrives all true, one entry per sealed page; the tokens not yet
	// sealed into a page (the tail) are always read.
	Select(v *SelectView, q []float32, g int, qpos int32, read []bool)
}

// A PromptReader is a Selector that also learns from the prompt as it is
// prefilled (ActQKV keeps running statistics of the prompt's queries and
// represents each page by the keys that received the most local
// attention). The prompt's attention itself stays dense.
type PromptReader interface {
	Selector
	// LocalWindow is how many positions after a token the prompt's queries
	// reach whose attention to it the cache sums, per query head of the
	// group, into Stream.LocalAttention (0: none).
	LocalWindow() int
	// ReadPrompt sees each query of a batch the selector does not choose
	// for (the prompt), after its attention. It runs inside attention, in
	// parallel for different streams and tokens, as Select does.
	ReadPrompt(v *SelectView, q []float32, g int, qpos int32)
	// EndPrompt runs when such a batch ends (Cache.End), after every
	// layer's attention: what ReadPrompt gathered may be used in order.
	// last is set when the batch ended the prompt announced by
	// BeginPrefill.
	EndPrompt(last bool)
}

// A SizedSelector holds memory of its own per sequence (ActQKV's page
// representatives), which the cache counts in Bytes and OwnedBytes.
type SizedSelector interface {
	Selector
	Bytes() int64
}

// A CheckedSelector refuses settings that cannot work in a cache of the
// given capacity (a read budget larger than the whole context); New
// returns its error.
type CheckedSelector interface {
	Selector
	Check(capacity int) error
}

// A ForkingSelector keeps state of its own sequence: Cache.Fork gives the
// fork a copy (Fork), so that two sequences never share it.
type ForkingSelector interface {
	Selector
	Fork() Selector
}

// SelectView is what a Selector sees of one stream at one decode step.
type SelectView struct {
	Layer, Layers int
	KVHead        int
	Stream        *Stream
	// KVHeads is the number of KV heads of every layer.
	KVHeads int
	// RoPE is the model's rotary encoding (Config.RoPE; nil when none was
	// handed over), to compare keys of different positions in one frame.
	RoPE Rotary
	// Prompt is the length of the prompt announced by BeginPrefill (0 when
	// none was), to which a selector's fractional read budget refers.
	Prompt int
}
