package eval

import (
	"context"
	"errors"
	"fmt"
	"github.com/kvgo/kvgo/internal/dist"
	"math"
	"sort"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// Fidelity compares a recipe with the full cache on the same tokens. Both
// see identical inputs; only the cache differs.
type Fidelity struct {
	Recipe string `json:"recipe"`
	// KL divergence KL(full || recipe) of next-token distributions.
	MeanKLD float64 `json:"mean_kld"`
	P99KLD  float64 `json:"p99_kld"`
	// Top1 is the fraction of positions where both pick the same token.
	Top1    float64 `json:"top1_agreement"`
	PPL     float64 `json:"ppl"`
	BasePPL float64 `json:"ppl_full"`
	// MeanKLDSE, Top1SE and DeltaPPLSE are standard errors across chunks:
	// the standard deviation of the per-chunk values over √chunks (0 with
	// one chunk). Chunks differ in text, so they are the honest unit of
	// repetition; positions within a chunk are not independent.
	MeanKLDSE   float64 `json:"mean_kld_se"`
	Top1SE      float64 `json:"top1_se"`
	DeltaPPLSE  float64 `json:"delta_ppl_se"`
	Chunks      int     `json:"chunks"`
	Positions   int     `json:"positions"`
	KVBytes     int64   `json:"kv_bytes"`      // mean over chunks, at the end of each chunk
	FullKVBytes int64   `json:"kv_bytes_full"` // the full cache for the same tokens
	Ratio       float64 `json:"kv_ratio"`
	// Error is why the recipe could not be measured (the other fields are
	// then zero).
	Error string `json:"error,omitempty"`
}

// FidelityOptions tunes CompareFidelityWith.
type FidelityOptions struct {
	// MaxChunks caps the chunks used (0 = all).
	MaxChunks int
	// Progress, if set, is told how many tokens each forward pass of each
	// cache processed, for a progress bar.
	Progress func(tokens int)
}

// CompareFidelity scores each recipe against base (the full cache) on
// chunks of n tokens of tokens: the first n/2+1 tokens of a chunk are the
// context, prefilled and compressed; the rest is decoded one token at a
// time and every decode position is compared. The caches run in lockstep,
// so no logits are stored.
func CompareFidelity(ctx context.Context, e *engine.Engine, tokens []int, n int, base *recipe.Recipe, recipes []*recipe.Recipe, maxChunks int) ([]Fidelity, error) {
	return CompareFidelityWith(ctx, e, tokens, n, base, recipes, FidelityOptions{MaxChunks: maxChunks})
}

// CompareFidelityWith is CompareFidelity with options. All recipes advance
// together with one base sequence, so the base is computed once per
// position however many recipes are compared.
//
// A recipe whose cache cannot be built or run gets a result with Error set
// and the others go on; the returned error joins those failures. When ctx
// is cancelled the results cover the chunks that finished (recipes with
// none are left out) and the error is ctx's.
func CompareFidelityWith(ctx context.Context, e *engine.Engine, tokens []int, n int, base *recipe.Recipe, recipes []*recipe.Recipe, opt FidelityOptions) ([]Fidelity, error) {
	res, ok, err := compareAligned(ctx, e, tokens, n, base, recipes, opt)
	var out []Fidelity
	for i, f := range res {
		if ok[i] {
			out = append(out, f)
		}
	}
	return out, err
}

// compareAligned returns one result per recipe, in order, with ok[i]
// false for a recipe that has neither a finished chunk nor an error.
func compareAligned(ctx context.Context, e *engine.Engine, tokens []int, n int, base *recipe.Recipe, recipes []*recipe.Recipe, opt FidelityOptions) ([]Fidelity, []bool, error) {
	if _, err := e.ContextFor(n); err != nil {
		return nil, nil, err
	}
	chunks := len(tokens) / n
	if opt.MaxChunks > 0 {
		chunks = min(chunks, opt.MaxChunks)
	}
	if chunks == 0 || n < 8 {
		return nil, nil, fmt.Errorf("the text has %d tokens, fewer than one chunk of %d", len(tokens), n)
	}
	progress := opt.Progress
	if progress == nil {
		progress = func(int) {}
	}
	ctxLen := n/2 + 1
	lanes := make([]*lane, len(recipes))
	for i, r := range recipes {
		lanes[i] = &lane{r: r, lp: make([]float64, e.Model.Vocab)}
	}
	lpBase := make([]float64, e.Model.Vocab)
	chunk := make([]int, n)
	var stopErr error
chunkLoop:
	for c := 0; c < chunks; c++ {
		if stopErr = ctx.Err(); stopErr != nil {
			break
		}
		copy(chunk, tokens[c*n:(c+1)*n])
		if e.Tok.AddBOS() {
			chunk[0] = e.Tok.BOS()
		}
		bs, err := e.NewSession(base, n, ctxLen)
		if err != nil {
			return nil, nil, fmt.Errorf("base %s: %w", base, err)
		}
		lb, err := bs.Prefill(context.Background(), chunk[:ctxLen])
		if err != nil {
			return nil, nil, fmt.Errorf("base %s: %w", base, err)
		}
		progress(ctxLen)
		for _, l := range lanes {
			l.startChunk(e, n, chunk[:ctxLen])
			if l.err == nil {
				progress(ctxLen)
			}
		}
		for j := ctxLen - 1; j < n-1; j++ {
			if j >= ctxLen {
				if (j-ctxLen)%32 == 0 {
					if stopErr = ctx.Err(); stopErr != nil {
						break chunkLoop
					}
				}
				if lb, err = bs.Step(chunk[j], j); err != nil {
					return nil, nil, fmt.Errorf("base %s: %w", base, err)
				}
				progress(1)
			}
			dist.LogSoftmax(lb, lpBase)
			top := dist.Argmax(lpBase)
			for _, l := range lanes {
				if l.err != nil {
					continue
				}
				if j >= ctxLen {
					if l.logits, l.err = l.s.Step(chunk[j], j); l.err != nil {
						continue
					}
					progress(1)
				}
				l.score(lpBase, top, chunk[j+1])
			}
		}
		for _, l := range lanes {
			l.endChunk(e)
		}
	}
	out := make([]Fidelity, len(lanes))
	ok := make([]bool, len(lanes))
	var errs []error
	for i, l := range lanes {
		switch {
		case l.err != nil:
			out[i], ok[i] = Fidelity{Recipe: l.r.String(), Error: l.err.Error()}, true
			errs = append(errs, fmt.Errorf("%s: %w", l.r, l.err))
		case l.chunks > 0:
			out[i], ok[i] = l.result(), true
		}
	}
	if stopErr != nil {
		errs = append(errs, stopErr)
	}
	return out, ok, errors.Join(errs...)
}

// lane is one recipe's side of the lockstep comparison.
type lane struct {
	r      *recipe.Recipe
	s      *engine.Session
	logits []float32
	lp     []float64
	err    error
	// Accumulated over finished chunks; the pending* fields hold the
	// current chunk until it completes, so a cancelled chunk is dropped.
	klds, pendingKLD  []float64
	nllBase, nllRec   float64
	pendBase, pendRec float64
	agree, pendAgree  int
	bytesSum, fullSum int64
	chunks            int
	// Per finished chunk: mean KLD, top-1 agreement and ΔPPL.
	chunkKLD, chunkTop1, chunkDPPL []float64
}

func (l *lane) startChunk(e *engine.Engine, n int, prompt []int) {
	if l.err != nil {
		return
	}
	l.pendingKLD, l.pendBase, l.pendRec, l.pendAgree = l.pendingKLD[:0], 0, 0, 0
	if l.s, l.err = e.NewSession(l.r, n, len(prompt)); l.err != nil {
		return
	}
	l.logits, l.err = l.s.Prefill(context.Background(), prompt)
}

func (l *lane) score(lpBase []float64, top, next int) {
	dist.LogSoftmax(l.logits, l.lp)
	l.pendingKLD = append(l.pendingKLD, dist.KLD(lpBase, l.lp))
	l.pendBase -= lpBase[next]
	l.pendRec -= l.lp[next]
	if dist.Argmax(l.lp) == top {
		l.pendAgree++
	}
}

func (l *lane) endChunk(e *engine.Engine) {
	if l.err != nil {
		return
	}
	if n := float64(len(l.pendingKLD)); n > 0 {
		var sum float64
		for _, k := range l.pendingKLD {
			sum += k
		}
		l.chunkKLD = append(l.chunkKLD, sum/n)
		l.chunkTop1 = append(l.chunkTop1, float64(l.pendAgree)/n)
		l.chunkDPPL = append(l.chunkDPPL, math.Exp(l.pendRec/n)-math.Exp(l.pendBase/n))
	}
	l.klds = append(l.klds, l.pendingKLD...)
	l.nllBase += l.pendBase
	l.nllRec += l.pendRec
	l.agree += l.pendAgree
	l.bytesSum += l.s.Cache.Bytes()
	l.fullSum += kv.FullF16Bytes(e.Model.CacheShape(), l.s.Cache.NextPos())
	l.chunks++
}

func (l *lane) result() Fidelity {
	f := Fidelity{Recipe: l.r.String(), Positions: len(l.klds)}
	n := float64(len(l.klds))
	for _, k := range l.klds {
		f.MeanKLD += k
	}
	f.MeanKLD /= n
	sorted := append([]float64(nil), l.klds...)
	sort.Float64s(sorted)
	f.P99KLD = sorted[min(len(sorted)-1, int(math.Ceil(0.99*n))-1)]
	f.Top1 = float64(l.agree) / n
	f.PPL = math.Exp(l.nllRec / n)
	f.BasePPL = math.Exp(l.nllBase / n)
	f.KVBytes = l.bytesSum / int64(l.chunks)
	f.FullKVBytes = l.fullSum / int64(l.chunks)
	f.Ratio = float64(l.bytesSum) / float64(l.fullSum)
	f.Chunks = l.chunks
	f.MeanKLDSE, f.Top1SE, f.DeltaPPLSE = stdErr(l.chunkKLD), stdErr(l.chunkTop1), stdErr(l.chunkDPPL)
	return f
}

// stdErr is the standard error of the mean of xs: their sample standard
// deviation over √len(xs), 0 for fewer than two values.
func stdErr(xs []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= n
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss/(n-1)) / math.Sqrt(n)
}
