package repair

import "github.com/kvgo/kvgo/kv"

// full reuses nothing: every prompt token is computed (the baseline every
// policy is measured against).
type full struct{}

func (full) Name() string                   { return "full" }
func (full) Reuse() kv.Reuse                { return kv.ReuseNone }
func (full) CheckLayer() int                { return -1 }
func (full) Recompute(u *kv.ChunkUse) []int { return all(u.Tokens) }

var fullMethod = kv.Method{
	Name: "full", Kind: kv.RepairMethod,
	Summary:   "no reuse: every prompt token is computed (the baseline of chunk reuse)",
	Paper:     "baseline",
	NewRepair: func(kv.Args) (kv.Repair, error) { return full{}, nil },
}
