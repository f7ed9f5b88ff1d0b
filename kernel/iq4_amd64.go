//go:build !kvgo_generic

package kernel

// Assembly kernels of iq4_amd64.s, called like those of qdot_amd64.go.

//go:noescape
func dotIQ4_NLx1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)

//go:noescape
func dotIQ4_NLx4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotIQ4_NLx8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotIQ4_XSx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotIQ4_XSx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
