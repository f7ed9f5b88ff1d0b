//go:build !kvgo_generic

package kernel

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

//go:noescape
func dequantBlocksU4x32AVX2(dst *float32, src *byte, sm *float32, nblk, bvals int)
