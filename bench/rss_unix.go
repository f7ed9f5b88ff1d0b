//go:build unix

package bench

import (
	"runtime"
	"syscall"
)

// PeakRSS is the process's peak resident set size in bytes (0 if it
// cannot be read): Report.PeakRSSBytes.
func PeakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return ru.Maxrss // bytes on macOS
	}
	return ru.Maxrss * 1024 // kilobytes on Linux and the BSDs
}
