package sched

import (
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
)

// PrefixCache hands out caches that already hold the KV of a prompt's
// beginning, so a multi-turn chat does not prefill its shared history
// again. kv/reuse/prefix.Store implements it. The scheduler calls it from
// its own goroutine only, so an implementation needs no locking.
//
// Keys name the model (engine.Engine.Identity, computed once by New) and
// the canonical recipe: a cache is only ever reused by a sequence of the
// same model and recipe. The scheduler only uses a prefix cache for
// recipes without an evictor, whose caches hold every position of their
// tokens, so that a cache holding tokens[:n] is exactly the prefill of
// those n tokens.
type PrefixCache interface {
	// Acquire returns a cache of its own (the caller may extend and must
	// Release it) that holds the KV of prompt[:n], with 0 < n < len(prompt)
	// so that at least one prompt token is computed for logits, or nil.
	Acquire(key prefix.Key, prompt []int) (c *kv.Cache, n int)
	// Offer hands over the cache of a finished sequence and the tokens
	// whose KV it holds (tokens[i] at position i). The prefix cache keeps
	// it, or releases it.
	Offer(key prefix.Key, tokens []int, c *kv.Cache)
	// Bytes is the memory the prefix cache holds: its share of pages it
	// shares with running sequences (kv.Cache.OwnedBytes), counted in the
	// scheduler's KV budget.
	Bytes() int64
	// Shrink releases entries, least recently used first, until at least
	// need bytes are freed or nothing is left; it returns the bytes freed.
	Shrink(need int64) int64
}

var _ PrefixCache = (*prefix.Store)(nil)
