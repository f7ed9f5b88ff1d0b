package model

import (
	"fmt"

	"github.com/kvgo/kvgo/kv"
)

// ForwardLayersAt runs tokens at the given positions through the first
// layers layers only, as ForwardAt does (held positions are overwritten),
// storing their keys and values in those layers of cache and computing no
// logits. CacheBlend recomputes every token of reused chunks up to its
// check layer this way, to compare fresh values with the spliced ones
// before it chooses the few tokens that run through the rest. When keep
// is not nil it receives each token's residual stream after the last of
// those layers (valid during the call), from which ForwardAtFrom carries
// the chosen tokens on without computing those layers again.
func (s *State) ForwardLayersAt(cache *kv.Cache, tokens []int, pos []int32, layers int, keep func(i int, x []float32)) error {
	if layers < 1 || layers > len(s.m.Layers) {
		return fmt.Errorf("model: %d layers of %d", layers, len(s.m.Layers))
	}
	s.layers, s.kept = layers, keep
	defer func() { s.layers, s.kept = 0, nil }()
	return s.ForwardAt(cache, tokens, pos, len(tokens), func(int, []float32) error { return nil })
}

// ForwardAtFrom is ForwardAt for tokens that ForwardLayersAt already ran
// through the layers before first: hidden holds their residual streams
// after layer first-1 (len(tokens) rows of Embd values), and only layers
// first and later are computed and stored. Their keys and values in the
// earlier layers must be in cache already (they are: ForwardLayersAt
// stored them), so each token's outputs are those of ForwardAt. The
// tokens are needed only for their count.
func (s *State) ForwardAtFrom(cache *kv.Cache, tokens []int, pos []int32, hidden []float32, first, from int, fn func(i int, logits []float32) error) error {
	if first < 1 || first >= len(s.m.Layers) {
		return fmt.Errorf("model: starting layer %d of %d", first, len(s.m.Layers))
	}
	if len(hidden) != len(tokens)*s.m.Embd {
		return fmt.Errorf("model: %d hidden values for %d tokens of %d", len(hidden), len(tokens), s.m.Embd)
	}
	s.first, s.hidden = first, hidden
	defer func() { s.first, s.hidden = 0, nil }()
	return s.ForwardAt(cache, tokens, pos, from, fn)
}
