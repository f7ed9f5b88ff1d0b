//go:build !kvgo_generic

package kernel

import (
	"os"

	"golang.org/x/sys/cpu"
)

// haveVNNI reports whether the CPU (and OS) support the AVX-512 kernels of
// vnni_amd64.s: VPDPBUSD (AVX512_VNNI) on 256-bit registers (AVX512VL).
// x/sys/cpu reports the AVX-512 features only when the OS saves the
// AVX-512 register state.
var haveVNNI = haveAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL &&
	cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// useVNNI selects the AVX-512 kernels over the AVX2 ones. It is decided
// once, at package initialization: the CPU must have VNNI and the
// environment variable KVGO_NO_AVX512 must not be set to anything but "" or
// "0". The VNNI row kernels here compute the AVX2 kernels' results bit for
// bit (TestVNNIMatchesAVX2), so for them the switch
// only exists to measure one against the other end to end; the tile GEMM
// (gemm_amd64.go) and the F16 kernel (fgemm_amd64.go) follow it too.
var useVNNI = haveVNNI && !envNoAVX512()

func envNoAVX512() bool {
	v := os.Getenv("KVGO_NO_AVX512")
	return v != "" && v != "0"
}

// The kernels' signatures (see qdot_amd64.go): legacy blocks against one
// or several tokens.
type (
	legacyX1 = func(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)
	legacyX4 = func(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
)

// pick returns vnni where useVNNI holds, avx2 otherwise.
func pick[F any](vnni, avx2 F) F {
	if useVNNI {
		return vnni
	}
	return avx2
}

// vnniMaxBlocks is the longest row, in blocks, of the unsigned-weight
// kernels of vnniu_amd64.s, whose activation-sum tables live on their
// fixed-size stack frames.
const vnniMaxBlocks = 1024

// unsignedX4 runs u, an unsigned-weight kernel, on rows it has room for,
// and s, the sign-trick kernel, on longer ones.
func unsignedX4(u, s legacyX4) legacyX4 {
	return func(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32) {
		if nb <= vnniMaxBlocks {
			u(w, rows, x, xstride, xs4, nb, out)
		} else {
			s(w, rows, x, xstride, xs4, nb, out)
		}
	}
}

// The kernels the dispatch in matmul_amd64.go calls: the VNNI
// ones where useVNNI holds, the AVX2 ones otherwise. Set once, never
// changed.
var (
	dotQ8_0x1 = pick(dotQ8_0x1VNNI, dotQ8_0x1AVX2)
	dotQ4_0x1 = pick(dotQ4_0x1VNNI, dotQ4_0x1AVX2)
	dotQ5_0x1 = pick(dotQ5_0x1VNNI, dotQ5_0x1AVX2)
	dotQ8_0x4 = pick(unsignedX4(dotQ8_0x4VNNIU, dotQ8_0x4VNNI), dotQ8_0x4AVX2)
	dotQ4_0x4 = pick(unsignedX4(dotQ4_0x4VNNIU, dotQ4_0x4VNNI), dotQ4_0x4AVX2)
	dotQ5_0x4 = pick(unsignedX4(dotQ5_0x4VNNIU, dotQ5_0x4VNNI), dotQ5_0x4AVX2)
	dotQ8_0x8 = pick(unsignedX4(dotQ8_0x8VNNIU, dotQ8_0x8VNNI), dotQ8_0x8AVX2)
	dotQ4_0x8 = pick(unsignedX4(dotQ4_0x8VNNIU, dotQ4_0x8VNNI), dotQ4_0x8AVX2)
	dotQ5_0x8 = pick(unsignedX4(dotQ5_0x8VNNIU, dotQ5_0x8VNNI), dotQ5_0x8AVX2)
)

// Assembly kernels of vnni_amd64.s (legacy blocks), each computing what
// the AVX2 kernel of the same name computes. The K-quant row kernels have
// no VNNI twins: VPDPWSSD for their VPMADDWD+VPADDD bought 1.03-1.09x in
// a 64-row tile and 1.03-1.04x in a whole decode MatMul
// (BenchmarkKQuantVNNI, BenchmarkMatMulVNNI, commit 808c0f1), not worth a
// second copy of kdot_amd64.s; their prefill goes through the tile GEMM. Only called when haveVNNI holds.

//go:noescape
func dotQ8_0x1VNNI(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x1VNNI(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x1VNNI(w *byte, rows int, x *byte, xs *float32, nb int, out *float32)

//go:noescape
func dotQ8_0x4VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x4VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x4VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ8_0x8VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x8VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x8VNNI(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

// Unsigned-weight kernels of vnniu_amd64.s, for nb <= vnniMaxBlocks.

//go:noescape
func dotQ8_0x4VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x4VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x4VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ8_0x8VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ4_0x8VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)

//go:noescape
func dotQ5_0x8VNNIU(w *byte, rows int, x *byte, xstride int, xs4 *float32, nb int, out *float32)
