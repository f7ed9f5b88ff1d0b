package evict

import "github.com/kvgo/kvgo/kv"

// TOVA is Token Omission Via Attention (Oren et al. 2024, "Transformers
// are Multi-State RNNs", arXiv:2401.06104, §3.3): a transformer with a
// bounded cache is an RNN with a bounded multi-state, and the state to drop
// at each step is the token with the lowest attention from the current
// query. It uses no history of scores and protects no recent or sink
// tokens by rule.
//
// Choices the paper leaves open or that differ here:
//   - Layer-wise, as in the paper's main setting: the score of a token is
//     its attention averaged over all query heads of the layer (here the
//     sum over the layer's streams of the group sums; a sum ranks as the
//     mean does), and the same token leaves every stream of the layer, so
//     the streams of a layer always hold the same tokens.
//   - The prompt is cut to the budget right after prefill by the attention
//     of the last prompt query (Window 1), which is the single-step rule
//     applied once to the whole prompt.
//   - A decode step evicts as many lowest tokens as the layer is over
//     budget (one, in steady state); the newest token may be evicted if it
//     scores lowest, as in the paper's policy.
type TOVA struct {
	Budget kv.Budget
	sc     scratch
}

func (*TOVA) Name() string    { return "tova" }
func (*TOVA) Window() int     { return 1 }
func (*TOVA) StepStats() bool { return true }

func (e *TOVA) AfterPrefill(l *kv.LayerView, _ int) { e.apply(l) }
func (e *TOVA) AfterStep(l *kv.LayerView)           { e.apply(l) }

func (e *TOVA) apply(l *kv.LayerView) {
	b, ok := resolve(e.Budget, l.Prompt)
	if !ok {
		return
	}
	n := sameLength(l)
	if n <= b {
		return
	}
	sc := e.sc.scores(n)
	for _, s := range l.Streams {
		for i, o := range s.Observed() {
			sc[i] += o
		}
	}
	m := e.sc.maskOf(n, false)
	e.sc.keepTop(m, sc, n, b)
	for _, s := range l.Streams {
		s.Keep(m)
	}
}

// Bound: the budget, kept at every decode step.
func (e *TOVA) Bound() kv.Bound { return kv.Bound{Budget: e.Budget, Steady: true} }
