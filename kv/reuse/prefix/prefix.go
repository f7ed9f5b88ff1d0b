// Package prefix reuses the KV cache of earlier requests whose tokens
// begin the same way as a new prompt: a multi-turn chat does not prefill
// its shared history again. Stored caches are kept whole and handed out as
// forks (kv.Cache.Fork), so a reused prefix shares its pages with the
// store, reference counted and copied on write.
//
// Entries are keyed by the model's identity, the canonical recipe and the
// tokens: a cache is only ever reused by a sequence of the same model
// (weights and hyper-parameters, engine.Engine.Identity) and the same
// recipe, whose prompt starts with the cache's tokens.
//
// Only caches that hold every token of their prefix can be reused; a
// cache compressed by an evictor depends on the whole prompt it saw, so
// callers store only recipes without eviction.
//
// The Store is the scheduler's prefix cache (engine/sched.PrefixCache).
package prefix

import (
	"github.com/kvgo/kvgo/kv"
)

// Key says whose caches may be reused by whom: both fields must match.
type Key struct {
	// Model identifies the model that computed the KV
	// (engine.Engine.Identity). A key without one is never stored.
	Model string
	// Recipe is the canonical recipe string (recipe.Recipe.String).
	Recipe string
	// Tenant isolates stored caches between the server's tenants (an API
	// key or a request's cache_salt): a shared prefix cache leaks through
	// timing, so one tenant never gets another's cached tokens. Empty is
	// the one tenant of a server without keys or salts.
	Tenant string
}

// Store keeps the caches of finished sequences and forks them when a new
// prompt starts with the same tokens. Its memory is counted and reclaimed
// by its owner (Bytes, Shrink): the scheduler counts it in its KV budget.
//
// A Store is not safe for concurrent use: the scheduler's loop, which owns
// every cache, is its only user. Lookup is a scan for the longest common
// prefix over at most MaxEntries entries; a radix tree pays off only with
// many more entries than a CPU server keeps.
type Store struct {
	// MinTokens is the shortest prefix worth reusing (default 16): forking
	// copies per-token state, which a short prefix does not repay.
	MinTokens int
	// MaxEntries bounds the number of stored sequences (default 64).
	MaxEntries int

	entries []*entry
	clock   uint64
}

type entry struct {
	key    Key
	tokens []int
	cache  *kv.Cache
	used   uint64
}

// New returns an empty store with the default limits.
func New() *Store { return &Store{MinTokens: 16, MaxEntries: 64} }

func (s *Store) minTokens() int { return max(s.MinTokens, 1) }

func (s *Store) maxEntries() int {
	if s.MaxEntries <= 0 {
		return 64
	}
	return s.MaxEntries
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

// Acquire returns a cache of the caller's own (to extend, and to Release
// or Offer back) that holds the KV of prompt[:n], from the entry of the
// same key with the longest common prefix. n < len(prompt), so that at
// least one prompt token is computed for logits, and n >= MinTokens;
// otherwise it returns (nil, 0).
func (s *Store) Acquire(key Key, prompt []int) (*kv.Cache, int) {
	if key.Model == "" {
		return nil, 0
	}
	var best *entry
	bestN := 0
	for _, e := range s.entries {
		if e.key != key {
			continue
		}
		if n := min(commonPrefix(e.tokens, prompt), len(prompt)-1); n > bestN {
			best, bestN = e, n
		}
	}
	if best == nil || bestN < s.minTokens() {
		return nil, 0
	}
	s.clock++
	best.used = s.clock
	c := best.cache.Fork()
	if c.NextPos() > bestN {
		c.Truncate(bestN)
	}
	return c, bestN
}

// Offer takes over the cache of a finished sequence and the tokens whose
// KV it holds (tokens[i] at position i; tokens past c.NextPos are
// ignored). The store keeps it, replacing the entries it extends, or
// releases it: when it is shorter than MinTokens, when an entry of the
// same key already covers its tokens, or when key has no model.
func (s *Store) Offer(key Key, tokens []int, c *kv.Cache) {
	n := min(len(tokens), c.NextPos())
	if key.Model == "" || n < s.minTokens() {
		c.Release()
		return
	}
	tokens = tokens[:n]
	for _, e := range s.entries {
		if e.key == key && commonPrefix(e.tokens, tokens) == n {
			// Already covered by an entry at least as long.
			c.Release()
			return
		}
	}
	kept := s.entries[:0]
	for _, e := range s.entries {
		if e.key == key && commonPrefix(e.tokens, tokens) == len(e.tokens) {
			// The new sequence extends this entry: it supersedes it.
			e.cache.Release()
			continue
		}
		kept = append(kept, e)
	}
	clear(s.entries[len(kept):])
	s.entries = kept
	s.clock++
	s.entries = append(s.entries, &entry{key: key, tokens: append([]int(nil), tokens...), cache: c, used: s.clock})
	for len(s.entries) > s.maxEntries() {
		s.dropLRU()
	}
}

// Bytes is the memory the store holds: its caches' share of the pages
// they share with running sequences (kv.Cache.OwnedBytes).
func (s *Store) Bytes() int64 {
	var b int64
	for _, e := range s.entries {
		b += e.cache.OwnedBytes()
	}
	return b
}

// Shrink releases entries, least recently used first, until at least
// need bytes are freed or the store is empty; it returns the bytes freed.
func (s *Store) Shrink(need int64) int64 {
	var freed int64
	for freed < need && len(s.entries) > 0 {
		freed += s.dropLRU()
	}
	return freed
}

// Len is the number of stored sequences.
func (s *Store) Len() int { return len(s.entries) }

// dropLRU releases the least recently used entry and returns its bytes.
func (s *Store) dropLRU() int64 {
	lru := 0
	for i, e := range s.entries {
		if e.used < s.entries[lru].used {
			lru = i
		}
	}
	e := s.entries[lru]
	b := e.cache.OwnedBytes()
	e.cache.Release()
	last := len(s.entries) - 1
	copy(s.entries[lru:], s.entries[lru+1:])
	s.entries[last] = nil
	s.entries = s.entries[:last]
	return b
}
