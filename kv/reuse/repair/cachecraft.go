package repair

import (
	"math"

	"github.com/kvgo/kvgo/kv"
)

// CacheCraft (Agarwal et al. 2025, "Cache-Craft: Managing Chunk-Caches for
// Efficient Retrieval-Augmented Generation", SIGMOD, arXiv:2502.15734)
// keeps a chunk's cache as it was computed in a real request, after the
// chunks it then followed, with what that computation's attention said
// (kv.ChunkStats), and recomputes per request only what the change of
// context calls for:
//
//   - the chunk's context impact CCI = σ(ā/b̄), ā and b̄ the layer means of
//     its attention to the chunks before it (a_l) and to itself (b_l),
//     each normalized by the sizes of the chunks involved;
//   - the overlap β = Σ inter(C, C_j) over the chunks it followed that
//     precede it now / Σ over all it followed, times (1 − γ), γ the
//     normalized Kendall-τ distance between their old and new order;
//     β′ = 1 when it followed no chunk;
//   - recompute ⌈α·CCI·(1 − β′)·|C|⌉ tokens, those of largest attention
//     to the context before the chunk (chosen once for every layer), and
//     the whole chunk when that fraction reaches Whole.
//
// The paper's text could not be read; this follows its equations as an
// unofficial reimplementation cites them (SEED-METHODS.md). Choices of
// ours: a token's attention to its preceding context leaves out the
// sequence's first token (the attention sink, present in every prompt;
// the reimplementation counts it and notes the question); text before the
// first chunk (a template, a system prompt) is context but not a chunk, so
// it enters a token's context attention and not β; Whole (0.9) is our
// reading of "recomputed whole when near 1"; a chunk cached without
// statistics (an MLA model, whose attention is not recorded) counts as
// CCI 1 with β′ from the chunk hashes alone and recomputes its first
// tokens.
type CacheCraft struct {
	Alpha float64
	Whole float64
}

func (CacheCraft) Name() string    { return "cachecraft" }
func (CacheCraft) Reuse() kv.Reuse { return kv.ReuseChunks }
func (CacheCraft) CheckLayer() int { return -1 }

// Fraction is α·CCI·(1−β′): the share of the chunk to recompute.
func (c CacheCraft) Fraction(u *kv.ChunkUse) float64 {
	cci, beta := 1.0, Overlap(u)
	if s := u.Stats; s != nil {
		cci = CCI(s)
	}
	return c.Alpha * cci * (1 - beta)
}

// Recompute returns the tokens to compute again.
func (c CacheCraft) Recompute(u *kv.ChunkUse) []int {
	f := c.Fraction(u)
	if f >= c.Whole {
		return all(u.Tokens)
	}
	m := count(f, u.Tokens)
	if s := u.Stats; s != nil && len(s.Context) == u.Tokens {
		return top(s.Context, m)
	}
	return all(m)
}

// CCI is σ(ā/b̄) over the layers (1 when b̄ is 0).
func CCI(s *kv.ChunkStats) float64 {
	if len(s.A) == 0 || len(s.B) == 0 {
		return 1
	}
	var a, b float64
	for _, x := range s.A {
		a += float64(x)
	}
	for _, x := range s.B {
		b += float64(x)
	}
	a /= float64(len(s.A))
	b /= float64(len(s.B))
	if b < 1e-12 {
		return 1
	}
	return 1 / (1 + math.Exp(-a/b))
}

// Overlap is β′ = β·(1 − γ) of a chunk in its current context: 1 when it
// was computed after no chunk, β weighted by the recorded inter-attention
// (by count when none was recorded).
func Overlap(u *kv.ChunkUse) float64 {
	var old []kv.ChunkHash
	var w []float32
	if u.Stats != nil {
		old, w = u.Stats.Before, u.Stats.Inter
	}
	if len(old) == 0 {
		return 1
	}
	now := map[kv.ChunkHash]int{}
	for i, h := range u.Before {
		now[h] = i
	}
	var num, den float64
	var kept []int // new positions of the old chunks still there, in old order
	for i, h := range old {
		wi := 1.0
		if len(w) == len(old) {
			wi = float64(w[i])
		}
		den += wi
		if j, ok := now[h]; ok {
			num += wi
			kept = append(kept, j)
		}
	}
	beta := 1.0
	if den > 0 {
		beta = num / den
	} else if len(kept) < len(old) {
		beta = float64(len(kept)) / float64(len(old))
	}
	return beta * (1 - kendall(kept))
}

// kendall is the normalized Kendall-τ distance of a sequence from its
// sorted order: discordant pairs over all pairs (0 for fewer than two).
func kendall(x []int) float64 {
	m := len(x)
	if m < 2 {
		return 0
	}
	d := 0
	for i := 0; i < m; i++ {
		for j := i + 1; j < m; j++ {
			if x[i] > x[j] {
				d++
			}
		}
	}
	return float64(d) / float64(m*(m-1)/2)
}

var cacheCraftMethod = kv.Method{
	Name: "cachecraft", Kind: kv.RepairMethod,
	Summary: "reuse chunk caches computed in real requests; recompute ⌈α·CCI·(1−β′)·|C|⌉ tokens of each, those most attentive to their context",
	Paper:   "Cache-Craft, Agarwal et al. 2025, arXiv:2502.15734",
	Params: []kv.Param{
		{Name: "alpha", Kind: kv.FloatParam, Default: "1", Min: 0, Max: 100,
			Help: "scale of the recomputed fraction α·CCI·(1−β′)"},
		{Name: "whole", Kind: kv.FloatParam, Default: "0.9", Min: 0, Max: 1,
			Help: "recompute the whole chunk when the fraction reaches this"},
	},
	NewRepair: func(a kv.Args) (kv.Repair, error) {
		return CacheCraft{Alpha: a.Float("alpha"), Whole: a.Float("whole")}, nil
	},
}
