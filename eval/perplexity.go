// Package eval measures models and KV-cache methods: task accuracy and
// cost (Run), fidelity against the full cache (CompareFidelity) and
// perplexity. A Job is one `kvgo eval`, from its options to the written
// report.
package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
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
//
// With a recipe that evicts, the first ctx/2+1 tokens of a chunk are the
// context: they are prefilled and compressed by the recipe, and the rest
// is decoded one token at a time through the compressed cache, so the
// score reflects what the recipe kept. Without eviction the chunk runs as
// one batch, which gives the same numbers faster.
func Perplexity(ctx context.Context, e *engine.Engine, tokens []int, n int, r *recipe.Recipe, onChunk func(chunk int, ppl float64)) (PerplexityResult, error) {
	var res PerplexityResult
	if _, err := e.ContextFor(n); err != nil {
		return res, err
	}
	if n < 4 {
		return res, fmt.Errorf("perplexity context %d is too small (need at least 4 tokens)", n)
	}
	res.Chunks = len(tokens) / n
	if res.Chunks == 0 {
		return res, fmt.Errorf("the text has %d tokens, fewer than one chunk of %d (use a longer text or a smaller --ctx)", len(tokens), n)
	}
	split := r != nil && r.Evicts()
	state := e.Model.NewState(e.Pool, min(n, 512), n)
	chunk := make([]int, n)
	var nll, nll2 float64
	score := func(j int, logits []float32) error {
		v := -LogSoftmaxAt(logits, chunk[j+1])
		nll += v
		nll2 += v * v
		res.Tokens++
		return nil
	}
	for c := 0; c < res.Chunks; c++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		copy(chunk, tokens[c*n:(c+1)*n])
		if e.Tok.AddBOS() {
			chunk[0] = e.Tok.BOS()
		}
		var err error
		if !split {
			var cache *kv.Cache
			if cache, err = e.NewCache(r, n); err != nil {
				return res, err
			}
			err = state.ForwardEach(cache, chunk[:n-1], 0, n/2, score)
		} else {
			err = scoreSplit(ctx, e, r, chunk, score)
		}
		if err != nil {
			return res, fmt.Errorf("chunk %d: %w", c, err)
		}
		res.Cumulative = append(res.Cumulative, math.Exp(nll/float64(res.Tokens)))
		if onChunk != nil {
			onChunk(c, res.Cumulative[c])
		}
	}
	mean := nll / float64(res.Tokens)
	res.PPL = math.Exp(mean)
	if variance := nll2/float64(res.Tokens) - mean*mean; variance > 0 && res.Tokens > 1 {
		res.StdErr = res.PPL * math.Sqrt(variance/float64(res.Tokens-1))
	}
	return res, nil
}

// scoreSplit prefills chunk[:n/2+1] as the compressed context of a fresh
// engine.Session, then decodes the rest token by token, scoring the same
// positions as the batch path.
func scoreSplit(ctx context.Context, e *engine.Engine, r *recipe.Recipe, chunk []int, score func(int, []float32) error) error {
	n := len(chunk)
	ctxLen := n/2 + 1
	sess, err := e.NewSession(r, n, ctxLen)
	if err != nil {
		return err
	}
	logits, err := sess.Prefill(ctx, chunk[:ctxLen])
	if err != nil {
		return err
	}
	for j := ctxLen - 1; j < n-1; j++ {
		if j >= ctxLen {
			if logits, err = sess.Step(chunk[j], j); err != nil {
				return err
			}
		}
		if err := score(j, logits); err != nil {
			return err
		}
	}
	return nil
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
