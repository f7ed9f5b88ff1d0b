// Package quant holds the KV-cache codecs that keep every token but store
// it in fewer bits: the plain F32 and F16 caches, per-token Q8/Q4 blocks
// (llama.cpp's cache types, Block) and KIVI (NewKIVI).
//
// Bytes per token and per KV head at head size d (codes plus F16 scales;
// pages hold 32 tokens, KIVI key pages one group of G tokens):
//
//	q8 sym    d + 2·d/32          (d=128: 136)
//	q8 asym   d + 4·d/32          (d=128: 144)
//	q4 sym    d/2 + 2·d/32        (d=128: 72)
//	q4 asym   d/2 + 4·d/32        (d=128: 80)
//	kivi-k2   d/4 + 4·d/G         (d=128, G=32: 48)
//	kivi-v2   d/4 + 4·d/32        (d=128: 48)
//	kivi-k4   d/2 + 4·d/G         (d=128, G=32: 80)
//	kivi-v4   d/2 + 4·d/32        (d=128: 80)
//
// against 2·d for F16 (256) and 4·d for F32; KIVI adds the F32 residual of
// R tokens (8·d bytes each for key and value).
package quant

import (
	"fmt"
	"slices"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// F32 stores vectors unchanged: the reference every codec is measured against.
type F32 struct{}

func (F32) Name() string  { return "f32" }
func (F32) Residual() int { return 0 }
func (F32) Group() int    { return 0 }
func (F32) NewPage(d, capacity int) kv.Page {
	return &f32Page{d: d, x: make([]float32, 0, d*capacity)}
}

type f32Page struct {
	d int
	x []float32
}

func (p *f32Page) Len() int     { return len(p.x) / p.d }
func (p *f32Page) Bytes() int64 { return int64(cap(p.x)) * 4 }
func (p *f32Page) Append(x []float32, n int) {
	p.x = append(p.x, x[:n*p.d]...)
}

func (p *f32Page) Dot(q []float32, g int, out []float32, _ *kv.PageScratch) {
	if n := p.Len(); n > 0 {
		kernel.DotsGroup(out[:g*n], q[:g*p.d], g, p.x, p.d)
	}
}

func (p *f32Page) AddWeighted(w []float32, g int, out []float32, _ *kv.PageScratch) {
	d, n := p.d, p.Len()
	if n == 0 {
		return
	}
	kernel.WeightedSumHeads(out, w, n, g, p.x[:n*d], d)
}

func (p *f32Page) Decode(i int, dst []float32) { copy(dst, p.x[i*p.d:(i+1)*p.d]) }

func (p *f32Page) Delete(i int) {
	d := p.d
	p.x = append(p.x[:i*d], p.x[(i+1)*d:]...)
	p.x = shrink(p.x)
}

// F16 stores IEEE half floats: llama.cpp's default cache type, and kvgo's
// baseline ("the full cache") for compression ratios.
type F16 struct{}

func (F16) Name() string  { return "f16" }
func (F16) Residual() int { return 0 }
func (F16) Group() int    { return 0 }
func (F16) NewPage(d, capacity int) kv.Page {
	return &f16Page{d: d, x: make([]uint16, 0, d*capacity)}
}

type f16Page struct {
	d int
	x []uint16
}

func (p *f16Page) Len() int     { return len(p.x) / p.d }
func (p *f16Page) Bytes() int64 { return int64(cap(p.x)) * 2 }
func (p *f16Page) Append(x []float32, n int) {
	m := len(p.x)
	p.x = slices.Grow(p.x, n*p.d)[:m+n*p.d]
	kernel.ToF16(p.x[m:], x[:n*p.d])
}

func (p *f16Page) Dot(q []float32, g int, out []float32, _ *kv.PageScratch) {
	if n := p.Len(); n > 0 {
		kernel.DotsF16Group(out[:g*n], q[:g*p.d], g, p.x, p.d)
	}
}

func (p *f16Page) AddWeighted(w []float32, g int, out []float32, _ *kv.PageScratch) {
	d, n := p.d, p.Len()
	if n == 0 {
		return
	}
	kernel.WeightedSumHeadsF16(out, w, n, g, p.x[:n*d], d)
}

func (p *f16Page) Decode(i int, dst []float32) {
	kernel.FromF16(dst[:p.d], p.x[i*p.d:(i+1)*p.d])
}

func (p *f16Page) Delete(i int) {
	d := p.d
	p.x = append(p.x[:i*d], p.x[(i+1)*d:]...)
	p.x = shrink(p.x)
}

// shrink reallocates a slice that uses less than half of its capacity, so
// deleted tokens give their memory back.
func shrink[T any](x []T) []T {
	if cap(x) > 64 && len(x) < cap(x)/2 {
		return append(make([]T, 0, len(x)), x...)
	}
	return x
}

// Methods are the codecs of this package as recipe entries.
var Methods = []kv.Method{
	{
		Name: "f32", Kind: kv.CodecMethod, Summary: "full-precision cache (32-bit floats)",
		Paper:    "baseline",
		NewCodec: func(kv.Args) (kv.Codec, kv.Codec, error) { return F32{}, F32{}, nil },
	},
	{
		Name: "f16", Kind: kv.CodecMethod, Summary: "half-precision cache, llama.cpp's default; the baseline for compression ratios",
		Paper:    "baseline",
		NewCodec: func(kv.Args) (kv.Codec, kv.Codec, error) { return F16{}, F16{}, nil },
	},
	blockMethod(8, "8-bit per-token blocks along the head dim (llama.cpp q8_0 cache; mode=asym adds a minimum per block)",
		"llama.cpp/ggml Q8_0 block format (--cache-type-k q8_0)"),
	blockMethod(4, "4-bit per-token blocks along the head dim (llama.cpp q4_0 cache; mode=asym is q4_1)",
		"llama.cpp/ggml Q4_0 and Q4_1 block formats (--cache-type-k q4_0, q4_1)"),
	{
		Name: "kivi", Kind: kv.CodecMethod,
		Summary: "2/4-bit asymmetric: keys per channel over groups of G tokens, values per token in groups of G channels, the last R tokens in F32",
		Paper:   "KIVI, Liu et al. 2024, arXiv:2402.02750",
		Params: []kv.Param{
			{Name: "bits", Kind: kv.ChoiceParam, Choices: []string{"2", "4"}, Default: "2", Help: "bits per key and value code"},
			{Name: "group", Kind: kv.IntParam, Min: 1, Max: 1024, Default: "32", Help: "G: tokens per key group (one page) and channels per value group (shrinks to the head size)"},
			{Name: "residual", Kind: kv.IntParam, Min: 0, Max: 1 << 20, Default: "128", Help: "R: most recent tokens kept in full precision"},
		},
		NewCodec: func(a kv.Args) (kv.Codec, kv.Codec, error) {
			bits := 2
			if a.Choice("bits") == "4" {
				bits = 4
			}
			k, v, err := NewKIVI(bits, a.Int("group"), a.Int("residual"))
			if err != nil {
				return nil, nil, err
			}
			return k, v, nil
		},
	},
}

// blockMethod is the recipe entry of the per-token block codec with bits
// bits: "q8" or "q4".
func blockMethod(bits int, summary, paper string) kv.Method {
	return kv.Method{
		Name: fmt.Sprintf("q%d", bits), Kind: kv.CodecMethod, Summary: summary, Paper: paper,
		Params: []kv.Param{
			{Name: "group", Kind: kv.IntParam, Min: 1, Max: 1024, Default: "32", Help: "values per block along the head dim; a head smaller than the group uses one block, a head the group does not divide uses the largest divisor below it"},
			{Name: "mode", Kind: kv.ChoiceParam, Choices: []string{"sym", "asym"}, Default: "sym", Help: "sym: one F16 scale per block; asym: F16 scale and minimum"},
		},
		NewCodec: func(a kv.Args) (kv.Codec, kv.Codec, error) {
			b, err := NewBlock(bits, a.Int("group"), a.Choice("mode") == "asym")
			if err != nil {
				return nil, nil, err
			}
			return b, b, nil
		},
	}
}
