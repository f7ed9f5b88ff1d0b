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
	// the cache (still in full precision), calling Stream.Keep.
	AfterPrefill(l *LayerView, promptLen int)
	// AfterStep runs after each decode step and may delete tokens.
	AfterStep(l *LayerView)
}

// LayerView is what an Evictor sees of one layer.
type LayerView struct {
	Layer, Layers int
	Streams       []*Stream
	// Prompt is the prompt length, to which fractional budgets refer.
	Prompt int
}
