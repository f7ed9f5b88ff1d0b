package bench

import (
	"time"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/model"
)

// AttentionFlops is the arithmetic of decode attention per cached position
// and generated token: every query head scores the position's key (a
// multiply and an add per key value) and adds its weighted value (the
// same per value value), in every layer. At qwen2.5-0.5b's shape (24
// layers, 14 query heads, keys and values of 64) that is 86016 flops, so
// a token at depth 8192 costs 0.70 GFLOP of attention against 525 MB of
// weights read. Exponentials and the softmax's bookkeeping are not counted.
func AttentionFlops(c model.Config) float64 {
	s := c.CacheShape()
	var f float64
	for l := 0; l < s.Layers; l++ {
		d := s.Dims(l)
		f += float64(c.Heads) * 2 * float64(d.Key+d.Value)
	}
	return f
}

// FMAThroughput measures the arithmetic rate of the attention kernels with
// their operands in the L1 cache, in flops/s over all workers: each worker
// scores four queries against a page of 32 keys of 64 values
// (kernel.DotsGroup) and sums the page's values for four heads
// (kernel.WeightedSumHeads) for about 20 ms, the best of reps passes
// counts. It is what attention could reach if no byte came from memory,
// below the FMA units' peak by the kernels' loads and reductions.
func FMAThroughput(p *kernel.Pool, reps int) float64 {
	const g, n, d = 4, 32, 64
	const per = 2 * 2 * g * n * d // flops of one score pass and one sum pass
	type buf struct{ q, k, w, o []float32 }
	bufs := make([]buf, p.Threads())
	for i := range bufs {
		b := buf{make([]float32, g*d), make([]float32, n*d), make([]float32, g*n), make([]float32, g*d)}
		for j := range b.k {
			b.k[j] = float32(j%7) * 0.01
		}
		for j := range b.q {
			b.q[j] = float32(j%5) * 0.01
		}
		bufs[i] = b
	}
	calls := make([]int, p.Threads())
	best := 0.0
	for r := 0; r < reps; r++ {
		clear(calls)
		t0 := time.Now()
		p.ForWorker(p.Threads(), 1, func(w, lo, hi int) {
			for x := lo; x < hi; x++ {
				b := bufs[x]
				end := time.Now().Add(20 * time.Millisecond)
				for k := 0; ; k++ {
					kernel.DotsGroup(b.w, b.q, g, b.k, d)
					kernel.WeightedSumHeads(b.o, b.w, n, g, b.k, d)
					calls[x]++
					if k%64 == 63 && time.Now().After(end) {
						break
					}
				}
			}
		})
		sec := time.Since(t0).Seconds()
		total := 0
		for _, c := range calls {
			total += c
		}
		if f := float64(total) * per / sec; f > best {
			best = f
		}
	}
	return best
}

// ArithBound is a decode test's bound with the attention's arithmetic:
// weights streamed at the memory bandwidth, then attention at the slower
// of streaming its KV bytes and computing its flops at the FMA rate:
// 1 / (weights/bw + max(kv/bw, flops·positions/fma)), positions being the
// depth plus half the test's tokens. It counts every cached position
// (a selector that reads fewer pages does less arithmetic). 0 when the
// report lacks a figure.
func (r *Report) ArithBound(res Result) float64 {
	if r.MemBW <= 0 || r.FMAFlops <= 0 || r.AttnFlopsPerPos <= 0 || res.BoundTokPerSec <= 0 {
		return 0
	}
	kv := float64(res.KVBytes) / r.MemBW
	arith := r.AttnFlopsPerPos * (float64(res.Depth) + float64(res.Tokens)/2) / r.FMAFlops
	return 1 / (float64(r.WeightBytesPerToken)/r.MemBW + max(kv, arith))
}
