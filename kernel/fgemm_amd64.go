//go:build !kvgo_generic

package kernel

// useF16x44 selects dotF16x44AVX512 for F16 weights in batches (AVX512F
// and VL, which haveVNNI implies; KVGO_NO_AVX512=1 turns it off with the
// rest).
var useF16x44 = useVNNI

//go:noescape
func dotF16x44AVX512(w *uint16, wstride int, rows int, x *float32, xstride int, n int, out *float32, ostride int)
