//go:build !amd64 || kvgo_generic

package kernel

// haveAVX2 is false where the assembly kernels are not built; the methods
// below are never called then, but keep the dispatching code compiling.
const haveAVX2 = false

func (m *Matrix) dot1AVX2(out []float32, r0, rr int, a *acts, t int) { panic("unreachable") }
func (m *Matrix) dot4AVX2(out []float32, r0, rr int, a *acts, t int) { panic("unreachable") }
func (m *Matrix) dot8AVX2(out []float32, r0, rr int, a *acts, t int) { panic("unreachable") }
