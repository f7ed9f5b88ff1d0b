package repair

import "github.com/kvgo/kvgo/kv"

// prefix reuses the longest cached prefix of the prompt and computes the
// rest (the scheduler's prefix cache, kv/reuse/prefix): exact, but it
// helps only when the documents come first and in the same order.
type prefix struct{}

func (prefix) Name() string                   { return "prefix" }
func (prefix) Reuse() kv.Reuse                { return kv.ReusePrefix }
func (prefix) CheckLayer() int                { return -1 }
func (prefix) Recompute(u *kv.ChunkUse) []int { return all(u.Tokens) }

var prefixMethod = kv.Method{
	Name: "prefix", Kind: kv.RepairMethod,
	Summary:   "prefix caching only: reuse the longest cached prefix of the prompt, compute the rest",
	Paper:     "baseline (vLLM/SGLang prefix caching)",
	NewRepair: func(kv.Args) (kv.Repair, error) { return prefix{}, nil },
}
