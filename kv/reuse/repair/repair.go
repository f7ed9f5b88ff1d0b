// Package repair holds the chunk-repair policies (kv.RepairMethod): how a
// request reuses the caches of its prompt's chunks and which of their
// tokens it computes again. Each policy is a file with its recipe entry;
// Methods lists them for kv/recipe's registry. The engine does the work
// (engine/chunks.go): it splices each reused chunk at its new positions,
// asks the policy which tokens to recompute, and runs them with the
// tokens after the last chunk, which are always computed.
//
// Stacked with a codec, a policy reuses chunk caches stored in that codec:
// "cachecraft+kivi(bits=4)" keeps KIVI-4 chunks.
package repair

import (
	"math"
	"sort"

	"github.com/kvgo/kvgo/kv"
)

// Methods are the repair policies a recipe may name.
var Methods = []kv.Method{fullMethod, prefixMethod, naiveMethod, cacheBlendMethod, epicMethod, cacheCraftMethod}

// all returns 0..n-1.
func all(n int) []int {
	x := make([]int, n)
	for i := range x {
		x[i] = i
	}
	return x
}

// top returns the indexes of the m largest scores, increasing; ties go to
// the earlier token.
func top(score []float32, m int) []int {
	n := len(score)
	if m >= n {
		return all(n)
	}
	if m <= 0 {
		return nil
	}
	idx := all(n)
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
	idx = idx[:m]
	sort.Ints(idx)
	return idx
}

// count is ⌈f·n⌉ clamped to 0..n.
func count(f float64, n int) int {
	m := int(math.Ceil(f*float64(n) - 1e-9))
	return max(0, min(n, m))
}
