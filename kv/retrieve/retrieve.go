// Package retrieve holds the KV methods that keep every token and choose,
// at each decode step, which pages attention reads (kv.Selector): nothing
// is lost for good, and a step reads a fraction of a long cache.
//
// Conventions shared by the selectors of this package:
//
//   - A read budget counts every token a decode step reads in a stream: the
//     pages a selector always reads (sinks, the recent window), the pages
//     it chooses, and the tokens not yet sealed into a page (the tail of a
//     group codec such as KIVI), which attention always reads.
//   - A fractional budget is a fraction of the prompt announced to the cache
//     (kv.SelectView.Prompt), as for evictors; without an announced prompt
//     it is a fraction of the tokens the stream holds.
//   - Ties between pages of equal score go to the more recent page, so every
//     choice is deterministic.
//   - Select does not allocate once its scratch has grown to the cache's
//     size: scratch comes from a sync.Pool, not from state kept per
//     (layer, KV head), because a cache's Fork shares its selector and the
//     scheduler runs forked sequences in the same pass.
package retrieve

import (
	"fmt"
	"sync/atomic"

	"github.com/kvgo/kvgo/kv"
)

// Methods are the selectors of this package as recipe entries.
var Methods = []kv.Method{windowMethod, questMethod, actqkvMethod}

// ReadStats is what a selector's decode steps read, summed over every Select
// call (one per stream and decode step): Calls, the tokens attention read,
// and the tokens the streams held. Read/Held is the fraction of the cache a
// step reads; Read/Calls the tokens one stream reads per step.
type ReadStats struct {
	Calls, Read, Held int64
}

// Reads returns the read statistics of a selector of this package, and
// false for a selector that does not count them.
func Reads(s kv.Selector) (ReadStats, bool) {
	c, ok := s.(interface{ Reads() ReadStats })
	if !ok {
		return ReadStats{}, false
	}
	return c.Reads(), true
}

// readCounter counts reads; safe for the parallel Select calls of one cache.
type readCounter struct {
	calls, read, held atomic.Int64
}

func (c *readCounter) add(read, held int) {
	c.calls.Add(1)
	c.read.Add(int64(read))
	c.held.Add(int64(held))
}

// Reads returns the statistics counted so far.
func (c *readCounter) Reads() ReadStats {
	return ReadStats{Calls: c.calls.Load(), Read: c.read.Load(), Held: c.held.Load()}
}

// checkBudget refuses a token budget larger than the context: such a
// selector reads every token, and the recipe is the full cache spelled
// otherwise.
func checkBudget(b kv.Budget, capacity int) error {
	if b.Tokens > capacity {
		return fmt.Errorf("read budget of %d tokens exceeds the context of %d tokens; use a smaller budget or a fraction of the prompt (budget=1.0 reads everything)", b.Tokens, capacity)
	}
	return nil
}

// resolve is the read budget in tokens for a stream at a decode step.
func resolve(b kv.Budget, v *kv.SelectView) int {
	n := v.Prompt
	if n == 0 {
		n = v.Stream.Len()
	}
	return b.Resolve(n)
}

// readTokens counts the tokens of the pages marked in read, plus the tail.
func readTokens(s *kv.Stream, read []bool, paged int) int {
	n := s.Len() - paged
	for i, r := range read {
		if r {
			n += s.PageLen(i)
		}
	}
	return n
}

// ends returns the pages always read: [0, head) holds the first sinks
// tokens and [tail, pages) with the unsealed tail the last recent tokens
// (head <= tail).
func ends(s *kv.Stream, sinks, recent, paged int) (head, tail int) {
	n := s.Pages()
	for t := 0; head < n && t < sinks; head++ {
		t += s.PageLen(head)
	}
	tail = n
	for t := s.Len() - paged; tail > head && t < recent; {
		tail--
		t += s.PageLen(tail)
	}
	return head, tail
}

// better orders candidates: higher score first, ties to the larger index.
func better(score []float32, a, b int32) bool {
	sa, sb := score[a], score[b]
	return sa > sb || (sa == sb && a > b)
}

// topK reorders idx so that its first k entries are the k best by score
// (better), in expected O(len(idx)) (quickselect with a median-of-three
// pivot); it allocates nothing.
func topK(score []float32, idx []int32, k int) {
	lo, hi := 0, len(idx)-1
	if k <= 0 || k >= len(idx) {
		return
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three to the end as pivot.
		if better(score, idx[mid], idx[lo]) {
			idx[mid], idx[lo] = idx[lo], idx[mid]
		}
		if better(score, idx[hi], idx[lo]) {
			idx[hi], idx[lo] = idx[lo], idx[hi]
		}
		if better(score, idx[mid], idx[hi]) {
			idx[mid], idx[hi] = idx[hi], idx[mid]
		}
		p := idx[hi]
		st := lo
		for i := lo; i < hi; i++ {
			if better(score, idx[i], p) {
				idx[i], idx[st] = idx[st], idx[i]
				st++
			}
		}
		idx[st], idx[hi] = idx[hi], idx[st]
		switch {
		case st == k || st == k-1:
			return
		case st < k:
			lo = st + 1
		default:
			hi = st - 1
		}
	}
}
