//go:build !amd64 || kvgo_generic

package kernel

func dequantI8AVX2(dst *float32, src *byte, n int, s float32)                   { panic("unreachable") }
func dequantU8AVX2(dst *float32, src *byte, n int, s, m float32)                { panic("unreachable") }
func dequantU4AVX2(dst *float32, src *byte, nbytes int, s, m float32)           { panic("unreachable") }
func dequantBlocksI8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
func dequantBlocksU8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
func dequantBlocksU4AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
func dequantBlocksU2AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
