package bench

import (
	"math"
	"testing"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/model"
)

// TestAttentionFlops checks the count at qwen2.5-0.5b's shape (24 layers,
// 14 query heads over 2 KV heads of 64) and the arithmetic bound built on
// it: with a kernel rate that makes attention slower than its bytes, the
// bound is weights/bw + flops/rate.
func TestAttentionFlops(t *testing.T) {
	c := model.Config{Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64}
	if got := AttentionFlops(c); got != 86016 {
		t.Fatalf("AttentionFlops = %g, want 86016", got)
	}
	r := &Report{MemBW: 50e9, FMAFlops: 100e9, AttnFlopsPerPos: 86016, WeightBytesPerToken: 525e6}
	res := Result{Test: "tg16", Depth: 8184, Tokens: 16, KVBytes: 100e6, BoundTokPerSec: 1}
	want := 1 / (525e6/50e9 + 86016*8192/100e9)
	if got := r.ArithBound(res); math.Abs(got-want) > 1e-9*want {
		t.Errorf("ArithBound = %g, want %g", got, want)
	}
	r.FMAFlops = 1e15 // arithmetic free: the bytes bound
	if got, want := r.ArithBound(res), 50e9/(525e6+100e6); math.Abs(got-want) > 1e-9*want {
		t.Errorf("ArithBound with free arithmetic = %g, want the bandwidth bound %g", got, want)
	}
	if (&Report{MemBW: 50e9}).ArithBound(res) != 0 {
		t.Error("ArithBound without a kernel rate is not 0")
	}
}

func TestFMAThroughput(t *testing.T) {
	p := kernel.NewPool(2)
	defer p.Close()
	f := FMAThroughput(p, 3)
	t.Logf("attention kernels: %.1f GFLOP/s on %d workers", f/1e9, p.Threads())
	if !(f > 1e8) {
		t.Errorf("FMAThroughput = %g flops/s, implausibly low", f)
	}
}
