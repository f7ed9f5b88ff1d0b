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
// before it chooses the few tokens that run through the rest.
func (s *State) ForwardLayersAt(cache *kv.Cache, tokens []int, pos []int32, layers int) error {
	if layers < 1 || layers > len(s.m.Layers) {
		return fmt.Errorf("model: %d layers of %d", layers, len(s.m.Layers))
	}
	s.layers = layers
	defer func() { s.layers = 0 }()
	return s.ForwardAt(cache, tokens, pos, len(tokens), func(int, []float32) error { return nil })
}
