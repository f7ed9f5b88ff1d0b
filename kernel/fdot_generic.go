//go:build !amd64 || kvgo_generic

package kernel

func dotF32x1AVX2(w *float32, wstride int, rows int, x *float32, n int, out *float32) {
	panic("unreachable")
}
func dotF16x1AVX2(w *uint16, wstride int, rows int, x *float32, n int, out *float32) {
	panic("unreachable")
}
func dotBF16x1AVX2(w *uint16, wstride int, rows int, x *float32, n int, out *float32) {
	panic("unreachable")
}
func dotF32x4AVX2(w *float32, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int) {
	panic("unreachable")
}
func dotF16x4AVX2(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int) {
	panic("unreachable")
}
func dotBF16x4AVX2(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride, tstride int) {
	panic("unreachable")
}
func axpyF32AVX2(y *float32, a float32, x *float32, n int) { panic("unreachable") }
func axpyF16AVX2(y *float32, a float32, x *uint16, n int)  { panic("unreachable") }
func wsumF32AVX2(y *float32, p *float32, v *float32, vstride int, rows int, d int) {
	panic("unreachable")
}
func wsumF16AVX2(y *float32, p *float32, v *uint16, vstride int, rows int, d int) {
	panic("unreachable")
}
func wsum3F32AVX2(y *float32, ystride int, p *float32, pstride int, v *float32, vstride int, rows int, d int) {
	panic("unreachable")
}
func wsum3F16AVX2(y *float32, ystride int, p *float32, pstride int, v *uint16, vstride int, rows int, d int) {
	panic("unreachable")
}
