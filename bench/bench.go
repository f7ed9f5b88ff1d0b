// Package bench measures prompt processing and generation speed the way
// llama.cpp's llama-bench does, for any KV recipe, at chosen context depths.
package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv/recipe"
)

// Config selects what to measure.
type Config struct {
	Prompt  int   // tokens per prompt-processing test (pp), 0 = skip
	Gen     int   // tokens per generation test (tg), 0 = skip
	Depths  []int // context already in the cache before each test
	Reps    int   // repetitions per test
	Batch   int   // prompt tokens per forward pass
	Recipes []*recipe.Recipe

	// Progress, if set, is told about each finished measurement.
	Progress func(r Result)
	// Measuring, if set, is called with true before each test's timed
	// repetitions and with false after them, so that a caller can profile
	// the measurements alone and not the filling of the cache to its
	// depth (which, at depth 8192, takes far longer than the tests).
	Measuring func(on bool)
}

// Result is one (recipe, test, depth) measurement.
type Result struct {
	Recipe    string    `json:"recipe"`
	Test      string    `json:"test"` // "pp512", "tg128", ...
	Depth     int       `json:"depth"`
	Tokens    int       `json:"tokens"`
	Reps      int       `json:"reps"`
	TokPerSec float64   `json:"tokens_per_second"`
	StdDev    float64   `json:"stddev"`
	Samples   []float64 `json:"samples"`
	// KVBytes is the cache size after the test; FullKVBytes is the full F16
	// cache for the same tokens, the baseline of Ratio.
	KVBytes     int64   `json:"kv_bytes"`
	FullKVBytes int64   `json:"kv_bytes_full_f16"`
	Ratio       float64 `json:"kv_ratio"`
	// BoundTokPerSec is, for tg tests when the memory bandwidth was
	// measured, bandwidth / (weight bytes + KV bytes) per token: the speed
	// no engine can beat on this machine.
	BoundTokPerSec float64 `json:"bound_tokens_per_second,omitempty"`
}

// Run measures every recipe at every depth. Tokens are random ids, as in
// llama-bench: speed does not depend on them.
func Run(ctx context.Context, e *engine.Engine, cfg Config) ([]Result, error) {
	if cfg.Reps < 1 {
		return nil, fmt.Errorf("bench: repetitions %d must be at least 1", cfg.Reps)
	}
	if cfg.Batch < 1 {
		cfg.Batch = 512
	}
	var out []Result
	for _, r := range cfg.Recipes {
		for _, depth := range cfg.Depths {
			need := depth + max(cfg.Prompt, cfg.Gen)
			if need > e.Model.ContextLen {
				return out, fmt.Errorf("bench: depth %d + %d tokens exceeds the model's context of %d", depth, max(cfg.Prompt, cfg.Gen), e.Model.ContextLen)
			}
			res, err := measure(ctx, e, r, depth, cfg)
			out = append(out, res...)
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

func measure(ctx context.Context, e *engine.Engine, r *recipe.Recipe, depth int, cfg Config) ([]Result, error) {
	n := depth + max(cfg.Prompt, cfg.Gen)
	rng := rand.New(rand.NewPCG(uint64(depth), 7))
	randTokens := func(k int) []int {
		t := make([]int, k)
		for i := range t {
			t[i] = rng.IntN(e.Model.Vocab)
		}
		return t
	}
	cache, err := e.NewCache(r, n)
	if err != nil {
		return nil, err
	}
	state := e.Model.NewState(e.Pool, cfg.Batch, n)
	// The depth is the prompt an evicting recipe compresses.
	cache.BeginPrefill(max(depth, 1))
	if depth > 0 {
		if _, err := state.Forward(cache, randTokens(depth), 0); err != nil {
			return nil, err
		}
	}
	cache.EndPrefill()
	var results []Result
	run := func(test string, tokens int, fn func() error) error {
		res := Result{Recipe: r.String(), Test: test, Depth: depth, Tokens: tokens, Reps: cfg.Reps}
		if cfg.Measuring != nil {
			cfg.Measuring(true)
			defer cfg.Measuring(false)
		}
		for rep := 0; rep < cfg.Reps; rep++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			t0 := time.Now()
			if err := fn(); err != nil {
				return err
			}
			res.Samples = append(res.Samples, float64(tokens)/time.Since(t0).Seconds())
			res.KVBytes = cache.Bytes()
			res.FullKVBytes = e.FullCacheBytes(cache.NextPos())
			cache.Truncate(depth)
		}
		res.TokPerSec, res.StdDev = meanStd(res.Samples)
		res.Ratio = float64(res.KVBytes) / float64(max(res.FullKVBytes, 1))

		results = append(results, res)
		if cfg.Progress != nil {
			cfg.Progress(res)
		}
		return nil
	}
	if cfg.Prompt > 0 {
		toks := randTokens(cfg.Prompt)
		err := run(fmt.Sprintf("pp%d", cfg.Prompt), cfg.Prompt, func() error {
			_, err := state.Forward(cache, toks, depth)
			return err
		})
		if err != nil {
			return results, err
		}
	}
	if cfg.Gen > 0 {
		toks := randTokens(cfg.Gen)
		err := run(fmt.Sprintf("tg%d", cfg.Gen), cfg.Gen, func() error {
			for i, t := range toks {
				if _, err := state.Forward(cache, []int{t}, depth+i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// SetBounds fills BoundTokPerSec of the tg results from a measured memory
// bandwidth (bytes/s) and the weight bytes one decode step reads.
func SetBounds(results []Result, membw float64, weightBytes int64) {
	for i := range results {
		if len(results[i].Test) > 2 && results[i].Test[:2] == "tg" {
			results[i].BoundTokPerSec = membw / float64(weightBytes+results[i].KVBytes)
		}
	}
}

func meanStd(x []float64) (float64, float64) {
	var s float64
	for _, v := range x {
		s += v
	}
	m := s / float64(len(x))
	if len(x) < 2 {
		return m, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	return m, math.Sqrt(ss / float64(len(x)-1))
}
