package bench

import (
	"bytes"
	"fmt"
	"io"
	"runtime/pprof"

	"github.com/google/pprof/profile"
)

// Profiler records a CPU profile of a run's timed repetitions only, not of
// filling the caches to their depth: pass its Measuring as
// Config.Measuring. Go runs one CPU profile at a time and cannot pause
// it, so each test gets a profile of its own and Write merges them into
// one. The zero Profiler is ready to use.
type Profiler struct {
	buf   *bytes.Buffer
	parts []*profile.Profile
	err   error
}

// Measuring starts (on) or ends (!on) a section. The first error is kept
// for Write; later sections are skipped once one failed.
func (p *Profiler) Measuring(on bool) {
	if p.err != nil {
		return
	}
	if on {
		p.buf = new(bytes.Buffer)
		p.err = pprof.StartCPUProfile(p.buf)
		return
	}
	if p.buf == nil {
		return
	}
	pprof.StopCPUProfile()
	prof, err := profile.Parse(p.buf)
	p.buf = nil
	if err != nil {
		p.err = fmt.Errorf("cpu profile: %w", err)
		return
	}
	p.parts = append(p.parts, prof)
}

// Write ends a section still open and writes the merged profile to w (the
// pprof format, gzipped). It fails if no section was recorded.
func (p *Profiler) Write(w io.Writer) error {
	p.Measuring(false)
	if p.err != nil {
		return p.err
	}
	if len(p.parts) == 0 {
		return fmt.Errorf("cpu profile: no test ran")
	}
	merged, err := profile.Merge(p.parts)
	if err != nil {
		return fmt.Errorf("cpu profile: merging the tests' profiles: %w", err)
	}
	return merged.Write(w)
}
