// Package gguf reads and writes GGUF files, the model format of llama.cpp:
// metadata key/value pairs, tensor descriptors and aligned tensor data.
//
// The reader trusts nothing in the file. Every count and length is checked
// against the bytes that remain before anything is allocated, so a
// truncated, corrupt or hostile file yields an error naming what is wrong
// instead of a panic or a huge allocation. Tensor data is used in place from
// a memory-mapped file (or the caller's byte slice), never copied.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is the largest number of tensor dimensions ggml supports.
const MaxDims = 4

// maxNesting bounds arrays of arrays so a hostile file cannot recurse deeply.
const maxNesting = 8

// ErrNotFound is wrapped by metadata accessors when a key is absent.
var ErrNotFound = errors.New("key not found")

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor. Shape is in ggml order: Shape[0] is the
// fastest-varying dimension (the row length of a matrix).
type TensorInfo struct {
	Name  string
	Shape []uint64
	Type  TensorType
	// Offset is relative to the start of the data section.
	Offset uint64
	// Size is the byte size of the tensor's data.
	Size uint64
}

// Elements returns the number of elements of t.
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is a parsed GGUF file. Its tensor data stays valid until Close.
type File struct {
	Version   uint32
	Metadata  []KV
	Tensors   []TensorInfo
	Alignment uint64
	// DataOffset is the file offset of the tensor data section.
	DataOffset uint64

	data   []byte // the whole file
	unmap  func() error
	index  map[string]int // metadata key -> index
	tindex map[string]int // tensor name -> index
}

// Open memory-maps and parses the GGUF file at path.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.unmap = unmap
	return f, nil
}

// Parse parses a GGUF file held in memory. The File refers to data, which
// must not change while the File is used.
func Parse(data []byte) (*File, error) {
	r := &reader{buf: data}
	f := &File{data: data, Alignment: DefaultAlignment}
	if err := f.parse(r); err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// Close releases the memory map. Tensor data must not be used afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	f.data = nil
	return err
}

// Size is the total size of the file in bytes.
func (f *File) Size() int { return len(f.data) }

func (f *File) parse(r *reader) error {
	if len(r.buf) == 0 {
		return errors.New("empty file")
	}
	magic, err := r.bytes(4)
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if string(magic) != Magic {
		return fmt.Errorf("not a GGUF file (magic %q, want %q)", magic, Magic)
	}
	if f.Version, err = r.u32(); err != nil {
		return fmt.Errorf("header: version: %w", err)
	}
	switch {
	case f.Version == 1:
		return errors.New("GGUF version 1 is not supported (re-convert the model with a current llama.cpp)")
	case f.Version != 2 && f.Version != 3:
		if bits.ReverseBytes32(f.Version) <= 3 {
			return errors.New("big-endian GGUF files are not supported")
		}
		return fmt.Errorf("unsupported GGUF version %d (want 2 or 3)", f.Version)
	}
	nTensors, err := r.u64()
	if err != nil {
		return fmt.Errorf("header: tensor count: %w", err)
	}
	nKV, err := r.u64()
	if err != nil {
		return fmt.Errorf("header: metadata count: %w", err)
	}
	// Each entry needs at least 12 bytes (key length + type tag), each
	// tensor info at least 24: a count beyond that is corrupt.
	if nKV > uint64(r.remaining())/12 {
		return fmt.Errorf("header: metadata count %d is impossible for a %d-byte file", nKV, len(r.buf))
	}
	if nTensors > uint64(r.remaining())/24 {
		return fmt.Errorf("header: tensor count %d is impossible for a %d-byte file", nTensors, len(r.buf))
	}

	f.Metadata = make([]KV, 0, nKV)
	f.index = make(map[string]int, nKV)
	for i := uint64(0); i < nKV; i++ {
		key, err := r.str()
		if err != nil {
			return fmt.Errorf("metadata entry %d: key: %w", i, err)
		}
		typ, err := r.u32()
		if err != nil {
			return fmt.Errorf("metadata %s: type: %w", Quote(key), err)
		}
		v, err := r.value(ValueType(typ), 0)
		if err != nil {
			return fmt.Errorf("metadata %s: %w", Quote(key), err)
		}
		if _, dup := f.index[key]; dup {
			return fmt.Errorf("metadata key %s appears twice", Quote(key))
		}
		f.index[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{Key: key, Value: v})
	}
	if v, ok := f.Lookup("general.alignment"); ok {
		a, ok := asUint(v)
		if !ok || a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return fmt.Errorf("general.alignment %s is not a power of two up to 1 MiB", v.Format(4))
		}
		f.Alignment = a
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.tindex = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := r.tensorInfo()
		if err != nil {
			return fmt.Errorf("tensor info %d: %w", i, err)
		}
		if _, dup := f.tindex[t.Name]; dup {
			return fmt.Errorf("tensor %s appears twice", Quote(t.Name))
		}
		f.tindex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	f.DataOffset = alignUp(uint64(r.off), f.Alignment)
	if len(f.Tensors) > 0 && f.DataOffset > uint64(len(r.buf)) {
		return fmt.Errorf("file truncated: tensor data would start at byte %d of %d", f.DataOffset, len(r.buf))
	}
	dataLen := uint64(len(r.buf)) - min(f.DataOffset, uint64(len(r.buf)))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("tensor %s: offset %d is not aligned to %d", Quote(t.Name), t.Offset, f.Alignment)
		}
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return fmt.Errorf("tensor %s: data [%d, %d) lies past the end of the file (data section is %d bytes; file truncated?)",
				Quote(t.Name), t.Offset, t.Offset+t.Size, dataLen)
		}
	}
	return nil
}

func (r *reader) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = r.str(); err != nil {
		return t, fmt.Errorf("name: %w", err)
	}
	nd, err := r.u32()
	if err != nil {
		return t, fmt.Errorf("%s: dimension count: %w", Quote(t.Name), err)
	}
	if nd == 0 || nd > MaxDims {
		return t, fmt.Errorf("%s: %d dimensions (want 1..%d)", Quote(t.Name), nd, MaxDims)
	}
	t.Shape = make([]uint64, nd)
	elems := uint64(1)
	for i := range t.Shape {
		if t.Shape[i], err = r.u64(); err != nil {
			return t, fmt.Errorf("%s: shape: %w", Quote(t.Name), err)
		}
		hi, lo := bits.Mul64(elems, t.Shape[i])
		if hi != 0 || lo > math.MaxInt64/8 {
			return t, fmt.Errorf("%s: shape %v has too many elements", Quote(t.Name), t.Shape[:i+1])
		}
		elems = lo
	}
	typ, err := r.u32()
	if err != nil {
		return t, fmt.Errorf("%s: type: %w", Quote(t.Name), err)
	}
	t.Type = TensorType(typ)
	if t.Offset, err = r.u64(); err != nil {
		return t, fmt.Errorf("%s: offset: %w", Quote(t.Name), err)
	}
	if !t.Type.Known() {
		return t, fmt.Errorf("%s: unsupported tensor type %s", Quote(t.Name), t.Type)
	}
	if t.Shape[0]%uint64(t.Type.BlockElems()) != 0 {
		return t, fmt.Errorf("%s: row length %d is not a multiple of the %s block size %d", Quote(t.Name), t.Shape[0], t.Type, t.Type.BlockElems())
	}
	t.Size = elems / uint64(t.Type.BlockElems()) * uint64(t.Type.BlockBytes())
	return t, nil
}

// TensorData returns the bytes of t, a slice of the mapped file.
func (f *File) TensorData(t *TensorInfo) []byte {
	start := f.DataOffset + t.Offset
	return f.data[start : start+t.Size : start+t.Size]
}

// Tensor finds a tensor by name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tindex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// reader decodes little-endian values from a byte slice with bounds checks.
type reader struct {
	buf []byte
	off int
}

var errTruncated = errors.New("unexpected end of file")

func (r *reader) remaining() int { return len(r.buf) - r.off }

func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(r.remaining()) {
		return nil, fmt.Errorf("%w at byte %d (need %d more bytes, %d left)", errTruncated, r.off, n, r.remaining())
	}
	b := r.buf[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) u8() (uint8, error) {
	b, err := r.bytes(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16() (uint16, error) {
	b, err := r.bytes(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64() (uint64, error) {
	b, err := r.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *reader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", fmt.Errorf("string of length %d: %w", n, err)
	}
	return string(b), nil
}

func (r *reader) value(t ValueType, depth int) (Value, error) {
	v := Value{Type: t}
	var err error
	switch t {
	case TypeUint8:
		v.Data, err = r.u8()
	case TypeInt8:
		var x uint8
		x, err = r.u8()
		v.Data = int8(x)
	case TypeUint16:
		v.Data, err = r.u16()
	case TypeInt16:
		var x uint16
		x, err = r.u16()
		v.Data = int16(x)
	case TypeUint32:
		v.Data, err = r.u32()
	case TypeInt32:
		var x uint32
		x, err = r.u32()
		v.Data = int32(x)
	case TypeFloat32:
		var x uint32
		x, err = r.u32()
		v.Data = math.Float32frombits(x)
	case TypeBool:
		var x uint8
		x, err = r.u8()
		if err == nil && x > 1 {
			err = fmt.Errorf("bool byte %d is neither 0 nor 1", x)
		}
		v.Data = x == 1
	case TypeString:
		v.Data, err = r.str()
	case TypeUint64:
		v.Data, err = r.u64()
	case TypeInt64:
		var x uint64
		x, err = r.u64()
		v.Data = int64(x)
	case TypeFloat64:
		var x uint64
		x, err = r.u64()
		v.Data = math.Float64frombits(x)
	case TypeArray:
		return r.array(depth)
	default:
		return v, fmt.Errorf("unknown value type %d", uint32(t))
	}
	return v, err
}

func (r *reader) array(depth int) (Value, error) {
	if depth >= maxNesting {
		return Value{}, fmt.Errorf("arrays nested deeper than %d", maxNesting)
	}
	et, err := r.u32()
	if err != nil {
		return Value{}, fmt.Errorf("array element type: %w", err)
	}
	elem := ValueType(et)
	n, err := r.u64()
	if err != nil {
		return Value{}, fmt.Errorf("array length: %w", err)
	}
	// Bound the count by the smallest possible encoding of one element
	// before allocating anything sized by it.
	minSize := uint64(elem.fixedSize())
	switch elem {
	case TypeString:
		minSize = 8
	case TypeArray:
		minSize = 12
	}
	if minSize == 0 {
		return Value{}, fmt.Errorf("unknown array element type %d", et)
	}
	if n > uint64(r.remaining())/minSize {
		return Value{}, fmt.Errorf("array of %d %s elements does not fit in the %d bytes left", n, elem, r.remaining())
	}
	v := Value{Type: TypeArray, Elem: elem}
	if elem == TypeString {
		s := make([]string, n)
		for i := range s {
			if s[i], err = r.str(); err != nil {
				return v, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		v.Data = s
		return v, nil
	}
	if elem == TypeArray {
		a := make([]Value, n)
		for i := range a {
			if a[i], err = r.array(depth + 1); err != nil {
				return v, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		v.Data = a
		return v, nil
	}
	raw, err := r.bytes(n * minSize)
	if err != nil {
		return v, err
	}
	v.Data, err = decodeScalars(elem, raw, int(n))
	return v, err
}

func decodeScalars(t ValueType, raw []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return append([]uint8(nil), raw...), nil
	case TypeInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case TypeBool:
		out := make([]bool, n)
		for i := range out {
			if raw[i] > 1 {
				return nil, fmt.Errorf("array element %d: bool byte %d is neither 0 nor 1", i, raw[i])
			}
			out[i] = raw[i] == 1
		}
		return out, nil
	case TypeUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out, nil
	case TypeInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case TypeUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out, nil
	case TypeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case TypeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case TypeUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out, nil
	case TypeInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case TypeFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown array element type %s", t)
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) / a * a }

// mapFileSize guards against mapping special files.
func statRegular(fd *os.File) (int64, error) {
	st, err := fd.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", fd.Name())
	}
	return st.Size(), nil
}

// maxQuoted bounds how much of a string read from a file an error quotes:
// a corrupted length makes a key or tensor name as long as the file.
const maxQuoted = 80

// Quote quotes a string read from a file for an error message, cut to 80
// bytes, so that errors stay one short line whatever the file holds.
func Quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q... (%d bytes)", s[:maxQuoted], len(s))
	}
	return fmt.Sprintf("%q", s)
}
