package repair

import "github.com/kvgo/kvgo/kv"

// EPIC (Hu et al. 2024, "EPIC: Efficient Position-Independent Context
// Caching for Serving Large Language Models", arXiv:2410.15332; its
// LegoLink step) recomputes the first k tokens of every reused chunk: a
// chunk computed elsewhere made its first tokens attention sinks, and
// recomputing them in place removes the sinks from the middle of the
// prompt. k is fixed, whatever the chunk's length (the paper uses k <= 32).
type EPIC struct{ K int }

func (EPIC) Name() string    { return "epic" }
func (EPIC) Reuse() kv.Reuse { return kv.ReuseChunks }
func (EPIC) CheckLayer() int { return -1 }

// Recompute returns the chunk's first K tokens.
func (e EPIC) Recompute(u *kv.ChunkUse) []int { return all(min(e.K, u.Tokens)) }

var epicMethod = kv.Method{
	Name: "epic", Kind: kv.RepairMethod,
	Summary: "reuse chunk caches and recompute the first k tokens of each (the attention-sink repair)",
	Paper:   "EPIC, Hu et al. 2024, arXiv:2410.15332",
	Params: []kv.Param{{Name: "k", Kind: kv.IntParam, Default: "16", Min: 0, Max: 4096,
		Help: "tokens recomputed at the start of every reused chunk"}},
	NewRepair: func(a kv.Args) (kv.Repair, error) { return EPIC{K: a.Int("k")}, nil },
}
