package mla

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
)

// SpeedRow is the decode speed of one model at one context depth.
type SpeedRow struct {
	Label string
	Depth int
	// TokPerSec is the median over repetitions; VsFirst the median of the
	// per-repetition ratios to the first model's speed in the same
	// repetition (paired, so load that drifts between repetitions cancels).
	TokPerSec, VsFirst float64
	// WeightBytes and KVBytes are what a decode step reads: every weight
	// (engine.WeightBytesPerToken) and the whole cache at that depth.
	WeightBytes, KVBytes int64
	// AttnMACs is the attention arithmetic of one decode step over the
	// cache (multiply-adds): per layer and query head, depth × (key width
	// + value width) of what the head reads: 2·d for GQA, r + d_R + r for
	// the absorbed latent (its projections W_UKᵀ and W_UV excluded).
	AttnMACs int64
}

// Speed measures decode at each depth for every model, paired: all caches
// are filled to the depth first (random tokens, f16 caches), then each
// repetition decodes n tokens with every model in turn and rolls the
// caches back, so load that drifts over the minutes of a measurement
// lands on every model alike. The first engine is the reference of
// VsFirst.
func Speed(ctx context.Context, engines []*engine.Engine, labels []string, depths []int, n, reps int, prog Progress) ([]SpeedRow, error) {
	maxD := 0
	for _, d := range depths {
		maxD = max(maxD, d)
	}
	capacity := maxD + n + 1
	type lane struct {
		e   *engine.Engine
		s   *engine.Session
		pos int
	}
	lanes := make([]*lane, len(engines))
	rng := rand.New(rand.NewPCG(5, 6))
	for i, e := range engines {
		if capacity > e.Model.ContextLen {
			return nil, fmt.Errorf("%s: depth %d exceeds the context of %d", labels[i], maxD, e.Model.ContextLen)
		}
		s, err := e.NewSession(nil, capacity, min(512, max(1, maxD)))
		if err != nil {
			return nil, err
		}
		lanes[i] = &lane{e: e, s: s}
	}
	tokens := make([]int, capacity)
	for i := range tokens {
		tokens[i] = 3 + rng.IntN(engines[0].Model.Vocab-3)
	}
	if prog != nil {
		prog.Grow(float64(len(engines) * (maxD + len(depths)*reps*n)))
	}
	var rows []SpeedRow
	for _, d := range depths {
		for _, l := range lanes {
			for l.pos < d {
				end := min(d, l.pos+512)
				if _, err := l.s.State.Forward(l.s.Cache, tokens[l.pos:end], l.pos); err != nil {
					return nil, err
				}
				if prog != nil {
					prog.Add(float64(end-l.pos), fmt.Sprintf("filling to depth %d", d))
				}
				l.pos = end
			}
		}
		speeds := make([][]float64, len(lanes))
		for r := 0; r < reps+1; r++ { // the first repetition is a warm-up
			for i, l := range lanes {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				t0 := time.Now()
				for k := 0; k < n; k++ {
					if _, err := l.s.Step(tokens[d+k], d+k); err != nil {
						return nil, err
					}
				}
				if r > 0 {
					speeds[i] = append(speeds[i], float64(n)/time.Since(t0).Seconds())
				}
				l.s.Cache.Truncate(d)
				if prog != nil && r > 0 {
					prog.Add(float64(n), fmt.Sprintf("decoding at depth %d", d))
				}
			}
		}
		for i, l := range lanes {
			ratios := make([]float64, reps)
			for r := range ratios {
				ratios[r] = speeds[i][r] / speeds[0][r]
			}
			c := l.e.Model.Config
			macs := int64(c.Layers) * int64(c.Heads) * int64(d) * int64(2*c.HeadDim)
			if c.IsMLA() {
				macs = int64(c.Layers) * int64(c.Heads) * int64(d) * int64(2*c.KVLoraRank+c.RopeDims)
			}
			rows = append(rows, SpeedRow{Label: labels[i], Depth: d, TokPerSec: median(speeds[i]), VsFirst: median(ratios),
				WeightBytes: l.e.WeightBytesPerToken(), KVBytes: kvAt(l.s.Cache), AttnMACs: macs})
		}
	}
	return rows, nil
}

// kvAt is the cache's bytes (what a decode step's attention reads).
func kvAt(c *kv.Cache) int64 { return c.Bytes() }

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
