package repair

import "github.com/kvgo/kvgo/kv"

// CacheBlend (Yao et al. 2025, "CacheBlend: Fast Large Language Model
// Serving for RAG with Cached Knowledge Fusion", arXiv:2405.16444, as its
// code and LMCache's blender do it) recomputes every token of the reused
// chunks through the layers up to a check layer (1), compares each token's
// fresh value there with the spliced one (squared difference summed over
// heads and channels), and keeps the ratio of each chunk's tokens that
// deviate most; only those (and the question) run through the later
// layers, their fresh keys and values overwriting the spliced ones.
//
// Choices of ours: the ratio applies per chunk (the code selects over all
// reused tokens at once); the check layer's fresh keys and values are kept
// for every token (the code writes only the selected ones back: the
// others' fresh values are computed anyway and are at least as right); the
// deviation is of values, as in the paper's code (LMCache compares keys).
// ratio=1 recomputes every token at every layer: full prefill.
type CacheBlend struct {
	Ratio float64
	Layer int
}

func (CacheBlend) Name() string      { return "cacheblend" }
func (CacheBlend) Reuse() kv.Reuse   { return kv.ReuseChunks }
func (b CacheBlend) CheckLayer() int { return b.Layer }

// Recompute returns the ⌈Ratio·|C|⌉ tokens of largest deviation (evenly
// spaced ones when the engine could measure none).
func (b CacheBlend) Recompute(u *kv.ChunkUse) []int {
	m := count(b.Ratio, u.Tokens)
	if len(u.Deviation) == u.Tokens {
		return top(u.Deviation, m)
	}
	var idx []int
	for i := 0; i < m; i++ {
		idx = append(idx, i*u.Tokens/m)
	}
	return idx
}

var cacheBlendMethod = kv.Method{
	Name: "cacheblend", Kind: kv.RepairMethod,
	Summary: "reuse chunk caches; recompute every token up to a check layer and, after it, the ratio of each chunk's tokens whose values deviate most",
	Paper:   "CacheBlend, Yao et al. 2025, arXiv:2405.16444",
	Params: []kv.Param{
		{Name: "ratio", Kind: kv.FloatParam, Default: "0.15", Min: 0, Max: 1,
			Help: "fraction of each reused chunk's tokens recomputed after the check layer"},
		{Name: "layer", Kind: kv.IntParam, Default: "1", Min: 0, Max: 1023,
			Help: "check layer: every token is recomputed up to and including it (clamped to the model's last layer)"},
	},
	NewRepair: func(a kv.Args) (kv.Repair, error) {
		return CacheBlend{Ratio: a.Float("ratio"), Layer: a.Int("layer")}, nil
	},
}
