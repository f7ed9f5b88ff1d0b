// Package evict holds the KV-cache methods that keep fewer tokens:
// StreamingLLM, H2O, TOVA, SnapKV, PyramidKV and KVCrush. Each is a
// kv.Evictor that deletes tokens from the cache's streams, freeing their
// memory, rather than masking them.
package evict

import "github.com/kvgo/kvgo/kv"

// Methods are the evictors of this package as recipe entries.
var Methods = []kv.Method{}
