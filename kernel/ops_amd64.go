//go:build !kvgo_generic

package kernel

// Assembly kernels of ops_amd64.s; n is a multiple of 8.

//go:noescape
func sumSquaresAVX2(x *float32, n int) float64

//go:noescape
func scaleMulAVX2(out, x, w *float32, scale float32, n int)

//go:noescape
func scaleAVX2(x *float32, a float32, n int)

//go:noescape
func addAVX2(dst, src *float32, n int)

//go:noescape
func swigluAVX2(gate, up *float32, n int)

//go:noescape
func expSubAVX2(x *float32, m float32, n int) float64

//go:noescape
func expShiftAVX2(x *float32, m float32, n int) float64

//go:noescape
func maxAVX2(x *float32, n int) float32
