//go:build !amd64 || kvgo_generic

package kernel

func quantizeQ8_0AVX2(x *float32, nb int, dst *byte, scales *float32) { panic("unreachable") }
func quantizeQ8_KAVX2(x *float32, nb int, dst *byte)                  { panic("unreachable") }
func roundF16AVX2(dst, x *float32, n int)                             { panic("unreachable") }
func f32ToF16AVX2(dst *uint16, x *float32, n int)                     { panic("unreachable") }
func f16ToF32AVX2(dst *float32, x *uint16, n int)                     { panic("unreachable") }
