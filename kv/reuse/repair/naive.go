package repair

import "github.com/kvgo/kvgo/kv"

// naive splices every cached chunk at its new positions, keys re-rotated,
// and recomputes none of its tokens: a chunk's tokens keep the attention
// they had to the context they were computed after. The quality floor of
// the chunk-reuse papers (CacheBlend's "full KV reuse").
type naive struct{}

func (naive) Name() string                 { return "naive" }
func (naive) Reuse() kv.Reuse              { return kv.ReuseChunks }
func (naive) CheckLayer() int              { return -1 }
func (naive) Recompute(*kv.ChunkUse) []int { return nil }

var naiveMethod = kv.Method{
	Name: "naive", Kind: kv.RepairMethod,
	Summary:   "reuse chunk caches spliced at their new positions with re-rotated keys, recompute nothing (the quality floor)",
	Paper:     "baseline (full KV reuse in CacheBlend, arXiv:2405.16444)",
	NewRepair: func(kv.Args) (kv.Repair, error) { return naive{}, nil },
}
