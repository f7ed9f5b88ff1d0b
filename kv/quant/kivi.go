package quant

import (
	"fmt"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// KIVI is "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache"
// (Liu et al., ICML 2024, arXiv:2402.02750). Its finding (section 3) is
// that keys have a few outlier channels of large magnitude while values
// have no channel structure, so keys are quantized per channel and values
// per token, both asymmetrically (min and scale, no tuning), and the most
// recent tokens stay in full precision.
//
// Choices where the paper or its reference code leaves room:
//
//   - Keys: a page holds one group of G consecutive tokens; each channel of
//     the group has its own scale and minimum (F16, as the reference code
//     keeps them in fp16). The stream (kv.Stream) seals the oldest G tail
//     tokens whenever more than R+G are waiting, so between R and R+G-1
//     recent tokens are in F32 (the reference code instead quantizes keys
//     R at a time in groups of G, holding 0..R-1 in full precision; both
//     keep "the most recent tokens" exact and quantize whole groups).
//   - Values: per token, groups of G channels along the head (shrinking to
//     the head size, or to a divisor of it; see BlockSize), 2 or 4 bits,
//     scale and minimum per group: the asymmetric Block codec.
//   - One group parameter serves keys (tokens per group) and values
//     (channels per group), as in the reference code's group_size.
//   - Scales are rounded up and minimums down to F16 before codes are
//     computed, so every value is within half a step of its reconstruction.
//   - Deleting a token from a key page (eviction) keeps the group's
//     per-channel scales: the remaining codes stay exact.
//
// Attention never dequantizes a key page: the per-channel scale s_c is
// folded into the query once per page (q'_c = q_c·s_c) and the zero point
// contributes Σ_c q_c·z_c once per page, so q·k_i = q'·u_i + Σ q·z over
// the integer codes u_i.

// NewKIVI returns KIVI's key and value codecs: bits 2 or 4, group G >= 1
// (tokens per key group, channels per value group), residual R >= 0 tokens
// in full precision.
func NewKIVI(bits, group, residual int) (KIVIKeys, Block, error) {
	if bits != 2 && bits != 4 {
		return KIVIKeys{}, Block{}, fmt.Errorf("kv/quant: kivi bits=%d; want 2 or 4", bits)
	}
	if group < 1 {
		return KIVIKeys{}, Block{}, fmt.Errorf("kv/quant: kivi group=%d must be at least 1", group)
	}
	if residual < 0 {
		return KIVIKeys{}, Block{}, fmt.Errorf("kv/quant: kivi residual=%d must not be negative", residual)
	}
	k := KIVIKeys{bits: bits, group: group, residual: residual}
	v := Block{bits: bits, group: group, asym: true, residual: residual, kivi: true}
	return k, v, nil
}

// KIVIKeys is KIVI's key codec: per-channel asymmetric quantization over
// groups of G tokens. Build it with NewKIVI.
type KIVIKeys struct {
	bits, group, residual int
}

// Name is "kivi-k2" or "kivi-k4", with "-gG" and "-rR" when they are not
// the defaults 32 and 128.
func (k KIVIKeys) Name() string {
	s := fmt.Sprintf("kivi-k%d", k.bits)
	if k.group != 32 {
		s += fmt.Sprintf("-g%d", k.group)
	}
	if k.residual != 128 {
		s += fmt.Sprintf("-r%d", k.residual)
	}
	return s
}

// Residual is R: the stream keeps the most recent R tokens in F32.
func (k KIVIKeys) Residual() int { return k.residual }

// Group is G: a key page is one group, quantized at once.
func (k KIVIKeys) Group() int { return max(k.group, 1) }

// NewPage returns an empty key page for one group of up to capacity tokens.
func (k KIVIKeys) NewPage(d, capacity int) kv.Page {
	bits := k.bits
	if bits == 0 {
		bits = 2
	}
	rb := kernel.PlanarRowBytes(d, bits)
	return &kiviKeyPage{
		d: int32(d), bits: int32(bits), rb: int32(rb),
		codes: make([]byte, 0, capacity*rb),
		sz:    make([]uint16, 0, 2*d),
	}
}

// kiviKeyPage holds one group of tokens: a row of unsigned codes per token
// in kernel's planar layout (which its integer dot kernel reads directly), and per channel c an F16 scale sz[c] and minimum sz[d+c]. A
// value decodes to u·s_c + z_c.
type kiviKeyPage struct {
	codes       []byte
	sz          []uint16
	d, bits, rb int32 // small header: a 2-bit page of 32 tokens is ~1.5 KiB
}

func (p *kiviKeyPage) Len() int { return len(p.codes) / int(p.rb) }

func (p *kiviKeyPage) Bytes() int64 { return int64(cap(p.codes)) + 2*int64(cap(p.sz)) }

// Append quantizes the page's group: n tokens into an empty page. The
// per-channel statistics need the whole group, so a page is appended to
// once (kv.Stream does so); a second call is a programming error.
func (p *kiviKeyPage) Append(x []float32, n int) {
	if len(p.codes) > 0 || len(p.sz) > 0 {
		panic("kv/quant: a KIVI key page is quantized once, from a whole group")
	}
	if n == 0 {
		return
	}
	d, rb, bits := int(p.d), int(p.rb), int(p.bits)
	qmax := int32(1)<<bits - 1
	var mb, xb [2 * maxStackD]float32
	mnmx := scratch(mb[:], 2*d)
	mn, mx := mnmx[:d], mnmx[d:]
	copy(mn, x[:d])
	copy(mx, x[:d])
	for t := 1; t < n; t++ {
		row := x[t*d : (t+1)*d]
		for c, v := range row {
			mn[c], mx[c] = min(mn[c], v), max(mx[c], v)
		}
	}
	if cap(p.sz) < 2*d { // a page rebuilt empty from the wire
		p.sz = make([]uint16, 0, 2*d)
	}
	p.sz = p.sz[:2*d]
	zs := scratch(xb[:], 2*d)
	z, is := zs[:d], zs[d:]
	for c := 0; c < d; c++ {
		zh := f16Down(mn[c])
		z[c] = f16(zh)
		sh := f16Up((mx[c] - z[c]) / float32(qmax))
		is[c] = inv(f16(sh))
		p.sz[c], p.sz[d+c] = sh, zh
	}
	var cb [maxStackD]uint8
	codes := cb[:]
	if d > len(cb) {
		codes = make([]uint8, d)
	}
	codes = codes[:d]
	if cap(p.codes) < n*rb {
		p.codes = make([]byte, 0, n*rb)
	}
	p.codes = p.codes[:n*rb]
	for t := 0; t < n; t++ {
		for c, v := range x[t*d : (t+1)*d] {
			codes[c] = uint8(roundClamp((v-z[c])*is[c], 0, qmax))
		}
		kernel.PackPlanar(p.codes[t*rb:(t+1)*rb], codes, bits)
	}
}

func (p *kiviKeyPage) Decode(i int, dst []float32) {
	d, rb := int(p.d), int(p.rb)
	dst = dst[:d]
	var ub [maxStackD]uint8
	u := ub[:]
	if d > len(ub) {
		u = make([]uint8, d)
	}
	u = u[:d]
	kernel.UnpackPlanar(u, p.codes[i*rb:(i+1)*rb], int(p.bits))
	for c, x := range u {
		dst[c] = float32(x)*f16(p.sz[c]) + f16(p.sz[d+c])
	}
}

// Dot never dequantizes the page. The per-channel scale s_c is folded into
// each query (q'_c = q_c·s_c) and the zero points contribute Σ_c q_c·z_c
// once per page and head, so q·k_i = q'·u_i + Σ q·z over the integer codes
// u_i. q' is then rounded to int16 per head (scale max|q'|/32767), and
// kernel.DotsPlanar takes the integer dot products with the codes, four
// (or, for a last group, three) heads per unpacked row. That kernel is
// cheaper than an F16 page's scores, and with the query folded and rounded
// once per page the whole Dot costs about as much as F16's (kv/quant
// BenchmarkAttendHalves decided this; figures in docs/PERFORMANCE.md).
//
// The query's rounding adds at most half its step per channel: |Δ(q·k)| <=
// max|q'|/65534 · Σ_c u_c, a few parts in 10^5 of the largest term (the
// tests bound it); see kernel.QuantizeScaledI16 for why 16 bits, not 8.
func (p *kiviKeyPage) Dot(q []float32, g int, out []float32, sc *kv.PageScratch) {
	d, n, bits := int(p.d), p.Len(), int(p.bits)
	if n == 0 || g <= 0 {
		return
	}
	f := sc.Floats(2*d + 2*g)
	sz, scale, bias := f[:2*d], f[2*d:2*d+g], f[2*d+g:]
	kernel.FromF16(sz, p.sz)
	s, z := sz[:d], sz[d:]
	qs := sc.Int16s(g * d)
	kernel.QuantizeScaledI16Heads(qs, q[:g*d], s, scale)
	// Σ_c q_jc·z_c for every head in one call: z against the g queries.
	kernel.Dots(bias, z, q[:g*d], d)
	kernel.DotsPlanar(out[:g*n], qs, scale, bias, g, p.codes[:n*int(p.rb)], bits, d)
}

// AddWeighted is not used by attention for keys but is part of a page's
// contract; it decodes each weighted token into a scratch (folding the
// scales as Dot does would cancel badly: Σ w·u·s and z·Σ w can be large
// with opposite signs).
func (p *kiviKeyPage) AddWeighted(w []float32, g int, out []float32, sc *kv.PageScratch) {
	d, n := int(p.d), p.Len()
	x := sc.Floats(d)
	for i := 0; i < n; i++ {
		if !anyWeightRun(w, g, n, i, 1) {
			continue
		}
		p.Decode(i, x)
		for j := 0; j < g; j++ {
			if a := w[j*n+i]; a != 0 {
				kernel.AXPY(out[j*d:(j+1)*d], a, x)
			}
		}
	}
}

// Delete removes token i's codes. The group's per-channel scales and
// minimums stay, so every other token decodes to exactly what it did.
func (p *kiviKeyPage) Delete(i int) {
	rb := int(p.rb)
	p.codes = append(p.codes[:i*rb], p.codes[(i+1)*rb:]...)
	p.codes = shrink(p.codes)
}
