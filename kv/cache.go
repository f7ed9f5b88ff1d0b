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
	"slices"
	"sort"
)

// Shape is the geometry of a model's cache. Keys and values may have
// different widths, and the widths may differ per layer: a TransMLA cache
// holds per token a latent plus a shared rope key as its key and the latent
// as its value, in one KV head read by every query head, and stores the
// latent once (ValueInKey).
type Shape struct {
	Layers  int
	KVHeads int
	// HeadDim is the width of keys, and of values when ValueDim is 0.
	HeadDim  int
	ValueDim int
	// LayerDims, when set (one entry per layer), overrides HeadDim and
	// ValueDim layer by layer.
	LayerDims []Dims
	// Scale is the softmax scale of attention (0: 1/sqrt(key width)).
	Scale float32
	// ValueInKey says that each token's value is the first value-width
	// values of its key and is stored once, with the key: Multi-head
	// Latent Attention caches the latent c as both (key [c; rope key],
	// value c), so storing it twice would spend r of every r+d_R+r
	// values on a copy. The streams then hold keys only, in the key
	// codec (the value codec stores nothing), attention sums the stored
	// keys and hands out their first value-width values, and Store
	// ignores its values. Bytes and FullF16Bytes count the keys alone.
	ValueInKey bool
}

// Dims are the key and value widths of one layer's streams.
type Dims struct{ Key, Value int }

// Dims returns the key and value widths of a layer.
func (s Shape) Dims(layer int) Dims {
	if s.LayerDims != nil {
		return s.LayerDims[layer]
	}
	v := s.ValueDim
	if v == 0 {
		v = s.HeadDim
	}
	return Dims{Key: s.HeadDim, Value: v}
}

// Streams is the number of (layer, KV head) streams.
func (s Shape) Streams() int { return s.Layers * s.KVHeads }

func (s Shape) validate() error {
	if s.Layers <= 0 || s.KVHeads <= 0 {
		return fmt.Errorf("kv: invalid shape %+v", s)
	}
	if s.LayerDims != nil && len(s.LayerDims) != s.Layers {
		return fmt.Errorf("kv: shape has %d layers but %d layer widths", s.Layers, len(s.LayerDims))
	}
	for l := 0; l < s.Layers; l++ {
		if d := s.Dims(l); d.Key <= 0 || d.Value <= 0 {
			return fmt.Errorf("kv: layer %d has key width %d and value width %d", l, d.Key, d.Value)
		} else if s.ValueInKey && d.Value > d.Key {
			return fmt.Errorf("kv: layer %d stores values in keys but its value width %d exceeds its key width %d", l, d.Value, d.Key)
		}
	}
	if s.Scale < 0 || math.IsNaN(float64(s.Scale)) || math.IsInf(float64(s.Scale), 0) {
		return fmt.Errorf("kv: invalid attention scale %g", s.Scale)
	}
	return nil
}

// Config says how a cache stores and selects tokens.
type Config struct {
	K, V Codec
	// Evictor, if set, chooses which tokens to keep.
	Evictor Evictor
	// Selector, if set, chooses the pages each decode step reads.
	Selector Selector
	// Summaries keeps per-page key summaries (Stream.PageBounds) even
	// without a selector that asks for them.
	Summaries bool
	// RoPE is the model's rotary position encoding of keys, which the
	// cache needs to move stored tokens to other positions (Shift,
	// Splice); nil where the model hands none.
	RoPE Rotary
}

// Rotary is the model's position encoding of stored keys: Rotate turns the
// key of one KV head of a layer (as the cache stores it, after the
// encoding) by delta positions in place. For RoPE, rotations compose, so
// a key encoded at p and rotated by delta is the key encoded at p+delta;
// the model knows which of the key's dimensions rotate (all of a llama
// key, the rope part of an MLA key) and its frequency scaling.
type Rotary interface {
	Rotate(layer int, key []float32, delta int32)
}

// KeysRotary is a Rotary that also turns many keys of one layer by the
// same delta in one call: keys holds them one after another, width values
// each. Splice moves every token of a chunk by one delta, so the model
// computes the rotation's sines and cosines once for them all (per key,
// they cost more than the rotation on kvgo-tiny's 32-wide heads). The
// result is Rotate's on each key, exactly.
type KeysRotary interface {
	Rotary
	RotateKeys(layer int, keys []float32, width int, delta int32)
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

	batch     []int32      // positions of the current batch
	batchOver []bool       // per batch token: it overwrites a held position (see Begin)
	writes    []tokenWrite // Store's scratch for one stream's overwrites (overwrite.go)
	next      int32        // one past the largest position seen
	prefill   bool         // staging a prompt for the evictor
	promptEnd int32        // the position after the announced prompt
	obsFrom   int32        // collect attention of queries at positions >= obsFrom (prefill)
	observe   bool         // collect the current step's attention (decode)
	selecting bool         // the selector chooses the pages of this step
	promptN   int
	reader    PromptReader // the selector, when it reads the prompt
	views     []LayerView  // per layer, made on first use
	buf       []float32    // conversion scratch of Store and the stream operations
	peak      int64        // the most bytes seen at the end of a batch, before eviction
}

// New returns an empty cache for a sequence of up to capacity positions.
// Memory grows with the tokens actually kept.
func New(shape Shape, cfg Config, capacity int) (*Cache, error) {
	if err := shape.validate(); err != nil {
		return nil, err
	}
	if capacity <= 0 {
		return nil, fmt.Errorf("kv: capacity %d must be positive", capacity)
	}
	if cfg.K == nil || cfg.V == nil {
		return nil, errors.New("kv: config needs a key and a value codec")
	}
	if cs, ok := cfg.Selector.(CheckedSelector); ok {
		if err := cs.Check(capacity); err != nil {
			return nil, fmt.Errorf("kv: %s: %w", cs.Name(), err)
		}
	}
	c := &Cache{shape: shape, cfg: cfg, capacity: capacity, scale: shape.Scale}
	if c.scale == 0 {
		c.scale = float32(1 / math.Sqrt(float64(shape.Dims(0).Key)))
	}
	sums := cfg.Summaries || (cfg.Selector != nil && cfg.Selector.Summaries())
	c.reader, _ = cfg.Selector.(PromptReader)
	c.streams = make([]*Stream, shape.Streams())
	for i := range c.streams {
		d := shape.Dims(i / shape.KVHeads)
		c.streams[i] = newStream(d.Key, d.Value, cfg.K, cfg.V, shape.ValueInKey)
		c.streams[i].track = cfg.Evictor != nil
		c.streams[i].sums = sums
		c.streams[i].local = c.reader != nil && c.reader.LocalWindow() > 0
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

// Bytes is the memory held by the cache's keys, values and positions, and
// by its selector (a SizedSelector).
func (c *Cache) Bytes() int64 {
	var b int64
	for _, s := range c.streams {
		b += s.Bytes()
	}
	return b + c.selectorBytes()
}

// selectorBytes is the selector's own memory.
func (c *Cache) selectorBytes() int64 {
	if s, ok := c.cfg.Selector.(SizedSelector); ok {
		return s.Bytes()
	}
	return 0
}

// PeakBytes is the most memory the cache has held at the end of a batch,
// before its evictor chose (a staged prompt, a prompt batch before a
// rolling eviction), or now if that is more.
func (c *Cache) PeakBytes() int64 { return max(c.peak, c.Bytes()) }

// LayerBytes is the memory of one layer's streams.
func (c *Cache) LayerBytes(layer int) int64 {
	var b int64
	for h := 0; h < c.shape.KVHeads; h++ {
		b += c.Stream(layer, h).Bytes()
	}
	return b
}

// BeginPrefill announces a prompt of n tokens, the next n positions: the
// one call of the prefill protocol, which sessions, the scheduler and bench
// make alike. Fractional budgets refer to n. An evictor that needs the
// prompt's attention (its Bound is not Rolling) chooses what to keep when
// the batch holding the prompt's last position ends: until then the prompt
// is held in the codec's pages (per-token codecs) or in the F16 tail (group
// codecs), and the attention of its last queries (the evictor's
// observation window) is collected on the way. A Rolling evictor evicts
// after every batch of the prompt, so a long prompt never stays whole.
func (c *Cache) BeginPrefill(n int) {
	c.promptN = n
	c.promptEnd = c.next + int32(min(n, c.capacity))
	ev := c.cfg.Evictor
	if ev == nil || ev.Bound().Rolling {
		return
	}
	c.prefill = true
	// A group codec stages the prompt in its F16 tail: sized once, so
	// that append's growth does not over-allocate the peak by a quarter.
	for _, s := range c.streams {
		if s.group > 0 {
			t := s.tailLen() + int(c.promptEnd-c.next)
			s.tk = slices.Grow(s.tk, t*s.dk-len(s.tk))
			if !s.shared {
				s.tv = slices.Grow(s.tv, t*s.dv-len(s.tv))
			}
		}
	}
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

// Prefilling reports whether a prompt announced by BeginPrefill is still
// being staged for its evictor.
func (c *Cache) Prefilling() bool { return c.prefill }

// EndPrefill ends an announced prompt early, when fewer tokens than
// announced were fed: the evictor chooses among the tokens it has. After
// the prompt's last batch it does nothing (the cache has already ended it).
func (c *Cache) EndPrefill() {
	if c.prefill {
		c.endPrefill()
	}
}

// endPrefill runs the evictor's prefill selection on every layer and
// encodes what it kept.
func (c *Cache) endPrefill() {
	c.prefill = false
	c.obsFrom = math.MaxInt32
	for l := 0; l < c.shape.Layers; l++ {
		c.cfg.Evictor.AfterPrefill(c.layerView(l), c.promptN)
	}
	for _, s := range c.streams {
		clear(s.obs)
		s.pack(&c.buf, true)
		s.seal(s.residual, &c.buf)
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
// batch. A position after every stored one appends a token (they must come
// in increasing order); a position the cache already holds is overwritten
// with the batch's keys and values (CacheBlend's recompute of chosen
// tokens of a reused chunk), and must be held by every stream. Attention is
// causal by position, so a batch of positions scattered among stored
// tokens sees exactly the tokens before each.
func (c *Cache) Begin(pos []int32) error {
	last := c.next - 1
	c.batchOver = c.batchOver[:0]
	for _, p := range pos {
		if p < 0 || int(p) >= c.capacity {
			return fmt.Errorf("%w: position %d is outside the context of %d tokens", ErrFull, p, c.capacity)
		}
		if p > last {
			last = p
			c.batchOver = append(c.batchOver, false)
			continue
		}
		if p >= c.next {
			return fmt.Errorf("kv: batch positions must increase after the cache's last position %d (got %d after %d)", c.next-1, p, last)
		}
		for _, s := range c.streams {
			if s.index(p) < 0 {
				return fmt.Errorf("kv: position %d is before the cache's end but not held by every stream; only held positions can be overwritten", p)
			}
		}
		c.batchOver = append(c.batchOver, true)
	}
	c.batch = append(c.batch[:0], pos...)
	c.next = max(c.next, last+1)
	c.observe = !c.prefill && c.cfg.Evictor != nil && c.cfg.Evictor.StepStats()
	// A selector chooses for decode steps: one token after the prompt.
	c.selecting = c.cfg.Selector != nil && !c.prefill && len(pos) == 1 && pos[0] >= c.promptEnd
	return nil
}

// Store writes the current batch's keys and values of one layer: k holds
// one row of KVHeads*key width values per token of the batch, v one row of
// KVHeads*value width. When the shape stores values in keys (ValueInKey),
// v is ignored and may be nil.
func (c *Cache) Store(layer int, k, v []float32) {
	d, H := c.shape.Dims(layer), c.shape.KVHeads
	n := len(c.batch)
	if c.shape.ValueInKey {
		v, d.Value = nil, 0
	}
	if len(k) != n*H*d.Key || len(v) != n*H*d.Value {
		panic(fmt.Sprintf("kv: Store got %d/%d values, want %d/%d", len(k), len(v), n*H*d.Key, n*H*d.Value))
	}
	for h := 0; h < H; h++ {
		s := c.Stream(layer, h)
		// Overwrites first, each touched page rebuilt once (overwrite.go).
		if c.writes = c.batchWrites(c.writes[:0], s, h, k, v, d.Key, d.Value); len(c.writes) > 0 {
			s.overwriteAll(c.writes, &c.buf)
		}
		for i := 0; i < n; i++ {
			if c.batchOver[i] {
				continue
			}
			kr := k[i*H*d.Key+h*d.Key : i*H*d.Key+(h+1)*d.Key]
			var vr []float32
			if v != nil {
				vr = v[i*H*d.Value+h*d.Value : i*H*d.Value+(h+1)*d.Value]
			}
			s.append(kr, vr, c.batch[i], !c.prefill, &c.buf)
		}
	}
}

// Attend computes causal attention of g query heads q (g*key width values,
// after RoPE) that share kvHead, for a token at position qpos, over the
// tokens of (layer, kvHead) whose position is <= qpos. out receives
// g*value width values. Calls for different (layer, kvHead, token) may run
// in parallel, each with its own Scratch. At a decode step with a selector,
// only the pages it chooses are read, and the call must carry every query
// head that reads the stream: the selector chooses from all of them, once
// (a model may not split one token's heads of a stream across calls then).
func (c *Cache) Attend(layer, kvHead int, q []float32, g int, qpos int32, out []float32, sc *Scratch) {
	collect := c.observe || (c.prefill && qpos >= c.obsFrom)
	s := c.Stream(layer, kvHead)
	var read []bool
	if c.selecting && len(s.pages) > 0 {
		read = sc.readMask(len(s.pages))
		sc.view = SelectView{Layer: layer, Layers: c.shape.Layers, KVHead: kvHead, KVHeads: c.shape.KVHeads, RoPE: c.cfg.RoPE, Stream: s, Prompt: c.promptN}
		c.cfg.Selector.Select(&sc.view, q, g, qpos, read)
	}
	// A selector that reads the prompt sees its queries, and the local
	// attention it asks for is summed on the way.
	reading := c.reader != nil && !c.selecting
	local := int32(-1)
	if reading && s.local {
		local = int32(c.reader.LocalWindow())
	}
	s.attend(q, g, qpos, c.scale, out, sc, collect, read, local)
	if reading {
		sc.view = SelectView{Layer: layer, Layers: c.shape.Layers, KVHead: kvHead, KVHeads: c.shape.KVHeads, RoPE: c.cfg.RoPE, Stream: s, Prompt: c.promptN}
		c.reader.ReadPrompt(&sc.view, q, g, qpos)
	}
}

// End closes a batch. A selector that reads the prompt ends a prompt batch
// first (PromptReader.EndPrompt). When the batch completes an announced
// prompt, the evictor chooses what to keep; after a decode step (or a batch
// of the prompt, for a Rolling evictor) it may drop tokens.
func (c *Cache) End() {
	if c.reader != nil && !c.selecting {
		c.reader.EndPrompt(c.promptN > 0 && c.next >= c.promptEnd)
	}
	ev := c.cfg.Evictor
	if ev == nil {
		return
	}
	// Only an evicting cache ever shrinks, so only it needs its peak
	// measured before it evicts; the others' peak is their size.
	c.peak = max(c.peak, c.Bytes())
	if c.prefill {
		if c.next >= c.promptEnd {
			c.endPrefill()
		}
		return
	}
	for l := 0; l < c.shape.Layers; l++ {
		ev.AfterStep(c.layerView(l))
	}
	if c.observe {
		for _, s := range c.streams {
			clear(s.obs)
		}
	}
}

// Shift moves every token at position from or later by delta positions,
// turning its keys with the model's RoPE (context shift: llama.cpp's
// seq_add). The moved tokens may not land on or before a token that stays.
// Quantized key pages are encoded again from their rotated values.
func (c *Cache) Shift(from, delta int32) error {
	if delta == 0 {
		return nil
	}
	if c.cfg.RoPE == nil {
		return errors.New("kv: the model handed the cache no RoPE; stored keys cannot move")
	}
	for _, s := range c.streams {
		i0 := sort.Search(len(s.pos), func(i int) bool { return s.pos[i] >= from })
		if i0 < len(s.pos) && (s.pos[i0]+delta < 0 || (i0 > 0 && s.pos[i0]+delta <= s.pos[i0-1])) {
			return fmt.Errorf("kv: shifting positions from %d by %d would collide with the tokens before", from, delta)
		}
		if i0 < len(s.pos) && int(s.pos[len(s.pos)-1]+delta) >= c.capacity {
			return fmt.Errorf("%w: shifting by %d moves position %d outside the context of %d tokens", ErrFull, delta, s.pos[len(s.pos)-1], c.capacity)
		}
	}
	for i, s := range c.streams {
		layer := i / c.shape.KVHeads
		i0 := sort.Search(len(s.pos), func(i int) bool { return s.pos[i] >= from })
		s.rotate(i0, delta, func(k []float32) { c.cfg.RoPE.Rotate(layer, k, delta) }, &c.buf)
	}
	if c.next > from {
		c.next = max(from, c.next+delta)
	}
	return nil
}

// Splice appends to this cache the tokens of src whose positions lie in
// [from, to), moved to start at position at: their keys are turned by
// at-from positions with the model's RoPE, and both are encoded in this
// cache's codecs (exact for f32 and f16 keys up to the rounding of one
// re-encoding; quantized codecs quantize the decoded values again).
// Cache-Craft and CacheBlend reuse a chunk computed once, at other
// positions, this way. at must be at or after NextPos, and src must have
// the same shape; every stream of src is taken as it is (an evicted src
// gives streams of different lengths, which the cache allows).
func (c *Cache) Splice(src *Cache, from, to, at int32) error {
	if !sameShape(src.shape, c.shape) {
		return fmt.Errorf("kv: cannot splice a cache of shape %+v into one of shape %+v", src.shape, c.shape)
	}
	if from < 0 || to < from {
		return fmt.Errorf("kv: splice range [%d, %d) is empty or negative", from, to)
	}
	if at < c.next {
		return fmt.Errorf("kv: splice at %d would land before the cache's end %d", at, c.next)
	}
	delta := at - from
	if int(at)+int(to-from) > c.capacity {
		return fmt.Errorf("%w: splicing %d positions at %d exceeds the context of %d tokens", ErrFull, to-from, at, c.capacity)
	}
	if delta != 0 && c.cfg.RoPE == nil {
		return errors.New("kv: the model handed the cache no RoPE; keys cannot move to other positions")
	}
	end := c.next
	// A stream's tokens in the range are decoded together and their keys
	// turned by the one delta together (KeysRotary: the model's sines and
	// cosines of delta once per stream, not once per token).
	var kb, vb []float32
	for i, s := range c.streams {
		layer := i / c.shape.KVHeads
		ss := src.streams[i]
		j0 := sort.Search(len(ss.pos), func(j int) bool { return ss.pos[j] >= from })
		j1 := sort.Search(len(ss.pos), func(j int) bool { return ss.pos[j] >= to })
		n := j1 - j0
		if n <= 0 {
			continue
		}
		k, v := grow(&kb, n*s.dk), grow(&vb, n*s.dv)
		for j := j0; j < j1; j++ {
			ss.Vector(j, k[(j-j0)*s.dk:(j-j0+1)*s.dk], v[(j-j0)*s.dv:(j-j0+1)*s.dv])
		}
		if delta != 0 {
			if kr, ok := c.cfg.RoPE.(KeysRotary); ok {
				kr.RotateKeys(layer, k, s.dk, delta)
			} else {
				for t := 0; t < n; t++ {
					c.cfg.RoPE.Rotate(layer, k[t*s.dk:(t+1)*s.dk], delta)
				}
			}
		}
		for t := 0; t < n; t++ {
			s.append(k[t*s.dk:(t+1)*s.dk], v[t*s.dv:(t+1)*s.dv], ss.pos[j0+t]+delta, !c.prefill, &c.buf)
		}
		end = max(end, ss.pos[j1-1]+delta+1)
	}
	c.next = end
	return nil
}

func sameShape(a, b Shape) bool {
	if a.Layers != b.Layers || a.KVHeads != b.KVHeads || a.ValueInKey != b.ValueInKey {
		return false
	}
	for l := 0; l < a.Layers; l++ {
		if a.Dims(l) != b.Dims(l) {
			return false
		}
	}
	return true
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
	pages := int64((n + PageTokens - 1) / PageTokens)
	var b int64
	for l := 0; l < s.Layers; l++ {
		d := s.Dims(l)
		if s.ValueInKey {
			d.Value = 0
		}
		b += int64(s.KVHeads) * (pages*PageTokens*int64(d.Key+d.Value)*2 + int64(n)*4)
	}
	return b
}

// Fork returns a cache that shares this cache's pages: both see the same
// tokens, and a page is copied only when one of them changes it
// (copy-on-write). Prefix reuse forks a cached prompt instead of computing
// it again. Fork must not run while attention reads or writes c.
func (c *Cache) Fork() *Cache {
	f := *c
	f.batch = nil
	f.batchOver = nil
	f.writes = nil
	f.buf = nil
	f.views = nil
	f.streams = make([]*Stream, len(c.streams))
	for i, s := range c.streams {
		f.streams[i] = s.fork()
	}
	if fs, ok := c.cfg.Selector.(ForkingSelector); ok {
		f.cfg.Selector = fs.Fork()
		f.reader, _ = f.cfg.Selector.(PromptReader)
	}
	return &f
}

// Release gives up the cache's claim on pages it shares with forks. The
// cache must not be used afterwards.
func (c *Cache) Release() {
	for _, s := range c.streams {
		s.release()
		s.pages = nil
		s.tk, s.tv, s.pos, s.obs, s.acc, s.loc = nil, nil, nil, nil, nil, nil
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
	return b + c.selectorBytes()
}
