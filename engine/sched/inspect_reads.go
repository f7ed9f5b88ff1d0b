package sched

import (
	"github.com/kvgo/kvgo/kv"
)

// The pages a selector read at the last decode step, for the inspector.
// Only an inspected sequence (Request.Inspect) pays for it: its cache's
// selector is wrapped in a readRecorder, which copies each stream's read
// mask after the selector chose (one small copy per stream and step, in the
// parallel attention calls, each into its own slot). Other sequences get
// the recipe's cache unchanged.

// readRecorder wraps a selector and keeps, per stream, the read mask of its
// last Select call: one per stream and decode step.
type readRecorder struct {
	inner kv.Selector
	reads [][]bool // per stream: layer*KVHeads + head
}

func (r *readRecorder) Name() string    { return r.inner.Name() }
func (r *readRecorder) Summaries() bool { return r.inner.Summaries() }

func (r *readRecorder) Select(v *kv.SelectView, q []float32, g int, qpos int32, read []bool) {
	r.inner.Select(v, q, g, qpos, read)
	i := v.Layer*v.KVHeads + v.KVHead
	r.reads[i] = append(r.reads[i][:0], read...)
}

// The optional interfaces pass through: a selector without one behaves as
// the cache treats it when it lacks it (no bytes, no check, shared state).
func (r *readRecorder) Bytes() int64 {
	if s, ok := r.inner.(kv.SizedSelector); ok {
		return s.Bytes()
	}
	return 0
}

func (r *readRecorder) Check(capacity int) error {
	if s, ok := r.inner.(kv.CheckedSelector); ok {
		return s.Check(capacity)
	}
	return nil
}

// Fork gives a fork the inner selector's own fork: only this sequence is
// inspected.
func (r *readRecorder) Fork() kv.Selector {
	if s, ok := r.inner.(kv.ForkingSelector); ok {
		return s.Fork()
	}
	return r.inner
}

// promptRecorder is a readRecorder of a selector that reads the prompt.
type promptRecorder struct {
	*readRecorder
	pr kv.PromptReader
}

func (p promptRecorder) LocalWindow() int { return p.pr.LocalWindow() }
func (p promptRecorder) ReadPrompt(v *kv.SelectView, q []float32, g int, qpos int32) {
	p.pr.ReadPrompt(v, q, g, qpos)
}
func (p promptRecorder) EndPrompt(last bool) { p.pr.EndPrompt(last) }

// newCache makes q's cache from its recipe as engine.NewCache does, with
// the selector of an inspected sequence wrapped in a readRecorder.
func (s *Scheduler) newCache(q *seq) (*kv.Cache, error) {
	if !q.req.Inspect {
		c, st, err := s.eng.NewSeqCache(q.recipe, s.ctx)
		q.store = st
		return c, err
	}
	cfg, err := q.recipe.Config()
	if err != nil {
		return nil, err
	}
	if err := s.coldCodecs(q, &cfg); err != nil { // offload.go
		return nil, err
	}
	sh := s.eng.Model.CacheShape()
	var rec *readRecorder
	if cfg.Selector != nil {
		rec = &readRecorder{inner: cfg.Selector, reads: make([][]bool, sh.Layers*sh.KVHeads)}
		cfg.Selector = rec
		if pr, ok := rec.inner.(kv.PromptReader); ok {
			cfg.Selector = promptRecorder{rec, pr}
		}
	}
	cfg.RoPE = s.eng.Model.Rotary()
	c, err := kv.New(sh, cfg, s.ctx)
	if err != nil {
		s.closeStore(q)
	}
	if err == nil && rec != nil {
		if s.insp.reads == nil || len(s.insp.reads) >= 1024 { // bounds what failed starts leave
			s.insp.reads = map[*kv.Cache]*readRecorder{}
		}
		s.insp.reads[c] = rec
	}
	return c, err
}
