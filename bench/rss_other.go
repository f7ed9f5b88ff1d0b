//go:build !unix

package bench

// PeakRSS is not measured on this platform: it returns 0.
func PeakRSS() int64 { return 0 }
