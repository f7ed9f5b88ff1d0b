//go:build !amd64 || kvgo_generic

package kernel

func dequantBlocksI8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
func dequantBlocksU8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
func dequantBlocksU4AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
func dequantBlocksU4x32AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) {
	panic("unreachable")
}
func dequantBlocksU2AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int) { panic("unreachable") }
