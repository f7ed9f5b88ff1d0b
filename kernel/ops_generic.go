//go:build !amd64 || kvgo_generic

package kernel

func sumSquaresAVX2(x *float32, n int) float64              { panic("unreachable") }
func scaleMulAVX2(out, x, w *float32, scale float32, n int) { panic("unreachable") }
func scaleAVX2(x *float32, a float32, n int)                { panic("unreachable") }
func addAVX2(dst, src *float32, n int)                      { panic("unreachable") }
func swigluAVX2(gate, up *float32, n int)                   { panic("unreachable") }
func expSubAVX2(x *float32, m float32, n int) float64       { panic("unreachable") }
func maxAVX2(x *float32, n int) float32                     { panic("unreachable") }
func expShiftAVX2(x *float32, m float32, n int) float64     { panic("unreachable") }
