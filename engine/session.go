package engine

import (
	"context"
	"fmt"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/offload"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/model"
)

// Session is one sequence being run: a cache built from a recipe and the
// scratch memory of the forward pass. Generate, kvgo eval's task runs and
// its fidelity comparison all go through it, so the logits they see are
// the same.
type Session struct {
	State *model.State
	Cache *kv.Cache
	next  []int // the decode step's one token, reused so it does not escape per step
	// store is the sequence's cold tier (Engine.Offload), nil without one.
	store *offload.Store
}

// NewSession makes an empty sequence of up to n positions whose prompt has
// promptLen tokens (it sizes the prefill batch).
func (e *Engine) NewSession(r *recipe.Recipe, n, promptLen int) (*Session, error) {
	c, st, err := e.NewSeqCache(r, n)
	if err != nil {
		return nil, err
	}
	return &Session{
		State: e.Model.NewState(e.Pool, max(1, min(prefillChunk, promptLen)), n),
		Cache: c,
		next:  make([]int, 1),
		store: st,
	}, nil
}

// Close ends the sequence: its cache gives up its pages and its cold
// tier's file, if it has one, is closed and removed. A session that may
// have a cold tier (Engine.Offload) must be closed on every path.
func (s *Session) Close() error {
	s.Cache.Release()
	return s.store.Close()
}

// coldErr is the cold tier's failure, if any: a page that could not be
// written to or read from its file, after which the pass's attention is
// not to be trusted.
func (s *Session) coldErr() error { return s.store.Err() }

// Prefill runs the prompt from position 0 and returns the logits of its
// last token. The prompt is announced to the cache (kv.Cache.BeginPrefill),
// which lets an evicting recipe compress it when its last batch is in;
// cancellation is noticed between chunks of prefillChunk tokens.
func (s *Session) Prefill(ctx context.Context, prompt []int) ([]float32, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("empty prompt")
	}
	s.Cache.BeginPrefill(len(prompt))
	var logits []float32
	for done := 0; done < len(prompt); done += prefillChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(done+prefillChunk, len(prompt))
		var err error
		if logits, err = s.State.Forward(s.Cache, prompt[done:end], done); err != nil {
			return nil, err
		}
		if err := s.coldErr(); err != nil {
			return nil, err
		}
	}
	return logits, nil
}

// Step decodes token id at position pos and returns the next logits,
// valid until the next call.
func (s *Session) Step(id, pos int) ([]float32, error) {
	s.next[0] = id
	logits, err := s.State.Forward(s.Cache, s.next, pos)
	if err != nil {
		return nil, err
	}
	if err := s.coldErr(); err != nil {
		return nil, err
	}
	return logits, nil
}
