//go:build !kvgo_generic

package kernel

import "golang.org/x/sys/cpu"

// haveAVX2 reports whether the CPU (and OS) support the instructions the
// assembly kernels use: AVX2 for the integer and float vectors, FMA for the
// multiply-adds and F16C for half-precision conversion. Every x86 CPU with
// AVX2 made so far also has FMA and F16C; the check is for emulators.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
