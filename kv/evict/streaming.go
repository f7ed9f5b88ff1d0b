package evict

import "github.com/kvgo/kvgo/kv"

// Streaming is StreamingLLM (Xiao et al. 2023, arXiv:2309.17453, §3.2
// "Rolling KV cache with attention sinks"): window attention fails once
// the first tokens leave the cache because they act as attention sinks, so
// the cache keeps the first Sinks tokens and a rolling window of the most
// recent ones, Budget in all.
//
// Choices the paper leaves open or that differ here:
//   - It acts after prefill (the prompt is cut to sinks + its last tokens)
//     and after every decode step; it needs no attention statistics.
//   - Sinks are the first tokens the stream holds, i.e. the prompt's first
//     tokens (the paper's 4 by default).
//   - If Sinks >= Budget the sinks shrink to Budget-1 so that at least the
//     newest token stays: a window without its newest token is no window.
//   - The paper re-indexes positions inside the cache (§3.2); kvgo keeps
//     the original positions (keys are cached after RoPE), so this is the
//     selection policy without the re-rotation.
type Streaming struct {
	Budget kv.Budget
	Sinks  int
	sc     scratch
}

func (*Streaming) Name() string    { return "streaming" }
func (*Streaming) Window() int     { return 0 }
func (*Streaming) StepStats() bool { return false }

func (e *Streaming) AfterPrefill(l *kv.LayerView, _ int) { e.apply(l) }
func (e *Streaming) AfterStep(l *kv.LayerView)           { e.apply(l) }

func (e *Streaming) apply(l *kv.LayerView) {
	b, ok := resolve(e.Budget, l.Prompt)
	if !ok {
		return
	}
	sinks := min(e.Sinks, b-1)
	for _, s := range l.Streams {
		n := s.Len()
		if n <= b {
			continue
		}
		m := e.sc.maskOf(n, false)
		for i := 0; i < sinks; i++ {
			m[i] = true
		}
		for i := n - (b - sinks); i < n; i++ {
			m[i] = true
		}
		s.Keep(m)
	}
}

// Bound: the budget, kept at every step and while the prompt arrives.
func (e *Streaming) Bound() kv.Bound { return kv.Bound{Budget: e.Budget, Steady: true} }
