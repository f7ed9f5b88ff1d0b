//go:build !kvgo_generic

package kernel

// Assembly kernels of dequant_amd64.s. n counts values for the 8-bit
// kernels (a multiple of 8) and bytes for the 4-bit one (a multiple of 8).

//go:noescape
func dequantI8AVX2(dst *float32, src *byte, n int, s float32)

//go:noescape
func dequantU8AVX2(dst *float32, src *byte, n int, s, m float32)

//go:noescape
func dequantU4AVX2(dst *float32, src *byte, nbytes int, s, m float32)

// Block-run dequantizers: nblk blocks of bvals values (a multiple of 16),
// block b scaled by sm[2b] and offset by sm[2b+1].

//go:noescape
func dequantBlocksI8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)

//go:noescape
func dequantBlocksU8AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)

//go:noescape
func dequantBlocksU4AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)

//go:noescape
func dequantBlocksU2AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)
