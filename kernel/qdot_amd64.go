//go:build !kvgo_generic

package kernel

// Assembly kernels of qdot_amd64.s. Pointers address the first byte of
// the data; the Go wrappers in qdot.go check every length before calling.

//go:noescape
func dotQ8_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x1AVX2(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)

//go:noescape
func dotQ4_Kx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotQ4_Kx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)

//go:noescape
func dotQ5_Kx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotQ5_Kx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)

//go:noescape
func dotQ6_Kx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotQ6_Kx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)

//go:noescape
func dotQ8_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ8_0x8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x4AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x8AVX2(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
