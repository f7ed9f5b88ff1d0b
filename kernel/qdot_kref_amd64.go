//go:build !kvgo_generic

package kernel

// Assembly kernels of qdot_q1_amd64.s (Q4_1, Q5_1) and qdot_k23_amd64.s
// (Q2_K, Q3_K), called like those of kdot_amd64.s.

//go:noescape
func dotQ4_1x1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotQ4_1x4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)

//go:noescape
func dotQ5_1x1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotQ5_1x4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)

//go:noescape
func dotQ2_Kx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotQ2_Kx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)

//go:noescape
func dotQ3_Kx1AVX2(w *byte, rows int, x *byte, nb int, out *float32)

//go:noescape
func dotQ3_Kx4AVX2(w *byte, rows int, x *byte, xstride int, nb int, out *float32)
