package kernel

import "os"

// useAVX2 selects the amd64 assembly kernels. It is decided once, when the
// package is initialized, and never changes afterwards: the CPU must have
// AVX2, FMA and F16C, the build must not carry the kvgo_generic tag, and
// the environment variable KVGO_GENERIC must not be set to anything but
// "" or "0". Forcing the generic path lets CI and anyone chasing a
// numerical difference run the pure-Go reference kernels on any machine.
var useAVX2 = haveAVX2 && !envGeneric()

func envGeneric() bool {
	v := os.Getenv("KVGO_GENERIC")
	return v != "" && v != "0"
}

// Accelerated reports which kernels run: "avx2" for the amd64 assembly,
// "generic" for the pure-Go ones.
func Accelerated() string {
	if useAVX2 {
		return "avx2"
	}
	return "generic"
}
