// Package quant holds the KV-cache codecs that keep every token but store
// it in fewer bits: the plain F32 and F16 caches, per-token Q8/Q4 blocks
// (llama.cpp's cache types) and KIVI.
package quant

import (
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	ggml "github.com/kvgo/kvgo/quant"
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

func (p *f32Page) Dot(q []float32, g int, out []float32) {
	d, n := p.d, p.Len()
	for j := 0; j < g; j++ {
		qj := q[j*d : (j+1)*d]
		for i := 0; i < n; i++ {
			out[j*n+i] = kernel.Dot(qj, p.x[i*d:(i+1)*d])
		}
	}
}

func (p *f32Page) AddWeighted(w []float32, g int, out []float32) {
	d, n := p.d, p.Len()
	for j := 0; j < g; j++ {
		oj := out[j*d : (j+1)*d]
		for i := 0; i < n; i++ {
			if a := w[j*n+i]; a != 0 {
				kernel.AXPY(oj, a, p.x[i*d:(i+1)*d])
			}
		}
	}
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
	for _, v := range x[:n*p.d] {
		p.x = append(p.x, ggml.F32ToF16(v))
	}
}

func (p *f16Page) Dot(q []float32, g int, out []float32) {
	d, n := p.d, p.Len()
	for j := 0; j < g; j++ {
		qj := q[j*d : (j+1)*d]
		for i := 0; i < n; i++ {
			out[j*n+i] = dotF16(qj, p.x[i*d:(i+1)*d])
		}
	}
}

func (p *f16Page) AddWeighted(w []float32, g int, out []float32) {
	d, n := p.d, p.Len()
	for j := 0; j < g; j++ {
		oj := out[j*d : (j+1)*d]
		for i := 0; i < n; i++ {
			if a := w[j*n+i]; a != 0 {
				axpyF16(oj, a, p.x[i*d:(i+1)*d])
			}
		}
	}
}

func (p *f16Page) Decode(i int, dst []float32) {
	for c, h := range p.x[i*p.d : (i+1)*p.d] {
		dst[c] = ggml.F16ToF32(h)
	}
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

// dotF16 and axpyF16 are stand-ins until the kernel package's SIMD
// versions land.
func dotF16(a []float32, b []uint16) float32 {
	var s float32
	for i, x := range a {
		s += x * ggml.F16ToF32(b[i])
	}
	return s
}

func axpyF16(y []float32, a float32, x []uint16) {
	for i := range y {
		y[i] += a * ggml.F16ToF32(x[i])
	}
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
}
