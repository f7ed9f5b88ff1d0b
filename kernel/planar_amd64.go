//go:build !kvgo_generic

package kernel

// Assembly kernels of planar_amd64.s. d is a multiple of 32 and n >= 1 for
// the dot kernels; n is a multiple of 8 (and > 0) for the quantizer's.

//go:noescape
func dotsPlanar4x4AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)

//go:noescape
func dotsPlanar2x4AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)

//go:noescape
func dotsPlanar4x1AVX2(codes *byte, n, d int, q *int16, scale, bias float32, out *float32)

//go:noescape
func dotsPlanar2x1AVX2(codes *byte, n, d int, q *int16, scale, bias float32, out *float32)

//go:noescape
func quantHeadsI16AVX2(dst *int16, x, mul, scales *float32, d, heads int)

//go:noescape
func dotsPlanar4x3AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)

//go:noescape
func dotsPlanar2x3AVX2(codes *byte, n, d int, qs *[4]*int16, sb *[8]float32, outs *[4]*float32)
