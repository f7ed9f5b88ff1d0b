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

// Clone returns an exact copy of the page, which kv.Stream makes before it
// changes a page it shares with a forked cache (copy-on-write).
func (p *f32Page) Clone() kv.Page {
	return &f32Page{d: p.d, x: append(make([]float32, 0, cap(p.x)), p.x...)}
}

// Clone returns an exact copy of the page.
func (p *f16Page) Clone() kv.Page {
	return &f16Page{d: p.d, x: append(make([]uint16, 0, cap(p.x)), p.x...)}
}

// Clone returns an exact copy of the page.
func (p *blockPage) Clone() kv.Page {
	q := *p
	q.codes = append(make([]byte, 0, cap(p.codes)), p.codes...)
	q.scales = append(make([]uint16, 0, cap(p.scales)), p.scales...)
	return &q
}

// Clone returns an exact copy of the page: a KIVI key group cannot be
// rebuilt token by token, since its scales belong to the whole group.
func (p *kiviKeyPage) Clone() kv.Page {
	q := *p
	q.codes = append(make([]byte, 0, cap(p.codes)), p.codes...)
	q.sz = append(make([]uint16, 0, cap(p.sz)), p.sz...)
	return &q
}
