package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A whole cache travels (a chunk cache to the disk and Redis tiers) as the
// page envelopes of its streams with their positions and the F16 tails of
// group codecs, in one message with its own checksum:
//
//	magic     4 bytes  "KVCC"
//	version   uint16   CacheWireVersion
//	streams   uint32   Shape.Streams()
//	per stream:
//	  tokens  uint32, then tokens int32 positions (increasing)
//	  pages   uint32, then per page its key envelope and, unless the shape
//	          keeps values in keys, its value envelope, each as uint32
//	          length + MarshalPage's bytes
//	  tail    uint32 tokens, then tokens×key width and tokens×value width
//	          F16 values (the value part absent when values are in keys)
//	crc       uint32   CRC-32C of every byte before it
//
// Every page carries the model identity and codec name (MarshalPage), so a
// cache is only rebuilt for the model and codecs that wrote it.

// CacheWireVersion is the version of a whole cache's message.
const CacheWireVersion = 1

var cacheMagic = [4]byte{'K', 'V', 'C', 'C'}

// ErrCacheWire wraps every failure to read a cache message that is not a
// page's own (ErrPage*): bad magic or version, lengths, positions, checksum.
var ErrCacheWire = errors.New("kv: bad cache message")

// Seal encodes every whole group of a group codec's tail into pages (KIVI
// keeps its residual R tokens in F16 while a sequence runs; a cache that is
// stored for reuse needs no residual) and gives back spare tail memory.
// Per-token codecs have nothing to seal.
func (c *Cache) Seal() {
	for _, s := range c.streams {
		s.seal(0, &c.buf)
		s.tk, s.tv = clipped(s.tk), clipped(s.tv)
	}
}

// clipped is x without spare capacity (nil when empty).
func clipped(x []uint16) []uint16 {
	if len(x) == 0 {
		return nil
	}
	return append([]uint16(nil), x...)
}

// MarshalCache appends the message of cache c (computed by the model
// identified by model) to dst. The cache must hold no evictor state that
// matters (a cache without an evictor, as chunk caches are), and its
// codecs must implement WireCodec.
func MarshalCache(dst []byte, model string, c *Cache) ([]byte, error) {
	start := len(dst)
	b := append(dst, cacheMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, CacheWireVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.streams)))
	for _, s := range c.streams {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.pos)))
		for _, p := range s.pos {
			b = binary.LittleEndian.AppendUint32(b, uint32(p))
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.pages)))
		for _, p := range s.pages {
			var err error
			if b, err = appendEnvelope(b, model, s.kc, p.k); err != nil {
				return dst[:start], err
			}
			if !s.shared {
				if b, err = appendEnvelope(b, model, s.vc, p.v); err != nil {
					return dst[:start], err
				}
			}
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(s.tailLen()))
		for _, x := range s.tk {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		if !s.shared {
			for _, x := range s.tv {
				b = binary.LittleEndian.AppendUint16(b, x)
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

func appendEnvelope(b []byte, model string, c Codec, p Page) ([]byte, error) {
	at := len(b)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b, err := AppendPage(b, model, c, p)
	if err != nil {
		return b[:at], err
	}
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b, nil
}

// UnmarshalCache rebuilds a cache of the given shape and config (codecs
// included; capacity positions) from MarshalCache's message for model. It
// checks the checksum before anything else, then every page's envelope
// (model identity, codec, checksum: UnmarshalPage), that positions
// increase within each stream, fit the capacity and match the stream's
// token count. It never panics on a damaged message and wraps ErrCacheWire
// or an ErrPage error.
func UnmarshalCache(model string, shape Shape, cfg Config, capacity int, b []byte) (*Cache, error) {
	if n := min(len(b), len(cacheMagic)); !bytes.Equal(b[:n], cacheMagic[:n]) || len(b) < len(cacheMagic)+2+4+4 {
		return nil, fmt.Errorf("%w: no cache magic or too short (%d bytes)", ErrCacheWire, len(b))
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("%w: %w: crc32c %08x, stored %08x", ErrCacheWire, ErrPageChecksum, got, want)
	}
	if v := binary.LittleEndian.Uint16(body[4:]); v != CacheWireVersion {
		return nil, fmt.Errorf("%w: %w: version %d; this build reads %d", ErrCacheWire, ErrPageVersion, v, CacheWireVersion)
	}
	c, err := New(shape, cfg, capacity)
	if err != nil {
		return nil, err
	}
	r := &cacheReader{b: body, off: 6}
	if n := r.u32(); r.err == nil && int(n) != len(c.streams) {
		return nil, fmt.Errorf("%w: %d streams, the shape has %d", ErrCacheWire, n, len(c.streams))
	}
	for _, s := range c.streams {
		if err := r.stream(model, s, capacity); err != nil {
			return nil, err
		}
		if len(s.pos) > 0 {
			c.next = max(c.next, s.pos[len(s.pos)-1]+1)
		}
		if s.sums {
			for i := range s.pages {
				s.summarize(i, &c.buf)
			}
		}
		if s.track {
			s.obs = make([]float32, len(s.pos))
			s.acc = make([]float32, len(s.pos))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%w: %d bytes after the last stream", ErrCacheWire, len(body)-r.off)
	}
	return c, nil
}

type cacheReader struct {
	b   []byte
	off int
	err error
}

func (r *cacheReader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: %w: %d bytes wanted at %d of %d", ErrCacheWire, ErrPageTruncated, n, r.off, len(r.b))
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *cacheReader) u32() uint32 {
	s := r.next(4)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(s)
}

// page reads one length-prefixed envelope.
func (r *cacheReader) page(model string, c Codec, d int) Page {
	n := r.u32()
	s := r.next(int(n))
	if r.err != nil {
		return nil
	}
	p, err := UnmarshalPage(model, c, d, s)
	if err != nil {
		r.err = err
		return nil
	}
	return p
}

func (r *cacheReader) stream(model string, s *Stream, capacity int) error {
	n := int(r.u32())
	if r.err == nil && (n > capacity || n*4 > len(r.b)-r.off) {
		r.err = fmt.Errorf("%w: a stream of %d tokens (capacity %d)", ErrCacheWire, n, capacity)
	}
	raw := r.next(4 * n)
	if r.err != nil {
		return r.err
	}
	s.pos = make([]int32, n)
	for i := range s.pos {
		p := int32(binary.LittleEndian.Uint32(raw[4*i:]))
		if p < 0 || int(p) >= capacity || (i > 0 && p <= s.pos[i-1]) {
			return fmt.Errorf("%w: position %d at index %d (capacity %d)", ErrCacheWire, p, i, capacity)
		}
		s.pos[i] = p
	}
	np := int(r.u32())
	if r.err == nil && np > n {
		return fmt.Errorf("%w: %d pages for %d tokens", ErrCacheWire, np, n)
	}
	held := 0
	for range np {
		k := r.page(model, s.kc, s.dk)
		var v Page
		if !s.shared {
			v = r.page(model, s.vc, s.dv)
		}
		if r.err != nil {
			return r.err
		}
		if k.Len() == 0 || (v != nil && v.Len() != k.Len()) || (s.group > 0 && k.Len() != s.group) || (s.group == 0 && k.Len() > PageTokens) {
			return fmt.Errorf("%w: a page pair of %d and %d tokens (group %d)", ErrCacheWire, k.Len(), lenOf(v), s.group)
		}
		held += k.Len()
		s.pages = append(s.pages, pagePair{k: k, v: v})
	}
	t := int(r.u32())
	if r.err == nil && (t != n-held || (s.group == 0 && t != 0)) {
		return fmt.Errorf("%w: %d tail tokens, %d in pages, %d in all", ErrCacheWire, t, held, n)
	}
	dv := s.dv
	if s.shared {
		dv = 0
	}
	tail := r.next(2 * t * (s.dk + dv))
	if r.err != nil {
		return r.err
	}
	s.tk = make([]uint16, t*s.dk)
	for i := range s.tk {
		s.tk[i] = binary.LittleEndian.Uint16(tail[2*i:])
	}
	if !s.shared {
		s.tv = make([]uint16, t*s.dv)
		for i := range s.tv {
			s.tv[i] = binary.LittleEndian.Uint16(tail[2*(len(s.tk)+i):])
		}
	}
	return nil
}

func lenOf(p Page) int {
	if p == nil {
		return 0
	}
	return p.Len()
}
