package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Builder assembles a GGUF version 3 file: metadata in insertion order,
// then tensor descriptors and aligned data. The zero value is ready to use.
type Builder struct {
	kvs     []KV
	keys    map[string]bool
	tensors []builderTensor
	names   map[string]bool
	err     error
}

type builderTensor struct {
	info TensorInfo
	data []byte
}

// Set adds a metadata entry. x is a Go scalar, string, typed slice, Value or
// []Value (see Value). Errors are remembered and returned by WriteTo.
func (b *Builder) Set(key string, x any) {
	if b.err != nil {
		return
	}
	v, err := valueOf(x)
	if err != nil {
		b.err = fmt.Errorf("gguf: metadata %q: %w", key, err)
		return
	}
	if b.keys == nil {
		b.keys = map[string]bool{}
	}
	if b.keys[key] {
		b.err = fmt.Errorf("gguf: metadata %q set twice", key)
		return
	}
	b.keys[key] = true
	b.kvs = append(b.kvs, KV{Key: key, Value: v})
}

// AddTensor adds a tensor with shape in ggml order (shape[0] = row length)
// and its encoded data, which must have exactly the size the type implies.
func (b *Builder) AddTensor(name string, typ TensorType, shape []uint64, data []byte) {
	if b.err != nil {
		return
	}
	if b.names == nil {
		b.names = map[string]bool{}
	}
	if b.names[name] {
		b.err = fmt.Errorf("gguf: tensor %q added twice", name)
		return
	}
	if len(shape) == 0 || len(shape) > MaxDims {
		b.err = fmt.Errorf("gguf: tensor %q: %d dimensions (want 1..%d)", name, len(shape), MaxDims)
		return
	}
	n := uint64(1)
	for _, d := range shape {
		n *= d
	}
	if !typ.Known() || shape[0]%uint64(typ.BlockElems()) != 0 {
		b.err = fmt.Errorf("gguf: tensor %q: %s cannot hold rows of %d elements", name, typ, shape[0])
		return
	}
	size := n / uint64(typ.BlockElems()) * uint64(typ.BlockBytes())
	if uint64(len(data)) != size {
		b.err = fmt.Errorf("gguf: tensor %q: %d bytes of data, want %d for %s %v", name, len(data), size, typ, shape)
		return
	}
	b.names[name] = true
	b.tensors = append(b.tensors, builderTensor{
		info: TensorInfo{Name: name, Type: typ, Shape: append([]uint64(nil), shape...), Size: size},
		data: data,
	})
}

// WriteTo writes the file.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	if b.err != nil {
		return 0, b.err
	}
	align := uint64(DefaultAlignment)
	for _, kv := range b.kvs {
		if kv.Key == "general.alignment" {
			a, ok := asUint(kv.Value)
			if !ok || a == 0 || a&(a-1) != 0 {
				return 0, fmt.Errorf("gguf: general.alignment %v is not a power of two", kv.Value.Data)
			}
			align = a
		}
	}
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<20)}
	e := &encoder{w: cw}
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(b.tensors)))
	e.u64(uint64(len(b.kvs)))
	for _, kv := range b.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	var off uint64
	for i := range b.tensors {
		t := &b.tensors[i].info
		t.Offset = off
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(off)
		off = alignUp(off+t.Size, align)
	}
	e.pad(align)
	for _, t := range b.tensors {
		e.raw(t.data)
		e.pad(align)
	}
	if e.err == nil {
		e.err = cw.w.(*bufio.Writer).Flush()
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("gguf: write: %w", e.err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type encoder struct {
	w   *countWriter
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) u8(x uint8)   { e.raw([]byte{x}) }
func (e *encoder) u16(x uint16) { binary.LittleEndian.PutUint16(e.buf[:], x); e.raw(e.buf[:2]) }
func (e *encoder) u32(x uint32) { binary.LittleEndian.PutUint32(e.buf[:], x); e.raw(e.buf[:4]) }
func (e *encoder) u64(x uint64) { binary.LittleEndian.PutUint64(e.buf[:], x); e.raw(e.buf[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *encoder) pad(align uint64) {
	n := alignUp(uint64(e.w.n), align) - uint64(e.w.n)
	e.raw(make([]byte, n))
}

func (e *encoder) value(v Value) {
	switch d := v.Data.(type) {
	case uint8:
		e.u8(d)
	case int8:
		e.u8(uint8(d))
	case uint16:
		e.u16(d)
	case int16:
		e.u16(uint16(d))
	case uint32:
		e.u32(d)
	case int32:
		e.u32(uint32(d))
	case float32:
		e.u32(math.Float32bits(d))
	case bool:
		if d {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(d)
	case uint64:
		e.u64(d)
	case int64:
		e.u64(uint64(d))
	case float64:
		e.u64(math.Float64bits(d))
	default:
		e.array(v)
	}
}

func (e *encoder) array(v Value) {
	e.u32(uint32(v.Elem))
	e.u64(uint64(v.Len()))
	switch d := v.Data.(type) {
	case []Value:
		for _, x := range d {
			e.array(x)
		}
	case []string:
		for _, s := range d {
			e.str(s)
		}
	default:
		forEachScalar(d, e.value)
	}
}

func forEachScalar(a any, fn func(Value)) {
	each := func(n int, at func(int) any) {
		for i := 0; i < n; i++ {
			fn(Value{Data: at(i)})
		}
	}
	switch d := a.(type) {
	case []uint8:
		each(len(d), func(i int) any { return d[i] })
	case []int8:
		each(len(d), func(i int) any { return d[i] })
	case []uint16:
		each(len(d), func(i int) any { return d[i] })
	case []int16:
		each(len(d), func(i int) any { return d[i] })
	case []uint32:
		each(len(d), func(i int) any { return d[i] })
	case []int32:
		each(len(d), func(i int) any { return d[i] })
	case []float32:
		each(len(d), func(i int) any { return d[i] })
	case []bool:
		each(len(d), func(i int) any { return d[i] })
	case []uint64:
		each(len(d), func(i int) any { return d[i] })
	case []int64:
		each(len(d), func(i int) any { return d[i] })
	case []float64:
		each(len(d), func(i int) any { return d[i] })
	}
}
