//go:build !amd64 || kvgo_generic

package kernel

// useGEMM is false where the assembly kernels are not built; gemmRun is
// never called then.
const useGEMM = false

func (m *Matrix) gemmRun(pack []byte, tmp *[tileRows * 8]float32, out []float32, lo, hi int, a *acts, n int) []byte {
	panic("unreachable")
}
