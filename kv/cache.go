// Package kv owns every byte of cached keys and values. The model writes a
// batch's keys and values into a Cache and asks the Cache to attend; it
// never sees how tokens are stored. This seam is where compression,
// eviction and reuse methods plug in.
package kv

import (
	"errors"
	"fmt"
	"math"

	"github.com/kvgo/kvgo/quant"
)

// DType is the storage type of a plain cache.
type DType int

// Storage types of the plain (uncompressed) cache.
const (
	F16 DType = iota
	F32
)

func (d DType) String() string {
	if d == F32 {
		return "f32"
	}
	return "f16"
}

// bytesPerValue is the storage size of one element.
func (d DType) bytesPerValue() int {
	if d == F32 {
		return 4
	}
	return 2
}

// Shape is the geometry of a model's cache.
type Shape struct {
	Layers  int
	KVHeads int
	HeadDim int
}

// TokenBytes is the size of one token's keys and values across all layers
// at dtype d.
func (s Shape) TokenBytes(d DType) int64 {
	return int64(2*s.Layers*s.KVHeads*s.HeadDim) * int64(d.bytesPerValue())
}

// ErrFull is returned when a batch does not fit in the cache's capacity.
var ErrFull = errors.New("kv: cache is full")

// Cache is the key/value cache of one sequence: for every layer, the keys
// and values of each cached token (all KV heads side by side) and the
// token's absolute position. Keys are stored after RoPE.
type Cache struct {
	shape    Shape
	dtype    DType
	capacity int

	pos      []int32 // position of each cached token
	pending  int     // tokens of the current batch (appended by Begin)
	layers   []layerStore
	rowWidth int // KVHeads*HeadDim
}

type layerStore struct {
	k32, v32 []float32
	k16, v16 []uint16
}

// New returns an empty cache for up to capacity tokens. Memory grows with
// use, so a large capacity costs nothing until tokens arrive.
func New(shape Shape, dtype DType, capacity int) (*Cache, error) {
	if shape.Layers <= 0 || shape.KVHeads <= 0 || shape.HeadDim <= 0 {
		return nil, fmt.Errorf("kv: invalid shape %+v", shape)
	}
	if capacity <= 0 {
		return nil, fmt.Errorf("kv: capacity %d must be positive", capacity)
	}
	return &Cache{
		shape:    shape,
		dtype:    dtype,
		capacity: capacity,
		layers:   make([]layerStore, shape.Layers),
		rowWidth: shape.KVHeads * shape.HeadDim,
	}, nil
}

// Shape returns the cache geometry.
func (c *Cache) Shape() Shape { return c.shape }

// DType returns the storage type.
func (c *Cache) DType() DType { return c.dtype }

// Len is the number of cached tokens (including the current batch).
func (c *Cache) Len() int { return len(c.pos) }

// Capacity is the most tokens the cache accepts.
func (c *Cache) Capacity() int { return c.capacity }

// Positions returns the positions of the cached tokens (read-only).
func (c *Cache) Positions() []int32 { return c.pos }

// Bytes is the memory held by cached keys and values.
func (c *Cache) Bytes() int64 { return int64(len(c.pos)) * c.shape.TokenBytes(c.dtype) }

// Begin starts a batch of tokens at the given positions; every layer then
// Stores the batch's keys and values before it Attends.
func (c *Cache) Begin(pos []int32) error {
	if len(c.pos)+len(pos) > c.capacity {
		return fmt.Errorf("%w: %d cached + %d new tokens exceed the capacity of %d", ErrFull, len(c.pos), len(pos), c.capacity)
	}
	c.pos = append(c.pos, pos...)
	c.pending = len(pos)
	return nil
}

// Store writes the current batch's keys and values of one layer: k and v
// hold one row of KVHeads*HeadDim values per token of the batch.
func (c *Cache) Store(layer int, k, v []float32) {
	l := &c.layers[layer]
	n := c.pending * c.rowWidth
	if len(k) != n || len(v) != n {
		panic(fmt.Sprintf("kv: Store got %d/%d values, want %d", len(k), len(v), n))
	}
	if c.dtype == F32 {
		l.k32 = append(l.k32, k...)
		l.v32 = append(l.v32, v...)
		return
	}
	l.k16 = appendF16(l.k16, k)
	l.v16 = appendF16(l.v16, v)
}

func appendF16(dst []uint16, src []float32) []uint16 {
	for _, x := range src {
		dst = append(dst, quant.F32ToF16(x))
	}
	return dst
}

// Truncate drops every token from index n on (rollback).
func (c *Cache) Truncate(n int) {
	if n >= len(c.pos) {
		return
	}
	c.pos = c.pos[:n]
	w := n * c.rowWidth
	for i := range c.layers {
		l := &c.layers[i]
		if c.dtype == F32 {
			l.k32, l.v32 = l.k32[:w], l.v32[:w]
		} else {
			l.k16, l.v16 = l.k16[:w], l.v16[:w]
		}
	}
}

// Attend computes causal attention of one query head q (HeadDim values,
// after RoPE) at position qpos over the tokens of (layer, kvHead) whose
// position is <= qpos, writing HeadDim values into out. scores is scratch
// of at least Len() floats. Grouped-query attention is the caller's
// mapping of query heads to kvHead.
func (c *Cache) Attend(layer, kvHead int, q []float32, qpos int32, out []float32, scores []float32) {
	d := c.shape.HeadDim
	scale := float32(1 / math.Sqrt(float64(d)))
	l := &c.layers[layer]
	n := len(c.pos)
	scores = scores[:n]
	clear(out)
	maxScore := float32(math.Inf(-1))
	for t := 0; t < n; t++ {
		if c.pos[t] > qpos {
			scores[t] = float32(math.Inf(-1))
			continue
		}
		off := t*c.rowWidth + kvHead*d
		var s float32
		if c.dtype == F32 {
			s = dot(q, l.k32[off:off+d])
		} else {
			s = dotF16(q, l.k16[off:off+d])
		}
		s *= scale
		scores[t] = s
		maxScore = max(maxScore, s)
	}
	var sum float64
	for t := 0; t < n; t++ {
		e := float32(math.Exp(float64(scores[t] - maxScore)))
		scores[t] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for t := 0; t < n; t++ {
		p := scores[t] * inv
		if p == 0 {
			continue
		}
		off := t*c.rowWidth + kvHead*d
		if c.dtype == F32 {
			axpy(out, p, l.v32[off:off+d])
		} else {
			axpyF16(out, p, l.v16[off:off+d])
		}
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

func dotF16(a []float32, b []uint16) float32 {
	var s float32
	for i, x := range a {
		s += x * quant.F16ToF32(b[i])
	}
	return s
}

func axpy(y []float32, a float32, x []float32) {
	for i := range y {
		y[i] += a * x[i]
	}
}

func axpyF16(y []float32, a float32, x []uint16) {
	for i := range y {
		y[i] += a * quant.F16ToF32(x[i])
	}
}
