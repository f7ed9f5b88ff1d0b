package bench

import (
	"time"

	"github.com/kvgo/kvgo/kernel"
)

// MemoryBandwidth measures how fast the machine streams memory into the
// cores: each worker sums its share of a buffer far larger than the
// caches, the best of reps passes counts. Decode speed is bounded by this
// figure divided by the bytes read per token (weights plus KV cache).
func MemoryBandwidth(p *kernel.Pool, bytes int, reps int) float64 {
	n := bytes / 8
	buf := make([]uint64, n)
	for i := range buf {
		buf[i] = uint64(i)
	}
	sums := make([]uint64, p.Threads())
	best := 0.0
	for r := 0; r < reps; r++ {
		t0 := time.Now()
		p.ForWorker(n, 4096, func(w, lo, hi int) {
			var s0, s1, s2, s3 uint64
			x := buf[lo:hi]
			for len(x) >= 4 {
				s0 += x[0]
				s1 += x[1]
				s2 += x[2]
				s3 += x[3]
				x = x[4:]
			}
			for _, v := range x {
				s0 += v
			}
			sums[w] += s0 + s1 + s2 + s3
		})
		if gbps := float64(n*8) / time.Since(t0).Seconds(); gbps > best {
			best = gbps
		}
	}
	return best
}
