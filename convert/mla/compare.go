package mla

import (
	"context"
	"errors"
	"fmt"
	"github.com/kvgo/kvgo/internal/dist"
	"math"
	"sort"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv/recipe"
)

// Candidate is a model and a cache recipe to compare with a source model.
type Candidate struct {
	Label  string
	Engine *engine.Engine
	Recipe *recipe.Recipe // nil: the full f16 cache
	// LatentKV, when set, is the bytes per token a latent cache of this
	// model would hold (the low-rank baseline runs with its reconstructed
	// full-width keys and values; its quality is that of caching the
	// latents); 0 reports the measured cache.
	LatentKV int64
}

// Row is the comparison of one candidate with the source on the same
// tokens.
type Row struct {
	Label, Recipe string
	// MeanKLD and P99KLD are KL(source ‖ candidate) of the next-token
	// distributions, in nats; Top1 the fraction of positions where both
	// pick the same token.
	MeanKLD, P99KLD, Top1 float64
	// PPL of the candidate and of the source over the scored positions.
	PPL, SourcePPL float64
	Positions      int
	// KVPerToken is the candidate cache's bytes per token at the end of
	// each chunk (mean over chunks), SourceKVPerToken the source's with
	// its full f16 cache; Computed marks a latent size taken from
	// Candidate.LatentKV.
	KVPerToken, SourceKVPerToken float64
	Computed                     bool
}

// Compare runs the source (full f16 cache) and every candidate in lockstep
// on chunks of ctx tokens of tokens, with the protocol of kvgo eval
// fidelity: each chunk's first ctx/2+1 tokens (BOS first) are prefilled,
// the rest are fed one at a time, and at every fed position each
// candidate's next-token distribution is compared with the source's. The
// candidates must share the source's vocabulary (a converted model keeps
// its tokenizer). maxChunks caps the chunks (0: all).
func Compare(ctx context.Context, src *engine.Engine, cands []Candidate, tokens []int, n, maxChunks int, prog Progress) ([]Row, error) {
	if n < 8 || n > src.Model.ContextLen {
		return nil, fmt.Errorf("context %d is outside 8..%d", n, src.Model.ContextLen)
	}
	chunks := len(tokens) / n
	if maxChunks > 0 {
		chunks = min(chunks, maxChunks)
	}
	if chunks == 0 {
		return nil, fmt.Errorf("the text has %d tokens, fewer than one chunk of %d", len(tokens), n)
	}
	V := src.Model.Vocab
	for _, c := range cands {
		if c.Engine.Model.Vocab != V {
			return nil, fmt.Errorf("%s has %d tokens in its vocabulary, the source %d", c.Label, c.Engine.Model.Vocab, V)
		}
	}
	if prog != nil {
		prog.Grow(float64(chunks * n * (len(cands) + 1)))
	}
	type lane struct {
		c          Candidate
		s          *engine.Session
		logits     []float32
		lp         []float64
		klds       []float64
		nll, agree float64
		bytes      float64
	}
	lanes := make([]*lane, len(cands))
	for i, c := range cands {
		lanes[i] = &lane{c: c, lp: make([]float64, V)}
	}
	lpSrc := make([]float64, V)
	var nllSrc, srcBytes float64
	h := n/2 + 1
	chunk := make([]int, n)
	for c := 0; c < chunks; c++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		copy(chunk, tokens[c*n:(c+1)*n])
		if src.Tok.AddBOS() {
			chunk[0] = src.Tok.BOS()
		}
		ss, err := src.NewSession(nil, n, h)
		if err != nil {
			return nil, err
		}
		ls, err := ss.Prefill(ctx, chunk[:h])
		if err != nil {
			return nil, err
		}
		for _, l := range lanes {
			if l.s, err = l.c.Engine.NewSession(l.c.Recipe, n, h); err != nil {
				return nil, fmt.Errorf("%s: %w", l.c.Label, err)
			}
			if l.logits, err = l.s.Prefill(ctx, chunk[:h]); err != nil {
				return nil, fmt.Errorf("%s: %w", l.c.Label, err)
			}
		}
		for j := h - 1; j < n-1; j++ {
			if j >= h {
				if ls, err = ss.Step(chunk[j], j); err != nil {
					return nil, err
				}
			}
			dist.LogSoftmax(ls, lpSrc)
			top := dist.Argmax(lpSrc)
			nllSrc -= lpSrc[chunk[j+1]]
			for _, l := range lanes {
				if j >= h {
					if l.logits, err = l.s.Step(chunk[j], j); err != nil {
						return nil, fmt.Errorf("%s: %w", l.c.Label, err)
					}
				}
				dist.LogSoftmax(l.logits, l.lp)
				l.klds = append(l.klds, dist.KLD(lpSrc, l.lp))
				l.nll -= l.lp[chunk[j+1]]
				if dist.Argmax(l.lp) == top {
					l.agree++
				}
			}
		}
		srcBytes += float64(ss.Cache.Bytes()) / float64(ss.Cache.NextPos())
		for _, l := range lanes {
			l.bytes += float64(l.s.Cache.Bytes()) / float64(l.s.Cache.NextPos())
		}
		if prog != nil {
			prog.Add(float64(n*(len(cands)+1)), fmt.Sprintf("chunk %d/%d", c+1, chunks))
		}
	}
	var rows []Row
	for _, l := range lanes {
		np := float64(len(l.klds))
		if np == 0 {
			return nil, errors.New("no positions compared")
		}
		r := Row{Label: l.c.Label, Recipe: "f16", Positions: len(l.klds), Top1: l.agree / np,
			PPL: math.Exp(l.nll / np), SourcePPL: math.Exp(nllSrc / np),
			KVPerToken: l.bytes / float64(chunks), SourceKVPerToken: srcBytes / float64(chunks)}
		if l.c.Recipe != nil {
			r.Recipe = l.c.Recipe.String()
		}
		if l.c.LatentKV > 0 {
			r.KVPerToken, r.Computed = float64(l.c.LatentKV), true
		}
		for _, k := range l.klds {
			r.MeanKLD += k
		}
		r.MeanKLD /= np
		sort.Float64s(l.klds)
		r.P99KLD = l.klds[min(len(l.klds)-1, int(math.Ceil(0.99*np))-1)]
		rows = append(rows, r)
	}
	return rows, nil
}
