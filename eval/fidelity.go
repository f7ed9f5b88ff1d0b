package eval

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/model"
)

// Fidelity compares a recipe with the full cache on the same tokens. Both
// see identical inputs; only the cache differs.
type Fidelity struct {
	Recipe string `json:"recipe"`
	// KL divergence KL(full || recipe) of next-token distributions.
	MeanKLD float64 `json:"mean_kld"`
	P99KLD  float64 `json:"p99_kld"`
	// Top1 is the fraction of positions where both pick the same token.
	Top1        float64 `json:"top1_agreement"`
	PPL         float64 `json:"ppl"`
	BasePPL     float64 `json:"ppl_full"`
	Positions   int     `json:"positions"`
	KVBytes     int64   `json:"kv_bytes"`      // mean over chunks, at the end of each chunk
	FullKVBytes int64   `json:"kv_bytes_full"` // the full cache for the same tokens
	Ratio       float64 `json:"kv_ratio"`
}

// CompareFidelity scores each recipe against base (the full cache) on
// chunks of n tokens of tokens: the first n/2+1 tokens of a chunk are the
// context, prefilled and compressed; the rest is decoded one token at a
// time and every decode position is compared. The two caches run in
// lockstep, so no logits are stored.
func CompareFidelity(ctx context.Context, e *engine.Engine, tokens []int, n int, base *recipe.Recipe, recipes []*recipe.Recipe, maxChunks int) ([]Fidelity, error) {
	if _, err := e.ContextFor(n); err != nil {
		return nil, err
	}
	chunks := len(tokens) / n
	if maxChunks > 0 {
		chunks = min(chunks, maxChunks)
	}
	if chunks == 0 || n < 8 {
		return nil, fmt.Errorf("the text has %d tokens, fewer than one chunk of %d", len(tokens), n)
	}
	var out []Fidelity
	for _, r := range recipes {
		f, err := compareOne(ctx, e, tokens, n, chunks, base, r)
		if err != nil {
			return out, fmt.Errorf("%s: %w", r, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func compareOne(ctx context.Context, e *engine.Engine, tokens []int, n, chunks int, base, r *recipe.Recipe) (Fidelity, error) {
	f := Fidelity{Recipe: r.String()}
	sb := e.Model.NewState(e.Pool, min(n, 512), n)
	sr := e.Model.NewState(e.Pool, min(n, 512), n)
	var klds []float64
	var nllBase, nllRec float64
	var agree int
	var bytesSum, fullSum int64
	chunk := make([]int, n)
	lpBase := make([]float64, e.Model.Vocab)
	lpRec := make([]float64, e.Model.Vocab)
	for c := 0; c < chunks; c++ {
		if err := ctx.Err(); err != nil {
			return f, err
		}
		copy(chunk, tokens[c*n:(c+1)*n])
		if e.Tok.AddBOS() {
			chunk[0] = e.Tok.BOS()
		}
		cb, err := e.NewCache(base, n)
		if err != nil {
			return f, err
		}
		cr, err := e.NewCache(r, n)
		if err != nil {
			return f, err
		}
		ctxLen := n/2 + 1
		lb, err := prefill(sb, cb, chunk[:ctxLen])
		if err != nil {
			return f, err
		}
		lb = append([]float32(nil), lb...)
		lr, err := prefill(sr, cr, chunk[:ctxLen])
		if err != nil {
			return f, err
		}
		for j := ctxLen - 1; j < n-1; j++ {
			if j >= ctxLen {
				if lb, err = sb.Forward(cb, chunk[j:j+1], j); err != nil {
					return f, err
				}
				lb = append(lb[:0:0], lb...)
				if lr, err = sr.Forward(cr, chunk[j:j+1], j); err != nil {
					return f, err
				}
			}
			logSoftmax(lb, lpBase)
			logSoftmax(lr, lpRec)
			klds = append(klds, kld(lpBase, lpRec))
			nllBase -= lpBase[chunk[j+1]]
			nllRec -= lpRec[chunk[j+1]]
			if argmax64(lpBase) == argmax64(lpRec) {
				agree++
			}
		}
		bytesSum += cr.Bytes()
		fullSum += kv.FullF16Bytes(e.Model.CacheShape(), cr.NextPos())
	}
	f.Positions = len(klds)
	for _, k := range klds {
		f.MeanKLD += k
	}
	f.MeanKLD /= float64(len(klds))
	sort.Float64s(klds)
	f.P99KLD = klds[min(len(klds)-1, int(math.Ceil(0.99*float64(len(klds))))-1)]
	f.Top1 = float64(agree) / float64(len(klds))
	f.PPL = math.Exp(nllRec / float64(len(klds)))
	f.BasePPL = math.Exp(nllBase / float64(len(klds)))
	f.KVBytes = bytesSum / int64(chunks)
	f.FullKVBytes = fullSum / int64(chunks)
	f.Ratio = float64(bytesSum) / float64(fullSum)
	return f, nil
}

func prefill(s *model.State, c *kv.Cache, toks []int) ([]float32, error) {
	c.BeginPrefill(len(toks))
	l, err := s.Forward(c, toks, 0)
	if err != nil {
		return nil, err
	}
	c.EndPrefill()
	return l, nil
}

// logSoftmax writes log(softmax(x)) into out, in float64.
func logSoftmax(x []float32, out []float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	ls := m + math.Log(s)
	for i, v := range x {
		out[i] = float64(v) - ls
	}
}

// kld is KL(p || q) for log-probabilities lp and lq.
func kld(lp, lq []float64) float64 {
	var s float64
	for i, a := range lp {
		if p := math.Exp(a); p > 0 {
			s += p * (a - lq[i])
		}
	}
	return max(s, 0)
}

func argmax64(x []float64) int {
	b := 0
	for i, v := range x {
		if v > x[b] {
			b = i
		}
	}
	return b
}
