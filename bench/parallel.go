package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/model"
)

// measureParallel is the batched-decode test of Config.Parallel, the one
// llama.cpp's llama-batched-bench runs (its S_TG column): seqs sequences,
// each with its own cache filled to depth, decode cfg.Gen tokens together,
// one token per sequence per model.State.ForwardSeqs pass over the weights
// (the pass the scheduler of engine/sched makes for its running
// sequences). TokPerSec counts every sequence's tokens; PerSeqTokPerSec is
// one sequence's share. The cache fill is not timed.
func measureParallel(ctx context.Context, e *engine.Engine, r *recipe.Recipe, depth, seqs int, cfg Config) (Result, error) {
	res := Result{
		Recipe: r.String(), Test: fmt.Sprintf("tg%dx%d", cfg.Gen, seqs), Depth: depth,
		Tokens: cfg.Gen * seqs, Reps: cfg.Reps, Seqs: seqs,
	}
	n := depth + cfg.Gen // Run checked it against the model (CheckDepth)
	rng := newRand(depth)
	state := e.Model.NewState(e.Pool, max(cfg.Batch, seqs), n)
	fill := randTokens(rng, e.Model.Vocab, depth)
	caches := make([]*kv.Cache, seqs)
	for i := range caches {
		c, err := e.NewCache(r, n)
		if err != nil {
			return res, err
		}
		if depth > 0 {
			c.BeginPrefill(depth)
			if _, err := state.Forward(c, fill, 0); err != nil {
				return res, err
			}
		}
		caches[i] = c
	}
	toks := randTokens(rng, e.Model.Vocab, cfg.Gen)
	batch := make([]model.Seq, seqs)
	pass := func() (float64, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		for step := range toks {
			for i, c := range caches {
				batch[i] = model.Seq{Cache: c, Tokens: toks[step : step+1], Start: depth + step, Logits: true}
			}
			if _, err := state.ForwardSeqs(batch); err != nil {
				return 0, err
			}
		}
		return time.Since(t0).Seconds(), nil
	}
	rollback := func() {
		for _, c := range caches {
			c.Truncate(depth)
		}
	}
	// One untimed pass first, as for the other tests.
	if _, err := pass(); err != nil {
		return res, err
	}
	rollback()
	if cfg.Measuring != nil {
		cfg.Measuring(true)
		defer cfg.Measuring(false)
	}
	for range cfg.Reps {
		sec, err := pass()
		if err != nil {
			return res, err
		}
		res.Samples = append(res.Samples, float64(res.Tokens)/sec)
		res.KVBytes, res.FullKVBytes = 0, 0
		for _, c := range caches {
			res.KVBytes += c.Bytes()
			res.FullKVBytes += e.FullCacheBytes(c.NextPos())
		}
		rollback()
	}
	res.TokPerSec, res.StdDev = meanStd(res.Samples)
	res.PerSeqTokPerSec = res.TokPerSec / float64(seqs)
	res.Ratio = float64(res.KVBytes) / float64(max(res.FullKVBytes, 1))
	return res, nil
}

// newRand is the random source of the tests at a depth.
func newRand(depth int) *rand.Rand { return rand.New(rand.NewPCG(uint64(depth), 7)) }

// randTokens returns k random token ids below vocab.
func randTokens(rng *rand.Rand, vocab, k int) []int {
	t := make([]int, k)
	for i := range t {
		t[i] = rng.IntN(vocab)
	}
	return t
}
