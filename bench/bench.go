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
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/offload"
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

	// Parallel, if set, replaces the tg test by batched decode: for each
	// count k, k sequences with caches filled to the depth decode Gen
	// tokens together, one pass over the weights per step for all of
	// them (measureParallel). Not combined with Interleave.
	Parallel []int

	// Interleave measures the recipes side by side: at each depth every
	// recipe's cache is filled first, then each repetition of a test runs
	// once per recipe in turn, and each result carries its speed relative
	// to the first recipe in the same repetitions (VsFirst). On a shared
	// machine whose speed drifts by several percent over the minutes one
	// recipe takes at depth 8192, that paired ratio is what can be
	// trusted; the cost is every recipe's cache in memory at once.
	Interleave bool

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
	// VsFirst is, when recipes were interleaved, the mean over
	// repetitions of this recipe's speed divided by the first recipe's
	// speed in the same repetition, and VsFirstStdDev its standard
	// deviation; 0 otherwise.
	VsFirst       float64 `json:"vs_first,omitempty"`
	VsFirstStdDev float64 `json:"vs_first_stddev,omitempty"`
	// KVBytes is the cache size after the test; FullKVBytes is the full F16
	// cache for the same tokens, the baseline of Ratio.
	KVBytes     int64   `json:"kv_bytes"`
	FullKVBytes int64   `json:"kv_bytes_full_f16"`
	Ratio       float64 `json:"kv_ratio"`
	// BoundTokPerSec is, for tg tests when the memory bandwidth was
	// measured, bandwidth / (weight bytes + KV bytes) per token: the speed
	// no engine can beat on this machine.
	BoundTokPerSec float64 `json:"bound_tokens_per_second,omitempty"`
	// Seqs is, for batched decode (Config.Parallel), the number of
	// sequences decoding together; TokPerSec then counts all of their
	// tokens and PerSeqTokPerSec is one sequence's share.
	Seqs            int     `json:"seqs,omitempty"`
	PerSeqTokPerSec float64 `json:"per_seq_tokens_per_second,omitempty"`
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
	for _, k := range cfg.Parallel {
		if k < 1 {
			return nil, fmt.Errorf("bench: %d parallel sequences; want at least 1", k)
		}
	}
	if len(cfg.Parallel) > 0 && cfg.Interleave {
		return nil, fmt.Errorf("bench: parallel sequences are not interleaved across recipes")
	}
	if cfg.Prompt == 0 && cfg.Gen == 0 {
		return nil, nil
	}
	for _, depth := range cfg.Depths {
		if err := cfg.CheckDepth(e, depth); err != nil {
			return nil, err
		}
	}
	parallel := cfg
	if len(cfg.Parallel) > 0 {
		cfg.Gen = 0 // decoding is measured by the parallel tests
	}
	groups := [][]*recipe.Recipe{cfg.Recipes}
	if !cfg.Interleave {
		groups = groups[:0]
		for _, r := range cfg.Recipes {
			groups = append(groups, []*recipe.Recipe{r})
		}
	}
	var out []Result
	for _, group := range groups {
		for _, depth := range cfg.Depths {
			if cfg.Prompt == 0 && cfg.Gen == 0 {
				break // only parallel tests
			}
			res, err := measure(ctx, e, group, depth, cfg)
			out = append(out, res...)
			if err != nil {
				return out, err
			}
		}
	}
	if parallel.Gen == 0 {
		return out, nil
	}
	for _, r := range cfg.Recipes {
		for _, depth := range cfg.Depths {
			for _, k := range cfg.Parallel {
				res, err := measureParallel(ctx, e, r, depth, k, parallel)
				if err != nil {
					return out, err
				}
				out = append(out, res)
				if cfg.Progress != nil {
					cfg.Progress(res)
				}
			}
		}
	}
	return out, nil
}

// CheckDepth reports whether every recipe can run cfg's tests at depth:
// the model's context holds each test's cache, and no recipe refuses it (a
// read budget larger than it). Run checks every depth before it measures
// anything, since a late refusal at depth 32k would come after an hour of
// filling caches.
func (cfg Config) CheckDepth(e *engine.Engine, depth int) error {
	// The tests' caches: pp and tg share one of both lengths; batched
	// decode has caches of its own.
	lengths := []int{max(cfg.Prompt, cfg.Gen)}
	if len(cfg.Parallel) > 0 {
		lengths = []int{cfg.Prompt, cfg.Gen}
	}
	for _, tokens := range lengths {
		if tokens == 0 {
			continue
		}
		need := depth + tokens
		if need > e.Model.ContextLen {
			return fmt.Errorf("bench: depth %d + %d tokens exceeds the model's context of %d", depth, tokens, e.Model.ContextLen)
		}
		for _, r := range cfg.Recipes {
			// An empty cache allocates nothing but its streams' headers.
			if _, err := e.NewCache(r, need); err != nil {
				return fmt.Errorf("bench: %s at depth %d (%d tokens): %w", r, depth, need, err)
			}
		}
	}
	return nil
}

// subject is one recipe's cache, filled to the depth.
type subject struct {
	r     *recipe.Recipe
	cache *kv.Cache
	store *offload.Store // the cache's cold tier (engine.Engine.Offload), nil without one
}

// measure fills a cache per recipe to depth, then runs each test's
// repetitions, each repetition once per recipe in turn. All recipes share
// one model state: it is scratch for a forward pass, not history.
func measure(ctx context.Context, e *engine.Engine, recipes []*recipe.Recipe, depth int, cfg Config) ([]Result, error) {
	n := depth + max(cfg.Prompt, cfg.Gen)
	rng := rand.New(rand.NewPCG(uint64(depth), 7))
	randTokens := func(k int) []int {
		t := make([]int, k)
		for i := range t {
			t[i] = rng.IntN(e.Model.Vocab)
		}
		return t
	}
	state := e.Model.NewState(e.Pool, cfg.Batch, n)
	fill := randTokens(depth)
	subjects := make([]subject, len(recipes))
	defer func() {
		for _, s := range subjects {
			s.store.Close()
		}
	}()
	for i, r := range recipes {
		cache, store, err := e.NewSeqCache(r, n)
		if err != nil {
			return nil, err
		}
		subjects[i].store = store
		// The depth is the prompt an evicting recipe compresses.
		if depth > 0 {
			cache.BeginPrefill(depth)
			if _, err := state.Forward(cache, fill, 0); err != nil {
				return nil, err
			}
		}
		subjects[i] = subject{r, cache, store}
	}
	var results []Result
	run := func(test string, tokens int, fn func(cache *kv.Cache) error) error {
		res := make([]Result, len(subjects))
		for i, s := range subjects {
			res[i] = Result{Recipe: s.r.String(), Test: test, Depth: depth, Tokens: tokens, Reps: cfg.Reps}
		}
		// pass runs the test once on s's cache; the caller rolls it back.
		pass := func(s subject) (seconds float64, err error) {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			t0 := time.Now()
			if err := fn(s.cache); err != nil {
				return 0, err
			}
			sec := time.Since(t0).Seconds()
			return sec, s.store.Err()
		}
		// One untimed pass per recipe first, as llama-bench does: without
		// it, the first interleaved pass of kivi(bits=4) at depth 8192
		// measured 13.6 t/s against 16-21 for its later ones.
		for _, s := range subjects {
			if _, err := pass(s); err != nil {
				return err
			}
			s.cache.Truncate(depth)
		}
		if cfg.Measuring != nil {
			cfg.Measuring(true)
			defer cfg.Measuring(false)
		}
		for rep := 0; rep < cfg.Reps; rep++ {
			for i, s := range subjects {
				sec, err := pass(s)
				if err != nil {
					return err
				}
				res[i].Samples = append(res[i].Samples, float64(tokens)/sec)
				res[i].KVBytes = s.cache.Bytes()
				res[i].FullKVBytes = e.FullCacheBytes(s.cache.NextPos())
				s.cache.Truncate(depth)
			}
		}
		for i := range res {
			r := &res[i]
			r.TokPerSec, r.StdDev = meanStd(r.Samples)
			r.Ratio = float64(r.KVBytes) / float64(max(r.FullKVBytes, 1))
			if len(subjects) > 1 {
				paired := make([]float64, len(r.Samples))
				for k, v := range r.Samples {
					paired[k] = v / res[0].Samples[k]
				}
				r.VsFirst, r.VsFirstStdDev = meanStd(paired)
			}
			results = append(results, *r)
			if cfg.Progress != nil {
				cfg.Progress(*r)
			}
		}
		return nil
	}
	if cfg.Prompt > 0 {
		toks := randTokens(cfg.Prompt)
		err := run(fmt.Sprintf("pp%d", cfg.Prompt), cfg.Prompt, func(cache *kv.Cache) error {
			_, err := state.Forward(cache, toks, depth)
			return err
		})
		if err != nil {
			return results, err
		}
	}
	if cfg.Gen > 0 {
		toks := randTokens(cfg.Gen)
		err := run(fmt.Sprintf("tg%d", cfg.Gen), cfg.Gen, func(cache *kv.Cache) error {
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
