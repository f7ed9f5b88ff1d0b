//go:build !kvgo_generic

package kernel

//go:noescape
func quantizeQ8_0AVX2(x *float32, nb int, dst *byte, scales *float32)

//go:noescape
func quantizeQ8_KAVX2(x *float32, nb int, dst *byte)

//go:noescape
func roundF16AVX2(dst, x *float32, n int)

//go:noescape
func f32ToF16AVX2(dst *uint16, x *float32, n int)

//go:noescape
func f16ToF32AVX2(dst *float32, x *uint16, n int)
