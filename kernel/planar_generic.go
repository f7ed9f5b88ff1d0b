//go:build !amd64 || kvgo_generic

package kernel

func dotsPlanar4x4AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32) {
	panic("unreachable")
}
func dotsPlanar2x4AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32) {
	panic("unreachable")
}
func dotsPlanar4x1AVX2(codes *byte, n, d int, q *int16, scale, bias float32, out *float32) {
	panic("unreachable")
}
func dotsPlanar2x1AVX2(codes *byte, n, d int, q *int16, scale, bias float32, out *float32) {
	panic("unreachable")
}
func quantHeadsI16AVX2(dst *int16, x, mul, scales *float32, d, heads int) { panic("unreachable") }
func dotsPlanar4x3AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32) {
	panic("unreachable")
}
func dotsPlanar2x3AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32) {
	panic("unreachable")
}
