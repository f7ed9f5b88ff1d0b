package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A page travels (to the disk and Redis tiers) as an envelope around the
// codec's own payload. Every field is little-endian:
//
//	magic     4 bytes  "KVPG"
//	version   uint16   WireVersion
//	model     uint16 length (1..MaxWireModel) + bytes: the model identity
//	codec     uint16 length (1..MaxWireCodec) + bytes: Codec.Name()
//	d         uint32   values per vector (1..MaxWireWidth)
//	tokens    uint32   the page's Len()
//	payload   uint32 length + bytes: the page's AppendWire form
//	crc       uint32   CRC-32C (Castagnoli) of every byte before it
//
// The model identity is opaque to kv (the caller passes, say, a hash of the
// GGUF file) and the codec name carries every parameter that changes a
// page's layout, so a page is only ever rebuilt by the codec that wrote it,
// for the model that computed it. The payload is the codec's business
// (WirePage, WireCodec): kv checks its length against the header and the
// token count of the rebuilt page against the header's.
//
// UnmarshalPage reads the fixed fields first (magic, version, lengths),
// then verifies the checksum over the whole message, and only then compares
// identities and asks the codec to rebuild the page, so a damaged page is
// reported as damaged (ErrPageChecksum), not as another model's or codec's.

// WireVersion is the envelope's format version. A change to the envelope,
// or to any codec's payload, is a new version; readers refuse versions
// they do not know.
const WireVersion = 1

// Bounds of the envelope's fields. MaxWireWidth is far above any model's
// head size (576 for DeepSeek's MLA), and bounds what a page header can
// make a reader allocate before the payload justifies it.
const (
	MaxWireModel = 256
	MaxWireCodec = 64
	MaxWireWidth = 1 << 16
)

// wireMagic opens every page.
var wireMagic = [4]byte{'K', 'V', 'P', 'G'}

// wireFixed is the size of the envelope without the model identity, the
// codec name and the payload: magic, version, three length prefixes, d,
// tokens and the checksum.
const wireFixed = 4 + 2 + 2 + 2 + 4 + 4 + 4 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of UnmarshalPage, each wrapped with a short account of what was
// found (never more than a few dozen characters of the input). Test with
// errors.Is.
var (
	ErrNotPage       = errors.New("kv: not a page (bad magic)")
	ErrPageVersion   = errors.New("kv: unsupported page format version")
	ErrPageModel     = errors.New("kv: page of another model")
	ErrPageCodec     = errors.New("kv: page of another codec")
	ErrPageChecksum  = errors.New("kv: page checksum mismatch")
	ErrPageTruncated = errors.New("kv: page truncated")
	// ErrPageSize: lengths that disagree with each other, with the
	// caller's d, or with the codec's layout.
	ErrPageSize = errors.New("kv: page sizes inconsistent")
	// ErrPageInvalid: a payload of the right size holding what its codec
	// never writes (a non-finite scale), behind a valid checksum.
	ErrPageInvalid = errors.New("kv: page content invalid")
)

// A WirePage is a page that has an exact binary form.
type WirePage interface {
	Page
	// Width is d, the number of values of each vector.
	Width() int
	// AppendWire appends the page's payload to b: the stored encoding of
	// its Len() vectors, from which its codec's PageFromWire rebuilds a
	// page that decodes, scores and sums bit for bit as this one does. The
	// payload is the same on every machine (little-endian) and does not
	// hold the page's spare capacity.
	AppendWire(b []byte) []byte
}

// A WireCodec rebuilds its pages from their payloads.
type WireCodec interface {
	Codec
	// PageFromWire returns the page whose AppendWire form is payload, for
	// vectors of d values. It validates every length against d and the
	// codec's parameters, allocates no more than the payload's size (plus
	// a page header), keeps no reference to payload, and wraps
	// ErrPageSize or ErrPageInvalid in its errors. The page holds exactly
	// its tokens: appending to it reallocates.
	PageFromWire(d int, payload []byte) (Page, error)
}

// A WireRefiller is a WireCodec that can rebuild a page in the memory of
// one it made before, so that a tier which reads the same pages back over
// and over (kv/offload: every prefill batch reads each cold page once)
// does not make a page of garbage per read.
type WireRefiller interface {
	WireCodec
	// RefillFromWire returns what PageFromWire(d, payload) returns, after
	// the same validation, built in old's memory when old is a page of
	// this codec whose arrays are large enough (any width, any length),
	// and in new memory otherwise. The caller gives old up: nothing may
	// use it afterwards, even after an error (which leaves it as it was).
	// A page built in old's memory keeps old's arrays as its capacity,
	// which its Bytes counts: the empty payload of a codec whose empty
	// pages travel (every kv/quant codec's) gives an empty page that holds
	// as many tokens as old did, and kv/offload makes its new pages so.
	RefillFromWire(old Page, d int, payload []byte) (Page, error)
}

// MarshalPage returns the envelope of page p of codec c for the model
// identified by model (1..MaxWireModel bytes, opaque). c must be the codec
// that made p and implement WireCodec, and p must implement WirePage.
func MarshalPage(model string, c Codec, p Page) ([]byte, error) {
	return AppendPage(nil, model, c, p)
}

// AppendPage appends MarshalPage's envelope to dst, so a tier can reuse
// its buffers.
func AppendPage(dst []byte, model string, c Codec, p Page) ([]byte, error) {
	if c == nil || p == nil {
		return dst, errors.New("kv: marshal a page without its codec or page")
	}
	wp, ok := p.(WirePage)
	if !ok {
		return dst, fmt.Errorf("kv: %s pages (%T) have no wire form", cut(c.Name()), p)
	}
	if _, ok := c.(WireCodec); !ok {
		return dst, fmt.Errorf("kv: codec %s cannot read pages from the wire", cut(c.Name()))
	}
	name := c.Name()
	d := wp.Width()
	switch {
	case len(model) == 0 || len(model) > MaxWireModel:
		return dst, fmt.Errorf("kv: model identity of %d bytes; want 1..%d", len(model), MaxWireModel)
	case len(name) == 0 || len(name) > MaxWireCodec:
		return dst, fmt.Errorf("kv: codec name of %d bytes; want 1..%d", len(name), MaxWireCodec)
	case d < 1 || d > MaxWireWidth:
		return dst, fmt.Errorf("kv: vectors of %d values; want 1..%d", d, MaxWireWidth)
	}
	start := len(dst)
	// Bytes() covers the payload (capacity included), so one allocation
	// usually holds the whole envelope.
	if need := wireFixed + len(model) + len(name) + int(p.Bytes()); cap(dst)-start < need {
		dst = append(make([]byte, 0, start+need), dst...)
	}
	b := append(dst, wireMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, WireVersion)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(model)))
	b = append(b, model...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = binary.LittleEndian.AppendUint32(b, uint32(d))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Len()))
	lenAt := len(b)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = wp.AppendWire(b)
	n := len(b) - lenAt - 4
	if int64(n) > 1<<32-1 {
		return dst[:start], fmt.Errorf("kv: page payload of %d bytes; the format holds at most 4 GiB", n)
	}
	binary.LittleEndian.PutUint32(b[lenAt:], uint32(n))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

// UnmarshalPage rebuilds the page of envelope b, which must have been
// written for model by codec c (same Name) with vectors of d values. It
// refuses anything else with an error wrapping one of the ErrPage errors
// (ErrNotPage for a bad magic), never panics, and allocates about the
// payload's size. The page does not refer to b.
func UnmarshalPage(model string, c Codec, d int, b []byte) (Page, error) {
	wc, ok := c.(WireCodec)
	if !ok {
		if c == nil {
			return nil, errors.New("kv: unmarshal a page without a codec")
		}
		return nil, fmt.Errorf("kv: codec %s cannot read pages from the wire", cut(c.Name()))
	}
	if n := min(len(b), len(wireMagic)); !bytes.Equal(b[:n], wireMagic[:n]) {
		return nil, ErrNotPage
	}
	r := wireReader{b: b}
	r.next(int64(len(wireMagic)))
	if v, ok := r.u16(); ok && v != WireVersion {
		return nil, fmt.Errorf("%w: version %d; this build reads %d", ErrPageVersion, v, WireVersion)
	}
	pm := r.field(MaxWireModel, "model identity")
	pc := r.field(MaxWireCodec, "codec name")
	pd, _ := r.u32()
	pn, _ := r.u32()
	payload := r.field(-1, "payload")
	sum, _ := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the page's %d", ErrPageSize, len(b)-r.off, r.off)
	}
	if got := crc32.Checksum(b[:r.off-4], castagnoli); got != sum {
		return nil, fmt.Errorf("%w: crc32c %08x, stored %08x", ErrPageChecksum, got, sum)
	}
	if string(pm) != model {
		return nil, fmt.Errorf("%w: page is for model %s, not %s", ErrPageModel, cut(string(pm)), cut(model))
	}
	if name := c.Name(); string(pc) != name {
		return nil, fmt.Errorf("%w: page is %s, not %s", ErrPageCodec, cut(string(pc)), cut(name))
	}
	if int64(pd) != int64(d) || d < 1 || d > MaxWireWidth {
		return nil, fmt.Errorf("%w: page has vectors of %d values, not %d", ErrPageSize, pd, d)
	}
	p, err := wc.PageFromWire(d, payload)
	if err != nil {
		return nil, err
	}
	if int64(p.Len()) != int64(pn) {
		return nil, fmt.Errorf("%w: payload holds %d tokens, header says %d", ErrPageSize, p.Len(), pn)
	}
	return p, nil
}

// wireReader reads an envelope's fields in order; the first short read
// sets err (ErrPageTruncated) and every later read returns nothing.
type wireReader struct {
	b   []byte
	off int
	err error
}

func (r *wireReader) next(n int64) ([]byte, bool) {
	if r.err != nil {
		return nil, false
	}
	if n > int64(len(r.b)-r.off) {
		r.err = fmt.Errorf("%w: %d bytes, the header asks for at least %d", ErrPageTruncated, len(r.b), int64(r.off)+n)
		return nil, false
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, true
}

func (r *wireReader) u16() (uint16, bool) {
	s, ok := r.next(2)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint16(s), true
}

func (r *wireReader) u32() (uint32, bool) {
	s, ok := r.next(4)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint32(s), true
}

// field reads a length-prefixed field of 1..max bytes (max < 0: a
// payload of any length, uint32-prefixed; other fields are uint16).
func (r *wireReader) field(max int, what string) []byte {
	var n int64
	if max < 0 {
		v, ok := r.u32()
		if !ok {
			return nil
		}
		n = int64(v)
	} else {
		v, ok := r.u16()
		if !ok {
			return nil
		}
		if n = int64(v); n == 0 || n > int64(max) {
			r.err = fmt.Errorf("%w: %s of %d bytes; want 1..%d", ErrPageSize, what, n, max)
			return nil
		}
	}
	s, _ := r.next(n)
	return s
}

// cut quotes an identity from a page or a caller for an error message,
// cut to a few dozen bytes.
func cut(s string) string {
	const n = 40
	if len(s) > n {
		return fmt.Sprintf("%q…", s[:n])
	}
	return fmt.Sprintf("%q", s)
}
