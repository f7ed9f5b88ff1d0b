// Package eval measures models and KV-cache methods: perplexity now, task
// accuracy, fidelity against the full cache and cost reports later.
package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
)

// PerplexityResult is the outcome of Perplexity.
type PerplexityResult struct {
	PPL    float64
	StdErr float64 // of PPL, as llama-perplexity prints it
	// Cumulative is the running PPL after each chunk.
	Cumulative []float64
	Tokens     int // scored tokens
	Chunks     int
}

// Perplexity follows llama.cpp's llama-perplexity: tokens (already with BOS
// when the model adds one) are cut into floor(len/ctx) non-overlapping
// chunks of ctx tokens; each chunk starts from an empty cache with its
// first token replaced by BOS (when the model adds BOS); the logits at
// positions ctx/2 .. ctx-2 score the token that follows each of them.
func Perplexity(ctx context.Context, e *engine.Engine, tokens []int, n int, cacheType kv.DType, onChunk func(chunk int, ppl float64)) (PerplexityResult, error) {
	var r PerplexityResult
	if _, err := e.ContextFor(n); err != nil {
		return r, err
	}
	if n < 4 {
		return r, fmt.Errorf("perplexity context %d is too small (need at least 4 tokens)", n)
	}
	r.Chunks = len(tokens) / n
	if r.Chunks == 0 {
		return r, fmt.Errorf("the text has %d tokens, fewer than one chunk of %d (use a longer text or a smaller --ctx)", len(tokens), n)
	}
	state := e.Model.NewState(e.Pool, min(n, 512), n)
	chunk := make([]int, n)
	var nll, nll2 float64
	for c := 0; c < r.Chunks; c++ {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		copy(chunk, tokens[c*n:(c+1)*n])
		if e.Tok.AddBOS() {
			chunk[0] = e.Tok.BOS()
		}
		cache, err := kv.New(e.Model.CacheShape(), cacheType, n)
		if err != nil {
			return r, err
		}
		err = state.ForwardEach(cache, chunk[:n-1], 0, n/2, func(j int, logits []float32) error {
			v := -LogSoftmaxAt(logits, chunk[j+1])
			nll += v
			nll2 += v * v
			r.Tokens++
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("chunk %d: %w", c, err)
		}
		r.Cumulative = append(r.Cumulative, math.Exp(nll/float64(r.Tokens)))
		if onChunk != nil {
			onChunk(c, r.Cumulative[c])
		}
	}
	mean := nll / float64(r.Tokens)
	r.PPL = math.Exp(mean)
	if variance := nll2/float64(r.Tokens) - mean*mean; variance > 0 && r.Tokens > 1 {
		r.StdErr = r.PPL * math.Sqrt(variance/float64(r.Tokens-1))
	}
	return r, nil
}

// LogSoftmaxAt returns log(softmax(logits)[i]), computed stably in float64.
func LogSoftmaxAt(logits []float32, i int) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - m)
	}
	return float64(logits[i]) - m - math.Log(sum)
}
