package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version describes the binary: the module version when it was built from
// a module (go install ...@v1.2.3), else the VCS revision Go stamped, and
// the Go toolchain.
func version() string {
	v, rev, dirty := "(devel)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		v += " " + rev
	}
	return fmt.Sprintf("kvgo %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// maxErrLine bounds the error line a command prints, whatever the error
// quotes: every error should already be short, and this keeps one that is
// not from flooding a terminal.
const maxErrLine = 1024

func errLine(err error) string {
	s := err.Error()
	if len(s) > maxErrLine {
		return s[:maxErrLine] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}
