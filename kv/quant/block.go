package quant

import (
	"fmt"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// Block is per-token block quantization along the head dimension, the
// scheme of llama.cpp's quantized caches (--cache-type-k q8_0, q4_0, q4_1):
// each token's d values are cut into blocks of BlockSize(d, group) values,
// and each block gets its own scale (symmetric) or scale and minimum
// (asymmetric), stored as IEEE half floats like ggml's block formats.
//
//   - q8 sym is Q8_0: d = max|x|/127, codes round(x/d) in [-127, 127].
//   - q4 sym is Q4_0: d = m/-8 where m is the value of largest magnitude
//     (with its sign), codes round(x/d)+8 clamped to [0, 15]. Using the sign
//     buys a 16th level: m itself is exact, and values near -m are clipped
//     by up to one step d, as in ggml.
//   - asym (q4 like Q4_1; q8 asym has no ggml cache type but is the same
//     scheme with 8-bit codes): min m, scale s = (max-m)/(2^bits-1), codes
//     round((x-m)/s).
//
// Departure from ggml, for a guaranteed error bound: the F16 scale is
// rounded away from zero and the F16 minimum downward (ggml rounds both to
// nearest), and codes are computed against the stored, rounded values.
// Then no value of a block is clipped by the scale's rounding, and the
// round-trip error is at most half a step of the stored scale (Q4_0: one
// step for the values beyond 7.5 steps on the side opposite m, as in ggml).
//
// KIVI's per-token value quantization is this codec with 2 or 4 bits,
// asymmetric, and a full-precision residual (see NewKIVI).
//
// The zero Block is q8 with blocks of 32, symmetric.
type Block struct {
	bits     int // 8 or 4; 2 for KIVI values; 0 means 8
	group    int // values per block before the head-size rule; 0 means 32
	asym     bool
	residual int  // tokens kept in F32 (KIVI values)
	kivi     bool // named as KIVI's value codec
}

// NewBlock returns the per-token block codec with bits 8 or 4 (2 only
// asymmetric), blocks of group values along the head (see BlockSize for
// heads that group does not divide), symmetric or asymmetric.
func NewBlock(bits, group int, asym bool) (Block, error) {
	switch {
	case bits != 8 && bits != 4 && bits != 2:
		return Block{}, fmt.Errorf("kv/quant: %d bits per value; want 8, 4 or 2", bits)
	case bits == 2 && !asym:
		return Block{}, fmt.Errorf("kv/quant: 2-bit blocks must be asymmetric (mode=asym)")
	case group < 1:
		return Block{}, fmt.Errorf("kv/quant: group %d must be at least 1", group)
	}
	return Block{bits: bits, group: group, asym: asym}, nil
}

func (b Block) nbits() int {
	if b.bits == 0 {
		return 8
	}
	return b.bits
}

func (b Block) ngroup() int {
	if b.group == 0 {
		return 32
	}
	return b.group
}

// Name is "q8", "q4", "q8-asym", ... with "-gN" when the group is not 32;
// "kivi-v2" or "kivi-v4" for KIVI's values.
func (b Block) Name() string {
	var s string
	switch {
	case b.kivi:
		s = fmt.Sprintf("kivi-v%d", b.nbits())
	case b.asym:
		s = fmt.Sprintf("q%d-asym", b.nbits())
	default:
		s = fmt.Sprintf("q%d", b.nbits())
	}
	if b.ngroup() != 32 {
		s += fmt.Sprintf("-g%d", b.ngroup())
	}
	if b.kivi && b.residual != 128 {
		s += fmt.Sprintf("-r%d", b.residual)
	}
	return s
}

// Residual is 0 for q8/q4 (every token is encoded as it arrives) and R for
// KIVI's values.
func (b Block) Residual() int { return b.residual }

// Group is 0: tokens are encoded one at a time.
func (b Block) Group() int { return 0 }

// NewPage returns an empty page; its block size follows BlockSize(d, group).
func (b Block) NewPage(d, capacity int) kv.Page {
	h := b.header(d)
	p := &h
	p.codes = make([]byte, 0, capacity*int(p.rb))
	p.scales = make([]uint16, 0, capacity*p.spt())
	return p
}

// header is an empty page of vectors of d values without its arrays:
// the layout the codec's parameters and d decide.
func (b Block) header(d int) blockPage {
	bits := b.nbits()
	p := blockPage{d: int32(d), bs: int32(BlockSize(d, b.ngroup())), rb: int32(rowBytes(d, bits)), bits: uint8(bits)}
	switch {
	case b.asym:
		p.kind = kindAsym
	case bits == 8:
		p.kind = kindQ8_0
	default:
		p.kind = kindQ4_0
	}
	return p
}

// Block formats.
const (
	kindQ8_0 = iota // int8 codes, one scale per block
	kindQ4_0        // nibbles offset by 8, one scale per block
	kindAsym        // unsigned codes, scale and minimum per block
)

// blockPage holds n tokens as rows of packed codes and, per token, one F16
// scale per block (sym) or a (scale, minimum) pair (asym). The header is
// kept small (64 bytes) because a page of a 4-bit cache holds only ~1 KiB.
type blockPage struct {
	codes     []byte
	scales    []uint16
	d, bs, rb int32 // head size, block size, code bytes per token
	bits      uint8
	kind      uint8
}

func (p *blockPage) nb() int      { return int(p.d / p.bs) }
func (p *blockPage) asym() bool   { return p.kind == kindAsym }
func (p *blockPage) signed() bool { return p.kind == kindQ8_0 }

// spt is the number of F16 words per token.
func (p *blockPage) spt() int {
	if p.kind == kindAsym {
		return 2 * p.nb()
	}
	return p.nb()
}

// off is what is subtracted from an unsigned code before scaling (Q4_0).
func (p *blockPage) off() float32 {
	if p.kind == kindQ4_0 {
		return 8
	}
	return 0
}

func (p *blockPage) Len() int { return len(p.codes) / int(p.rb) }

func (p *blockPage) Bytes() int64 { return int64(cap(p.codes)) + 2*int64(cap(p.scales)) }

func (p *blockPage) Append(x []float32, n int) {
	d := int(p.d)
	var cb [maxStackD]uint8
	codes := cb[:]
	if d > len(cb) {
		codes = make([]uint8, d)
	}
	codes = codes[:d]
	for t := 0; t < n; t++ {
		p.encode(x[t*d:(t+1)*d], codes)
	}
}

// encode appends one token.
func (p *blockPage) encode(x []float32, codes []uint8) {
	bs, rb := int(p.bs), int(p.rb)
	qmax := int32(1)<<p.bits - 1
	for b := 0; b < p.nb(); b++ {
		blk := x[b*bs : (b+1)*bs]
		cs := codes[b*bs : (b+1)*bs]
		switch p.kind {
		case kindAsym:
			mn, mx := blk[0], blk[0]
			for _, v := range blk {
				mn, mx = min(mn, v), max(mx, v)
			}
			zh := f16Down(mn)
			z := f16(zh)
			sh := f16Up((mx - z) / float32(qmax))
			is := inv(f16(sh))
			for c, v := range blk {
				cs[c] = uint8(roundClamp((v-z)*is, 0, qmax))
			}
			p.scales = append(p.scales, sh, zh)
		case kindQ8_0:
			var amax float32
			for _, v := range blk {
				amax = max(amax, abs(v))
			}
			dh := f16Up(amax / 127)
			id := inv(f16(dh))
			for c, v := range blk {
				cs[c] = uint8(int8(roundClamp(v*id, -127, 127)))
			}
			p.scales = append(p.scales, dh)
		default: // Q4_0
			var m float32
			for _, v := range blk {
				if abs(v) > abs(m) {
					m = v
				}
			}
			dh := f16Away(m / -8)
			id := inv(f16(dh))
			for c, v := range blk {
				cs[c] = uint8(roundClamp(v*id+8, 0, 15))
			}
			p.scales = append(p.scales, dh)
		}
	}
	off := len(p.codes)
	if cap(p.codes)-off >= rb {
		p.codes = p.codes[:off+rb]
	} else {
		p.codes = append(p.codes, make([]byte, rb)...)
	}
	pack(p.codes[off:off+rb], codes, int(p.bits))
}

func abs(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// inv is 1/s, or 0 for a zero (or NaN) scale, whose block codes all to 0.
func inv(s float32) float32 {
	if s != 0 && s == s {
		return 1 / s
	}
	return 0
}

// decode writes token i into dst (d values). Every format decodes as
// code·s + m per block: m = 0 for Q8_0, -8·s for Q4_0's offset nibbles,
// the stored minimum for asym. Byte-aligned blocks (every real head) go
// through decodeRun, as attention's runs do, so one token and a run decode
// identically.
func (p *blockPage) decode(i int, dst []float32) {
	d, bs, rb, bits, nb, spt := int(p.d), int(p.bs), int(p.rb), int(p.bits), p.nb(), p.spt()
	dst = dst[:d]
	if bs*bits%8 == 0 {
		var smb [2 * maxStackD]float32
		p.decodeRun(i, 1, dst, scratch(smb[:], 2*nb))
		return
	}
	// Blocks that do not start on byte boundaries (odd block sizes at 4
	// bits, heads no real model has): unpack, then scale.
	row := p.codes[i*rb : (i+1)*rb]
	sc := p.scales[i*spt : (i+1)*spt]
	unpack(row, dst, bits, p.off(), p.signed())
	for b := 0; b < nb; b++ {
		s, m := p.scale(sc, b)
		if !p.asym() {
			m = 0 // unpack already subtracted the offset
		}
		blk := dst[b*bs : (b+1)*bs]
		for c, u := range blk {
			blk[c] = u*s + m
		}
	}
}

// scale returns block b's scale s and offset m (x = code·s + m for
// unsigned codes; m = 0 for Q8_0).
func (p *blockPage) scale(sc []uint16, b int) (s, m float32) {
	if p.kind == kindAsym {
		return f16(sc[2*b]), f16(sc[2*b+1])
	}
	s = f16(sc[b])
	return s, -p.off() * s
}

func (p *blockPage) Decode(i int, dst []float32) { p.decode(i, dst) }

// Dot and AddWeighted read a page in runs of tokens. A run's rows are
// decoded into the caller's scratch with one kernel.DequantBlocks call (the
// rows of a page, and the blocks of a row, are contiguous), and
// kernel.DotsGroupTo or kernel.WeightedSumHeads take all g heads over the
// run, each decoded token shared by the heads (four heads per pass for
// scores, three for sums). Calls are per run, not per (token, block) or
// (token, head): the token-at-a-time loop this replaced was several times
// slower than an F16 page (BenchmarkAttendPage decided this; figures in
// docs/PERFORMANCE.md).

// runFloats bounds a run's decoded floats (8 KiB of per-worker scratch,
// 16 tokens at d=128), small enough to stay in L1 while every head reads
// it; runMax bounds a run at half a full page, so that attention never
// holds an F32 copy of a page (issue 4), only a part of one for the length
// of a call. The cache itself stays in its codes. Whole-page runs at d=64
// measured no difference clearly above the noise of this machine
// (docs/PERFORMANCE.md).
const (
	runFloats = 2048
	runMax    = kv.PageTokens / 2
)

// runTokens is the number of tokens of the runs of a page of n tokens.
func (p *blockPage) runTokens(n int) int {
	return min(n, runMax, max(1, runFloats/int(p.d)))
}

// decodeRun writes tokens i0..i0+m-1 into x (m·d floats): with one
// kernel.DequantBlocks call, given room sm for the run's (scale, offset)
// pairs (2 per block), when the blocks start on byte boundaries; else
// token by token.
func (p *blockPage) decodeRun(i0, m int, x, sm []float32) {
	d, bs, nb, spt, rb := int(p.d), int(p.bs), p.nb(), p.spt(), int(p.rb)
	if int(p.bits)*bs%8 != 0 {
		for i := 0; i < m; i++ {
			p.decode(i0+i, x[i*d:(i+1)*d])
		}
		return
	}
	k := m * nb // blocks of the run
	sm = sm[:2*k]
	if p.asym() {
		// Stored as (scale, minimum) per block already.
		kernel.FromF16(sm, p.scales[i0*spt:(i0+m)*spt])
	} else {
		// One scale per block; the offset is -8·s for Q4_0, 0 for Q8_0.
		// Widen into the upper half, then spread into pairs from the
		// front (pair j never overwrites a scale not yet read).
		kernel.FromF16(sm[k:], p.scales[i0*spt:(i0+m)*spt])
		off := p.off()
		for j := 0; j < k; j++ {
			s := sm[k+j]
			sm[2*j], sm[2*j+1] = s, -off*s
		}
	}
	kernel.DequantBlocks(x[:m*d], p.codes[i0*rb:(i0+m)*rb], sm, bs, int(p.bits), p.signed())
}

// runScratch returns the run length for a page of n tokens and, from sc,
// room for one run's decoded values (x) and its (scale, offset) pairs (sm).
func (p *blockPage) runScratch(sc *kv.PageScratch, n int) (c int, x, sm []float32) {
	d := int(p.d)
	c = p.runTokens(n)
	buf := sc.Floats(c*d + 2*c*p.nb())
	return c, buf[:c*d], buf[c*d:]
}

// Dot takes the g heads' dot products with each run in one
// kernel.DotsGroupTo call, straight into the page's rows (out[j*n+i]).
func (p *blockPage) Dot(q []float32, g int, out []float32, sc *kv.PageScratch) {
	d, n := int(p.d), p.Len()
	if n == 0 || g <= 0 {
		return
	}
	q, out = q[:g*d], out[:g*n]
	c, x, sm := p.runScratch(sc, n)
	for i0 := 0; i0 < n; i0 += c {
		m := min(c, n-i0)
		p.decodeRun(i0, m, x, sm)
		kernel.DotsGroupTo(out[i0:], n, q, g, x[:m*d], d, m)
	}
}

// AddWeighted adds each run to every head's output with one
// kernel.WeightedSumHeads call per run. A run whose tokens have no
// non-zero weight in any head (masked future tokens) is not decoded, and
// WeightedSumHeads skips a row whose weight is zero in every head, so a
// masked token contributes nothing even if its stored values were not
// finite.
func (p *blockPage) AddWeighted(w []float32, g int, out []float32, sc *kv.PageScratch) {
	d, n := int(p.d), p.Len()
	if n == 0 || g <= 0 {
		return
	}
	w, out = w[:g*n], out[:g*d]
	c, x, sm := p.runScratch(sc, n)
	for i0 := 0; i0 < n; i0 += c {
		m := min(c, n-i0)
		if !anyWeightRun(w, g, n, i0, m) {
			continue
		}
		p.decodeRun(i0, m, x, sm)
		kernel.WeightedSumHeads(out, w[i0:], n, g, x[:m*d], d)
	}
}

// anyWeightRun reports whether any of the tokens i0..i0+m-1 has a
// non-zero weight in any of the g rows of n weights (masked future tokens
// have none, and need not be decoded).
func anyWeightRun(w []float32, g, n, i0, m int) bool {
	for j := 0; j < g; j++ {
		for _, a := range w[j*n+i0 : j*n+i0+m] {
			if a != 0 {
				return true
			}
		}
	}
	return false
}

func (p *blockPage) Delete(i int) {
	rb, spt := int(p.rb), p.spt()
	p.codes = append(p.codes[:i*rb], p.codes[(i+1)*rb:]...)
	p.scales = append(p.scales[:i*spt], p.scales[(i+1)*spt:]...)
	p.codes = shrink(p.codes)
	p.scales = shrink(p.scales)
}
