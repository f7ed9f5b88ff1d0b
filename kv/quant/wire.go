package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// Wire forms of the pages (kv.WirePage, kv.WireCodec), inside kv's
// envelope (kv.MarshalPage). Every payload is the page's stored arrays in
// order, little-endian, for its n tokens and nothing else:
//
//	f32      n·d float32
//	f16      n·d float16
//	block    n·rowBytes(d, bits) code bytes, then n·k float16 (k = d/bs
//	         scales, or 2·d/bs (scale, minimum) pairs for asym), bs the
//	         codec's BlockSize(d, group)
//	kivi-k   n·PlanarRowBytes(d, bits) code bytes (kernel's planar rows),
//	         then d float16 scales and d float16 minimums, the group's;
//	         an empty page written before its group was quantized has
//	         neither codes nor scales
//
// The block size, the bits and the row layout come from the codec (whose
// Name the envelope checks) and d, so a payload's length alone must equal
// n whole tokens (plus a KIVI page's 4·d bytes of scales): anything else
// is refused before a byte is allocated. A rebuilt page holds exactly its
// n tokens: its Bytes() is the payload's size, equal to the original's
// when that one had no spare capacity (a full page, a KIVI group, a page
// shrunk after deletions) and smaller otherwise.
//
// The payloads are part of kv.WireVersion: a change to any of them, or to
// a rule that derives a layout from the codec's parameters and d
// (BlockSize, rowBytes, kernel.PlanarRowBytes and the planar order), needs
// a new version, or pages written before it would be read wrong without
// an error; TestWireGolden holds pages of an earlier build to catch it. (A
// renamed codec only refuses its old pages.)
//
// Quantized scales and minimums are finite by construction (f16Up clamps
// to the finite half range); a payload with a non-finite one is refused
// as kv.ErrPageInvalid. Codes are taken as they are: every bit pattern of
// a code decodes to a finite value.

// wireWidth checks d for a page rebuilt from the wire.
func wireWidth(d int) error {
	if d < 1 || d > kv.MaxWireWidth {
		return fmt.Errorf("%w: kv/quant: vectors of %d values; want 1..%d", kv.ErrPageSize, d, kv.MaxWireWidth)
	}
	return nil
}

// wireTokens returns the number of tokens of tok bytes in a payload of n
// bytes, or -1 when n is not a whole number of them.
func wireTokens(n, tok int) int {
	if n%tok != 0 {
		return -1
	}
	return n / tok
}

// The errors take the codec only on the error path: converting a Block to
// an interface, or formatting its name, allocates.

func errTokens(c kv.Codec, n, tok int) error {
	return fmt.Errorf("%w: kv/quant: %s payload of %d bytes is not whole tokens of %d bytes", kv.ErrPageSize, c.Name(), n, tok)
}

func errScale(c kv.Codec, i int, h uint16) error {
	return fmt.Errorf("%w: kv/quant: %s scale %d is %v", kv.ErrPageInvalid, c.Name(), i, f16(h))
}

// resize returns s[:n] when s can hold n elements, and otherwise a new
// slice of exactly n (append would round the capacity up to an allocation
// size class, and Bytes() counts capacity): a page rebuilt in new memory
// holds exactly its tokens, one rebuilt in an old page's keeps its arrays.
func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// appendF16s appends halves little-endian, four to a 64-bit word: the
// cold tier writes pages out and reads them back on decode steps, and a
// word at a time is 1.2-1.7× faster than a half at a time
// (BenchmarkWireF16s; docs/PERFORMANCE.md).
func appendF16s(b []byte, x []uint16) []byte {
	i := 0
	for ; i+4 <= len(x); i += 4 {
		b = binary.LittleEndian.AppendUint64(b, uint64(x[i])|uint64(x[i+1])<<16|uint64(x[i+2])<<32|uint64(x[i+3])<<48)
	}
	for ; i < len(x); i++ {
		b = binary.LittleEndian.AppendUint16(b, x[i])
	}
	return b
}

// readF16s decodes len(dst) little-endian halves from src, four to a
// 64-bit word (appendF16s).
func readF16s(dst []uint16, src []byte) {
	src = src[:2*len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		v := binary.LittleEndian.Uint64(src[2*i:])
		d := dst[i : i+4 : i+4]
		d[0], d[1], d[2], d[3] = uint16(v), uint16(v>>16), uint16(v>>32), uint16(v>>48)
	}
	for ; i < len(dst); i++ {
		dst[i] = binary.LittleEndian.Uint16(src[2*i:])
	}
}

// nonFinite returns the index of the first Inf or NaN of the
// little-endian halves in b, or -1: scales are checked before anything is
// allocated for them.
func nonFinite(b []byte) (int, uint16) {
	for i := 0; i+1 < len(b); i += 2 {
		if h := binary.LittleEndian.Uint16(b[i:]); h&0x7c00 == 0x7c00 {
			return i / 2, h
		}
	}
	return -1, 0
}

// f32: the vectors' float32 bits.

func (p *f32Page) Width() int { return p.d }

func (p *f32Page) AppendWire(b []byte) []byte {
	for _, v := range p.x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// PageFromWire rebuilds an f32 page (kv.WireCodec).
func (c F32) PageFromWire(d int, payload []byte) (kv.Page, error) {
	return c.fromWire(nil, d, payload)
}

// RefillFromWire rebuilds an f32 page in old's memory (kv.WireRefiller).
func (c F32) RefillFromWire(old kv.Page, d int, payload []byte) (kv.Page, error) {
	p, _ := old.(*f32Page)
	return c.fromWire(p, d, payload)
}

// fromWire rebuilds an f32 page, in p's memory when p is not nil.
func (c F32) fromWire(p *f32Page, d int, payload []byte) (kv.Page, error) {
	if err := wireWidth(d); err != nil {
		return nil, err
	}
	n := wireTokens(len(payload), 4*d)
	if n < 0 {
		return nil, errTokens(c, len(payload), 4*d)
	}
	if p == nil {
		p = new(f32Page)
	}
	p.d, p.x = d, resize(p.x, n*d)
	src := payload[:4*len(p.x)]
	for i := range p.x {
		p.x[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i : 4*i+4]))
	}
	return p, nil
}

// f16: the vectors' half floats, any bits (a NaN stored from the model
// travels as the same NaN).

func (p *f16Page) Width() int { return p.d }

func (p *f16Page) AppendWire(b []byte) []byte { return appendF16s(b, p.x) }

// PageFromWire rebuilds an f16 page (kv.WireCodec).
func (c F16) PageFromWire(d int, payload []byte) (kv.Page, error) {
	return c.fromWire(nil, d, payload)
}

// RefillFromWire rebuilds an f16 page in old's memory (kv.WireRefiller).
func (c F16) RefillFromWire(old kv.Page, d int, payload []byte) (kv.Page, error) {
	p, _ := old.(*f16Page)
	return c.fromWire(p, d, payload)
}

// fromWire rebuilds an f16 page, in p's memory when p is not nil.
func (c F16) fromWire(p *f16Page, d int, payload []byte) (kv.Page, error) {
	if err := wireWidth(d); err != nil {
		return nil, err
	}
	n := wireTokens(len(payload), 2*d)
	if n < 0 {
		return nil, errTokens(c, len(payload), 2*d)
	}
	if p == nil {
		p = new(f16Page)
	}
	p.d, p.x = d, resize(p.x, n*d)
	readF16s(p.x, payload)
	return p, nil
}

// Block: codes, then scales (or scale, minimum pairs).

func (p *blockPage) Width() int { return int(p.d) }

func (p *blockPage) AppendWire(b []byte) []byte {
	n := p.Len()
	b = append(b, p.codes[:n*int(p.rb)]...)
	return appendF16s(b, p.scales[:n*p.spt()])
}

// PageFromWire rebuilds a block page (kv.WireCodec); the block size, bits
// and format are the codec's for d, as in NewPage.
func (b Block) PageFromWire(d int, payload []byte) (kv.Page, error) {
	return b.fromWire(nil, d, payload)
}

// RefillFromWire rebuilds a block page in old's memory (kv.WireRefiller):
// old may be of another width or format, since the header is the codec's.
func (b Block) RefillFromWire(old kv.Page, d int, payload []byte) (kv.Page, error) {
	p, _ := old.(*blockPage)
	return b.fromWire(p, d, payload)
}

// fromWire rebuilds a block page, in p's arrays when p is not nil.
func (b Block) fromWire(p *blockPage, d int, payload []byte) (kv.Page, error) {
	if err := wireWidth(d); err != nil {
		return nil, err
	}
	h := b.header(d)
	rb, spt := int(h.rb), h.spt()
	n := wireTokens(len(payload), rb+2*spt)
	if n < 0 {
		return nil, errTokens(b, len(payload), rb+2*spt)
	}
	if i, h := nonFinite(payload[n*rb:]); i >= 0 {
		return nil, errScale(b, i, h)
	}
	if p == nil {
		p = new(blockPage)
	}
	codes, scales := p.codes, p.scales
	*p = h
	p.codes = resize(codes, n*rb)
	copy(p.codes, payload)
	p.scales = resize(scales, n*spt)
	readF16s(p.scales, payload[n*rb:])
	return p, nil
}

// KIVI keys: planar codes, then the group's scales and minimums.

func (p *kiviKeyPage) Width() int { return int(p.d) }

func (p *kiviKeyPage) AppendWire(b []byte) []byte {
	b = append(b, p.codes...)
	return appendF16s(b, p.sz)
}

// PageFromWire rebuilds a KIVI key page (kv.WireCodec): a payload of n
// planar rows and 2·d halves, or an empty one for a page never quantized.
func (k KIVIKeys) PageFromWire(d int, payload []byte) (kv.Page, error) {
	return k.fromWire(nil, d, payload)
}

// RefillFromWire rebuilds a KIVI key page in old's memory
// (kv.WireRefiller).
func (k KIVIKeys) RefillFromWire(old kv.Page, d int, payload []byte) (kv.Page, error) {
	p, _ := old.(*kiviKeyPage)
	return k.fromWire(p, d, payload)
}

// fromWire rebuilds a KIVI key page, in p's arrays when p is not nil.
func (k KIVIKeys) fromWire(p *kiviKeyPage, d int, payload []byte) (kv.Page, error) {
	if err := wireWidth(d); err != nil {
		return nil, err
	}
	bits := k.bits
	if bits == 0 {
		bits = 2 // as NewPage
	}
	rb := kernel.PlanarRowBytes(d, bits)
	n := 0
	if len(payload) > 0 {
		if len(payload) < 4*d {
			return nil, fmt.Errorf("%w: kv/quant: %s payload of %d bytes is shorter than the %d bytes of its scales", kv.ErrPageSize, k.Name(), len(payload), 4*d)
		}
		if n = wireTokens(len(payload)-4*d, rb); n < 0 {
			return nil, errTokens(k, len(payload)-4*d, rb)
		}
		if i, h := nonFinite(payload[n*rb:]); i >= 0 {
			return nil, errScale(k, i, h)
		}
	}
	if p == nil {
		p = new(kiviKeyPage)
	}
	p.d, p.bits, p.rb = int32(d), int32(bits), int32(rb)
	if len(payload) == 0 {
		// A group never quantized: no codes and no scales yet.
		p.codes, p.sz = p.codes[:0], p.sz[:0]
		return p, nil
	}
	p.codes = resize(p.codes, n*rb)
	copy(p.codes, payload)
	p.sz = resize(p.sz, 2*d)
	readF16s(p.sz, payload[n*rb:])
	return p, nil
}

// The codecs and pages of this package travel.
var (
	_ kv.WireCodec    = F32{}
	_ kv.WireCodec    = F16{}
	_ kv.WireCodec    = Block{}
	_ kv.WireCodec    = KIVIKeys{}
	_ kv.WireRefiller = F32{}
	_ kv.WireRefiller = F16{}
	_ kv.WireRefiller = Block{}
	_ kv.WireRefiller = KIVIKeys{}
	_ kv.WirePage     = (*f32Page)(nil)
	_ kv.WirePage     = (*f16Page)(nil)
	_ kv.WirePage     = (*blockPage)(nil)
	_ kv.WirePage     = (*kiviKeyPage)(nil)
)
