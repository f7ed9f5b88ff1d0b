package sched

import (
	"context"
	"slices"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
	"github.com/kvgo/kvgo/model"
)

// Chunk reuse in the scheduler. A request whose recipe has a repair
// policy that reuses chunk caches (kv.ReuseChunks), whose prompt has
// chunks (Request.Chunks) and that runs with a chunk store (Config.Chunks)
// is prefilled when it is admitted, by engine.PrefillChunks on the loop's
// own chunk State: cached chunks are spliced, the policy's tokens and the
// text around the chunks are computed, missed chunks are stored. The
// sequence then samples its first token at once and decodes with the
// others. The prefill runs as one step of the loop (not in PrefillChunk
// pieces between decode steps): it is a fraction of a full prefill, which
// is the point, and running streams wait for it.
//
// A chunked prefill that fails (a splice refused, a model error) is
// undone and the prompt is prefilled as usual: chunk reuse never fails a
// request. Store faults are misses already (kv/reuse/chunk).

// chunkState is the loop's chunk machinery.
type chunkState struct {
	state *model.State
	// counters, under Scheduler.mu
	queries, hits, misses, stored uint64
	tiers                         map[string]uint64
	reused, recomputed, computed  uint64
	fallbacks                     uint64
}

func (c *chunkState) init(e *engine.Engine, cfg Config, ctx int) {
	if cfg.Chunks == nil {
		return
	}
	c.state = e.Model.NewState(e.Pool, cfg.PrefillChunk, ctx)
	c.tiers = map[string]uint64{}
}

// ChunkStats are the scheduler's chunk-reuse counters.
type ChunkStats struct {
	// Queries counts chunks looked up, Hits those found (per tier in
	// Tiers), Misses those computed; Stored the chunks stored.
	Queries, Hits, Misses, Stored uint64
	Tiers                         map[string]uint64
	// Reused prompt tokens taken from chunk caches; Recomputed tokens of
	// reused chunks computed again; Computed prompt tokens computed by
	// chunked prefills.
	Reused, Recomputed, Computed uint64
	// Fallbacks counts chunked prefills that failed and ran as plain ones.
	Fallbacks uint64
}

// ChunkStats returns the chunk-reuse counters.
func (s *Scheduler) ChunkStats() ChunkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.chunks
	st := ChunkStats{Queries: c.queries, Hits: c.hits, Misses: c.misses, Stored: c.stored,
		Reused: c.reused, Recomputed: c.recomputed, Computed: c.computed, Fallbacks: c.fallbacks,
		Tiers: map[string]uint64{}}
	for k, v := range c.tiers {
		st.Tiers[k] = v
	}
	return st
}

// reusesPrefix says whether a recipe may take the prefix cache: not when
// its repair policy asks for full prefill.
func reusesPrefix(r *recipe.Recipe) bool {
	p, err := r.Repair()
	return err != nil || p == nil || p.Reuse() != kv.ReuseNone
}

// startChunks prefills q with chunk reuse when it applies, leaving the
// logits of its last prompt token in q.first; it reports whether it did.
func (s *Scheduler) startChunks(q *seq) bool {
	c := &s.chunks
	// A cold tier's sequences prefill whole: chunk reuse builds its
	// caches in memory.
	if c.state == nil || len(q.req.Chunks) == 0 || q.plan.evicts || s.eng.Offload != nil {
		return false
	}
	rep, err := q.recipe.Repair()
	if err != nil || rep == nil || rep.Reuse() != kv.ReuseChunks {
		return false
	}
	cache, err := s.eng.NewCache(q.recipe, s.ctx)
	if err != nil {
		return false
	}
	sess := &engine.Session{State: c.state, Cache: cache}
	p := engine.Prompt{Tokens: q.prompt, Chunks: q.req.Chunks}
	logits, st, err := s.eng.PrefillChunks(context.Background(), sess, p, engine.ChunkOptions{
		Store: s.cfg.Chunks, Repair: rep, Recipe: q.recipe, Model: s.model, Tenant: q.req.Tenant})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || logits == nil {
		cache.Release()
		c.fallbacks++
		s.logf("sched: sequence %d: chunked prefill failed (%v); prefilling it whole", q.id, err)
		return false
	}
	c.queries += uint64(st.Chunks)
	c.hits += uint64(st.Hits)
	c.misses += uint64(st.Misses)
	c.stored += uint64(st.Stored)
	for t, n := range st.Tiers {
		c.tiers[t] += uint64(n)
	}
	c.reused += uint64(st.Reused)
	c.recomputed += uint64(st.Recomputed)
	c.computed += uint64(st.Computed)
	q.cache = cache
	q.fed, q.pos, q.cached = len(q.prompt), len(q.prompt), st.Reused
	q.first = slices.Clone(logits)
	for _, id := range q.prompt {
		q.sampler.Accept(id)
	}
	return true
}

// ChunkStore is the chunk store (Config.Chunks), or nil.
func (s *Scheduler) ChunkStore() *kvchunk.Store { return s.cfg.Chunks }
