package sched

import (
	"github.com/kvgo/kvgo/kv"
)

// PrefixCache hands out caches that already hold the KV of a prompt's
// beginning, so a multi-turn chat does not prefill its shared history
// again. The scheduler calls it from its own goroutine only, so an
// implementation needs no locking.
//
// Keys are canonical recipe strings: a cache is only ever reused by a
// sequence with the same recipe. The scheduler only uses a prefix cache for
// recipes without an evictor, whose caches hold every position of their
// tokens, so that a cache holding tokens[:n] is exactly the prefill of
// those n tokens.
type PrefixCache interface {
	// Acquire returns a cache of its own (the caller may extend and must
	// Release it) that holds the KV of prompt[:n], with 0 < n < len(prompt)
	// so that at least one prompt token is computed for logits, or nil.
	Acquire(key string, prompt []int) (c *kv.Cache, n int)
	// Offer hands over the cache of a finished sequence and the tokens
	// whose KV it holds (tokens[i] at position i). The prefix cache keeps
	// it, or releases it.
	Offer(key string, tokens []int, c *kv.Cache)
	// Bytes is the memory the prefix cache holds: its share of pages it
	// shares with running sequences (kv.Cache.OwnedBytes), counted in the
	// scheduler's KV budget.
	Bytes() int64
	// Shrink releases entries, least recently used first, until at least
	// need bytes are freed or nothing is left; it returns the bytes freed.
	Shrink(need int64) int64
}

// Prefixes is a PrefixCache that keeps the caches of finished sequences
// whole and forks them (kv.Cache.Fork: shared pages, reference-counted,
// copy-on-write) when a new prompt starts with the same tokens.
//
// Lookup is a scan for the longest common prefix over at most MaxEntries
// entries; a radix tree pays off only with many more entries than a
// CPU server keeps.
type Prefixes struct {
	// MinTokens is the shortest prefix worth reusing (default 16): forking
	// copies per-token state, which a short prefix does not repay.
	MinTokens int
	// MaxEntries bounds the number of cached sequences (default 64).
	MaxEntries int

	entries []*prefixEntry
	clock   uint64
}

type prefixEntry struct {
	key    string
	tokens []int
	cache  *kv.Cache
	used   uint64
}

// NewPrefixes returns an empty prefix cache with default limits.
func NewPrefixes() *Prefixes { return &Prefixes{MinTokens: 16, MaxEntries: 64} }

func commonPrefix(a, b []int) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// Acquire implements PrefixCache.
func (p *Prefixes) Acquire(key string, prompt []int) (*kv.Cache, int) {
	var best *prefixEntry
	bestN := 0
	for _, e := range p.entries {
		if e.key != key {
			continue
		}
		if n := min(commonPrefix(e.tokens, prompt), len(prompt)-1); n > bestN {
			best, bestN = e, n
		}
	}
	if best == nil || bestN < max(p.MinTokens, 1) {
		return nil, 0
	}
	p.clock++
	best.used = p.clock
	c := best.cache.Fork()
	if c.NextPos() > bestN {
		c.Truncate(bestN)
	}
	return c, bestN
}

// Offer implements PrefixCache.
func (p *Prefixes) Offer(key string, tokens []int, c *kv.Cache) {
	n := min(len(tokens), c.NextPos())
	if n < max(p.MinTokens, 1) {
		c.Release()
		return
	}
	tokens = tokens[:n]
	for _, e := range p.entries {
		if e.key == key && commonPrefix(e.tokens, tokens) == n {
			// Already covered by an entry at least as long.
			c.Release()
			return
		}
	}
	out := p.entries[:0]
	for _, e := range p.entries {
		if e.key == key && commonPrefix(e.tokens, tokens) == len(e.tokens) {
			// The new sequence extends this entry: it supersedes it.
			e.cache.Release()
			continue
		}
		out = append(out, e)
	}
	clear(p.entries[len(out):])
	p.entries = out
	p.clock++
	p.entries = append(p.entries, &prefixEntry{key: key, tokens: append([]int(nil), tokens...), cache: c, used: p.clock})
	limit := p.MaxEntries
	if limit <= 0 {
		limit = 64
	}
	for len(p.entries) > limit {
		p.dropLRU()
	}
}

// Bytes implements PrefixCache.
func (p *Prefixes) Bytes() int64 {
	var b int64
	for _, e := range p.entries {
		b += e.cache.OwnedBytes()
	}
	return b
}

// Shrink implements PrefixCache.
func (p *Prefixes) Shrink(need int64) int64 {
	var freed int64
	for freed < need && len(p.entries) > 0 {
		freed += p.dropLRU()
	}
	return freed
}

// Len is the number of cached sequences.
func (p *Prefixes) Len() int { return len(p.entries) }

// dropLRU releases the least recently used entry and returns its bytes.
func (p *Prefixes) dropLRU() int64 {
	lru := 0
	for i, e := range p.entries {
		if e.used < p.entries[lru].used {
			lru = i
		}
	}
	e := p.entries[lru]
	b := e.cache.OwnedBytes()
	e.cache.Release()
	last := len(p.entries) - 1
	copy(p.entries[lru:], p.entries[lru+1:])
	p.entries[last] = nil
	p.entries = p.entries[:last]
	return b
}
