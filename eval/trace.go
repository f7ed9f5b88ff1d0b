package eval

import (
	"context"
	"github.com/kvgo/kvgo/internal/dist"
	"slices"
	"strings"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// traceNeedle runs a case again through an engine.Session, as
// engine.Generate does (greedy, the same prompt and token count), and
// records which of the needle's tokens each (layer, KV head) stream still
// holds after the prompt and at the end of generation: the evidence of
// where an evictor lost a pass key. It is nil for a recipe that keeps
// every token or a needle not found in the prompt.
func traceNeedle(ctx context.Context, e *engine.Engine, r *recipe.Recipe, ids []int, maxTok int, needles [][]span) (*report.NeedleTrace, error) {
	if r == nil || !r.Evicts() {
		return nil, nil
	}
	var pos []int32
	for _, occ := range needles {
		for _, sp := range occ {
			for p := sp.lo; p < sp.hi; p++ {
				pos = append(pos, int32(p))
			}
		}
	}
	if len(pos) == 0 {
		return nil, nil
	}
	slices.Sort(pos)
	pos = slices.Compact(pos)
	n, err := e.ContextFor(0)
	if err != nil {
		return nil, err
	}
	s, err := e.NewSession(r, n, len(ids))
	if err != nil {
		return nil, err
	}
	logits, err := s.Prefill(ctx, ids)
	if err != nil {
		return nil, err
	}
	tr := &report.NeedleTrace{Positions: pos, AfterPrompt: kept(s.Cache, pos)}
	next := len(ids)
	for i := 0; i < maxTok && next < n-1; i++ {
		id := dist.Argmax(logits)
		if e.Tok.IsEOG(id) {
			break
		}
		tr.Generated = append(tr.Generated, id)
		if i == maxTok-1 {
			break
		}
		if logits, err = s.Step(id, next); err != nil {
			return nil, err
		}
		next++
	}
	tr.AtEnd = kept(s.Cache, pos)
	return tr, nil
}

// kept writes, per layer and KV head, one character per needle position:
// '1' when the stream holds it, '0' when it was evicted.
func kept(c *kv.Cache, pos []int32) [][]string {
	sh := c.Shape()
	out := make([][]string, sh.Layers)
	for l := range out {
		for h := 0; h < sh.KVHeads; h++ {
			have := c.Stream(l, h).Positions()
			var b strings.Builder
			for _, p := range pos {
				if _, ok := slices.BinarySearch(have, p); ok {
					b.WriteByte('1')
				} else {
					b.WriteByte('0')
				}
			}
			out[l] = append(out[l], b.String())
		}
	}
	return out
}
