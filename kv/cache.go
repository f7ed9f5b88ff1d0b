// Package kv owns every byte of cached keys and values. The model writes a
// batch's keys and values into a Cache and asks the Cache to attend; it
// never sees how tokens are stored. Each (layer, KV head) is a Stream of
// pages in some Codec; an Evictor decides which tokens a stream keeps.
// Compression, eviction and reuse methods plug in here.
package kv

import (
	"errors"
	"fmt"
	"math"
)

// Shape is the geometry of a model's cache.
type Shape struct {
	Layers  int
	KVHeads int
	HeadDim int
}

// Streams is the number of (layer, KV head) streams.
func (s Shape) Streams() int { return s.Layers * s.KVHeads }

// Config says how a cache stores and selects tokens.
type Config struct {
	K, V Codec
	// Evictor, if set, chooses which tokens to keep.
	Evictor Evictor
	// Selector, if set, chooses the pages each decode step reads.
	Selector Selector
}

// ErrFull is returned when a batch does not fit in the cache's capacity.
var ErrFull = errors.New("kv: cache is full")

// Cache is the key/value cache of one sequence. Keys are stored after RoPE
// with each token's absolute position, so that positions survive eviction
// and reused tokens can be re-rotated.
type Cache struct {
	shape    Shape
	cfg      Config
	capacity int
	streams  []*Stream // layer*KVHeads + head
	scale    float32

	batch   []int32 // positions of the current batch
	next    int32   // one past the largest position seen
	prefill bool    // staging a prompt for the evictor
	obsFrom int32   // collect attention of queries at positions >= obsFrom (prefill)
	observe bool    // collect the current step's attention (decode)
	promptN int
	views   []LayerView // per layer, made on first use
}

// New returns an empty cache for a sequence of up to capacity positions.
// Memory grows with the tokens actually kept.
func New(shape Shape, cfg Config, capacity int) (*Cache, error) {
	if shape.Layers <= 0 || shape.KVHeads <= 0 || shape.HeadDim <= 0 {
		return nil, fmt.Errorf("kv: invalid shape %+v", shape)
	}
	if capacity <= 0 {
		return nil, fmt.Errorf("kv: capacity %d must be positive", capacity)
	}
	if cfg.K == nil || cfg.V == nil {
		return nil, errors.New("kv: config needs a key and a value codec")
	}
	c := &Cache{
		shape: shape, cfg: cfg, capacity: capacity,
		scale: float32(1 / math.Sqrt(float64(shape.HeadDim))),
	}
	c.streams = make([]*Stream, shape.Streams())
	for i := range c.streams {
		c.streams[i] = newStream(shape.HeadDim, cfg.K, cfg.V)
		c.streams[i].track = cfg.Evictor != nil
	}
	return c, nil
}

// Shape returns the cache geometry.
func (c *Cache) Shape() Shape { return c.shape }

// Config returns how the cache stores and selects tokens.
func (c *Cache) Config() Config { return c.cfg }

// Capacity is the number of positions the sequence may use.
func (c *Cache) Capacity() int { return c.capacity }

// NextPos is one past the largest position stored so far: where the next
// token of the sequence goes.
func (c *Cache) NextPos() int { return int(c.next) }

// Len is the number of tokens in the fullest stream.
func (c *Cache) Len() int {
	n := 0
	for _, s := range c.streams {
		n = max(n, s.Len())
	}
	return n
}

// Tokens is the total number of (token, stream) entries held.
func (c *Cache) Tokens() int {
	n := 0
	for _, s := range c.streams {
		n += s.Len()
	}
	return n
}

// Stream returns the stream of (layer, kvHead).
func (c *Cache) Stream(layer, kvHead int) *Stream { return c.streams[layer*c.shape.KVHeads+kvHead] }

// Bytes is the memory held by the cache's keys, values and positions.
func (c *Cache) Bytes() int64 {
	var b int64
	for _, s := range c.streams {
		b += s.Bytes()
	}
	return b
}

// LayerBytes is the memory of one layer's streams.
func (c *Cache) LayerBytes(layer int) int64 {
	var b int64
	for h := 0; h < c.shape.KVHeads; h++ {
		b += c.Stream(layer, h).Bytes()
	}
	return b
}

// BeginPrefill announces a prompt of n tokens. With an evictor, the prompt
// is staged in full precision until EndPrefill lets the evictor choose
// what to keep, and the attention of the prompt's last queries (the
// evictor's observation window) is collected on the way.
func (c *Cache) BeginPrefill(n int) {
	c.promptN = n
	ev := c.cfg.Evictor
	if ev == nil {
		return
	}
	c.prefill = true
	w := ev.Window()
	switch {
	case w < 0 || w >= n:
		c.obsFrom = c.next
	case w == 0:
		c.obsFrom = math.MaxInt32
	default:
		c.obsFrom = c.next + int32(n-w)
	}
}

// EndPrefill runs the evictor's prefill selection on every layer and
// encodes what it kept.
func (c *Cache) EndPrefill() {
	if !c.prefill {
		return
	}
	c.prefill = false
	c.obsFrom = math.MaxInt32
	for l := 0; l < c.shape.Layers; l++ {
		c.cfg.Evictor.AfterPrefill(c.layerView(l), c.promptN)
	}
	for _, s := range c.streams {
		clear(s.obs)
		s.seal(s.residual)
		s.shrinkTail()
	}
}

// layerView is what the evictor sees of layer l; the views are made once
// so that decode steps do not allocate.
func (c *Cache) layerView(l int) *LayerView {
	if c.views == nil {
		c.views = make([]LayerView, c.shape.Layers)
		for i := range c.views {
			c.views[i] = LayerView{Layer: i, Layers: c.shape.Layers, Streams: c.streams[i*c.shape.KVHeads : (i+1)*c.shape.KVHeads]}
		}
	}
	v := &c.views[l]
	v.Prompt = c.promptN
	return v
}

// Begin starts a batch of tokens at the given positions; every layer then
// Stores the batch's keys and values before it Attends, and End closes the
// batch.
func (c *Cache) Begin(pos []int32) error {
	for _, p := range pos {
		if p < 0 || int(p) >= c.capacity {
			return fmt.Errorf("%w: position %d is outside the context of %d tokens", ErrFull, p, c.capacity)
		}
	}
	c.batch = append(c.batch[:0], pos...)
	for _, p := range pos {
		c.next = max(c.next, p+1)
	}
	c.observe = !c.prefill && c.cfg.Evictor != nil && c.cfg.Evictor.StepStats()
	return nil
}

// Store appends the current batch's keys and values of one layer: k and v
// hold one row of KVHeads*HeadDim values per token of the batch.
func (c *Cache) Store(layer int, k, v []float32) {
	d, H := c.shape.HeadDim, c.shape.KVHeads
	n := len(c.batch)
	if len(k) != n*H*d || len(v) != n*H*d {
		panic(fmt.Sprintf("kv: Store got %d/%d values, want %d", len(k), len(v), n*H*d))
	}
	for h := 0; h < H; h++ {
		s := c.Stream(layer, h)
		for i := 0; i < n; i++ {
			off := i*H*d + h*d
			s.append(k[off:off+d], v[off:off+d], c.batch[i], !c.prefill)
		}
	}
}

// Attend computes causal attention of g query heads q (g*HeadDim values,
// after RoPE) that share kvHead, for a token at position qpos, over the
// tokens of (layer, kvHead) whose position is <= qpos. out receives
// g*HeadDim values. Calls for different (layer, kvHead, token) may run in
// parallel, each with its own Scratch.
func (c *Cache) Attend(layer, kvHead int, q []float32, g int, qpos int32, out []float32, sc *Scratch) {
	collect := c.observe || (c.prefill && qpos >= c.obsFrom)
	c.Stream(layer, kvHead).attend(q, g, qpos, c.scale, out, sc, collect)
}

// End closes a batch. After a decode step the evictor may drop tokens.
func (c *Cache) End() {
	if c.prefill || c.cfg.Evictor == nil {
		return
	}
	for l := 0; l < c.shape.Layers; l++ {
		c.cfg.Evictor.AfterStep(c.layerView(l))
	}
	if c.observe {
		for _, s := range c.streams {
			clear(s.obs)
		}
	}
}

// Truncate drops every token at position >= pos (rollback).
func (c *Cache) Truncate(pos int) {
	for _, s := range c.streams {
		keep := make([]bool, s.Len())
		any := false
		for i, p := range s.pos {
			keep[i] = int(p) < pos
			any = any || !keep[i]
		}
		if any {
			s.Keep(keep)
		}
	}
	c.next = min(c.next, int32(pos))
}

// FullF16Bytes is what a cache with the F16 codec and no eviction holds for
// n tokens: the baseline of every compression ratio.
func FullF16Bytes(s Shape, n int) int64 {
	pages := (n + PageTokens - 1) / PageTokens
	perStream := int64(pages*PageTokens)*int64(2*s.HeadDim*2) + int64(n)*4
	return int64(s.Streams()) * perStream
}

// Fork returns a cache that shares this cache's pages: both see the same
// tokens, and a page is copied only when one of them changes it
// (copy-on-write). Prefix reuse forks a cached prompt instead of computing
// it again. Fork must not run while attention reads or writes c.
func (c *Cache) Fork() *Cache {
	f := *c
	f.batch = nil
	f.views = nil
	f.streams = make([]*Stream, len(c.streams))
	for i, s := range c.streams {
		f.streams[i] = s.fork()
	}
	return &f
}

// Release gives up the cache's claim on pages it shares with forks. The
// cache must not be used afterwards.
func (c *Cache) Release() {
	for _, s := range c.streams {
		s.release()
		s.pages = nil
		s.tk, s.tv, s.pos, s.obs, s.acc = nil, nil, nil, nil, nil
	}
}

// OwnedBytes is the cache's share of memory: pages shared by n caches
// count 1/n in each, so the sum over all live caches is the memory really
// held. Bytes counts shared pages in full.
func (c *Cache) OwnedBytes() int64 {
	var b int64
	for _, s := range c.streams {
		b += s.ownedBytes()
	}
	return b
}
