package evict

import "github.com/kvgo/kvgo/kv"

// Streaming is StreamingLLM (Xiao et al. 2023, arXiv:2309.17453, §3.2
// "Rolling KV cache with attention sinks"): window attention fails once
// the first tokens leave the cache because they act as attention sinks, so
// the cache keeps the first Sinks tokens and a rolling window of the most
// recent ones, Budget in all. Its score is recency: the most recent tokens
// rank highest, and the sinks are protected.
//
// Choices the paper leaves open or that differ here:
//   - It needs no attention statistics, so it evicts as the prompt
//     arrives (kv.Bound.Rolling): after every batch of the prompt and every
//     decode step the stream is cut to sinks + its last tokens, and a long
//     prompt is never held whole (at most the budget plus one batch). The
//     queries of a later prompt batch therefore see only what the cache
//     kept, as in the paper's streaming setting; a prompt that fits one
//     batch is cut exactly as it would be after a whole-prompt prefill.
//   - Sinks are the first tokens the stream holds, i.e. the prompt's first
//     tokens (the paper's 4 by default).
//   - If Sinks >= Budget the sinks shrink to Budget-1 so that at least the
//     newest token stays: a window without its newest token is no window.
//   - The paper re-indexes positions inside the cache (§3.2); kvgo keeps
//     the original positions (keys are cached after RoPE), so this is the
//     selection policy without the re-rotation.
type Streaming struct{}

// NewStreaming is StreamingLLM keeping budget tokens of which the first
// sinks, at every step.
func NewStreaming(budget kv.Budget, sinks int) *Ranked {
	return &Ranked{Scorer: Streaming{}, Budget: budget, Sinks: sinks, Steady: true, Rolling: true}
}

func (Streaming) Name() string    { return "streaming" }
func (Streaming) Window() int     { return 0 }
func (Streaming) StepStats() bool { return false }

func (Streaming) byArrival() {}

// Score is the token's index in the stream, which is its order of arrival.
func (Streaming) Score(s *kv.Stream, dst []float32) {
	for i := range dst {
		dst[i] = float32(i)
	}
}
