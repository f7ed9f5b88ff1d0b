package quant

import "github.com/kvgo/kvgo/kv"

// AppendFrom appends token i of src, a page of the same codec and width,
// by copying its stored values: the move kv.Stream makes when it packs the
// pages left sparse by an evictor, exact where a decode and re-encode
// would round again. It reports false (and appends nothing) for a page of
// another kind.
func (p *f32Page) AppendFrom(src kv.Page, i int) bool {
	s, ok := src.(*f32Page)
	if !ok || s.d != p.d {
		return false
	}
	p.x = append(p.x, s.x[i*s.d:(i+1)*s.d]...)
	return true
}

// AppendFrom appends token i of src exactly (see f32Page.AppendFrom).
func (p *f16Page) AppendFrom(src kv.Page, i int) bool {
	s, ok := src.(*f16Page)
	if !ok || s.d != p.d {
		return false
	}
	p.x = append(p.x, s.x[i*s.d:(i+1)*s.d]...)
	return true
}

// AppendFrom appends token i of src, codes and scales, exactly (see
// f32Page.AppendFrom).
func (p *blockPage) AppendFrom(src kv.Page, i int) bool {
	s, ok := src.(*blockPage)
	if !ok || s.d != p.d || s.bs != p.bs || s.bits != p.bits || s.kind != p.kind {
		return false
	}
	rb, spt := int(p.rb), p.spt()
	p.codes = append(p.codes, s.codes[i*rb:(i+1)*rb]...)
	p.scales = append(p.scales, s.scales[i*spt:(i+1)*spt]...)
	return true
}
