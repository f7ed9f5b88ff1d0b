// Package prefix reuses the KV cache of earlier requests whose tokens
// begin the same way as a new prompt: a multi-turn chat does not prefill
// its shared history again. Stored caches are forks (kv.Cache.Fork), so a
// reused prefix shares its pages with the store, reference counted and
// copied on write.
//
// Only caches that hold every token of their prefix can be reused; a
// cache compressed by an evictor depends on the whole prompt it saw, so
// callers store only recipes without eviction.
package prefix

import (
	"sync"

	"github.com/kvgo/kvgo/kv"
)

// Store holds prefix caches up to a memory budget, least recently used
// first out. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	budget  int64
	entries []*entry // most recently used last
	clock   uint64
	hits    uint64
	misses  uint64
}

type entry struct {
	key    string // recipe
	tokens []int
	cache  *kv.Cache
	used   uint64
}

// New returns a store that keeps at most budget bytes of caches (counted
// as kv.Cache.OwnedBytes of the stored forks).
func New(budget int64) *Store { return &Store{budget: budget} }

// Lookup finds the stored cache with the longest common prefix with
// tokens under the same recipe key. It returns a fork truncated to that
// prefix, and the prefix length; it always leaves at least one token of
// tokens to compute, so the caller gets logits. (nil, 0) means a miss.
func (s *Store) Lookup(key string, tokens []int) (*kv.Cache, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *entry
	bestN := 0
	for _, e := range s.entries {
		if e.key != key {
			continue
		}
		n := commonPrefix(e.tokens, tokens)
		if n > bestN {
			best, bestN = e, n
		}
	}
	bestN = min(bestN, len(tokens)-1)
	if best == nil || bestN <= 0 {
		s.misses++
		return nil, 0
	}
	s.hits++
	s.clock++
	best.used = s.clock
	c := best.cache.Fork()
	c.Truncate(bestN)
	return c, bestN
}

// Insert stores a fork of c as the cache of tokens (the prompt and what
// was generated; c must hold exactly these tokens at positions 0..n-1).
// An entry whose tokens are a prefix of the new ones is replaced by it.
func (s *Store) Insert(key string, tokens []int, c *kv.Cache) {
	if len(tokens) == 0 || c.NextPos() != len(tokens) {
		return
	}
	f := c.Fork()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock++
	kept := s.entries[:0]
	for _, e := range s.entries {
		if e.key == key && len(e.tokens) <= len(tokens) && commonPrefix(e.tokens, tokens) == len(e.tokens) {
			e.cache.Release()
			continue
		}
		kept = append(kept, e)
	}
	clear(s.entries[len(kept):])
	s.entries = append(kept, &entry{key: key, tokens: append([]int(nil), tokens...), cache: f, used: s.clock})
	s.evict()
}

// evict drops least recently used entries until the store fits its budget.
func (s *Store) evict() {
	for len(s.entries) > 0 && s.bytesLocked() > s.budget {
		oldest := 0
		for i, e := range s.entries {
			if e.used < s.entries[oldest].used {
				oldest = i
			}
		}
		s.entries[oldest].cache.Release()
		s.entries = append(s.entries[:oldest], s.entries[oldest+1:]...)
	}
}

func (s *Store) bytesLocked() int64 {
	var b int64
	for _, e := range s.entries {
		b += e.cache.OwnedBytes()
	}
	return b
}

// Bytes is the memory the store's caches own.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytesLocked()
}

// Stats reports lookups that found a prefix and those that did not.
func (s *Store) Stats() (hits, misses uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits, s.misses
}

// Len is the number of stored caches.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func commonPrefix(a, b []int) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
