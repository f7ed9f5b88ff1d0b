//go:build !kvgo_generic

package kernel

// Assembly kernels of fdot_amd64.s; the wrappers in ops.go and matmul*.go
// check lengths before calling.

//go:noescape
func dotF32x1AVX2(w *float32, wstride int, rows int, x *float32, n int, out *float32)

//go:noescape
func dotF16x1AVX2(w *uint16, wstride int, rows int, x *float32, n int, out *float32)

//go:noescape
func dotBF16x1AVX2(w *uint16, wstride int, rows int, x *float32, n int, out *float32)

//go:noescape
func dotF32x4AVX2(w *float32, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int)

//go:noescape
func dotF16x4AVX2(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int)

//go:noescape
func dotBF16x4AVX2(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int)

//go:noescape
func axpyF32AVX2(y *float32, a float32, x *float32, n int)

//go:noescape
func axpyF16AVX2(y *float32, a float32, x *uint16, n int)

//go:noescape
func wsumF32AVX2(y *float32, p *float32, v *float32, vstride int, rows int, d int)

//go:noescape
func wsumF16AVX2(y *float32, p *float32, v *uint16, vstride int, rows int, d int)

//go:noescape
func wsum3F32AVX2(y *float32, ystride int, p *float32, pstride int, v *float32, vstride int, rows int, d int)

//go:noescape
func wsum3F16AVX2(y *float32, ystride int, p *float32, pstride int, v *uint16, vstride int, rows int, d int)
