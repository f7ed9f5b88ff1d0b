package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/google/pprof/profile"
)

// sectionProfiler records a CPU profile of chosen sections of a run only
// (bench's timed tests, not the filling of the cache before them): Go can
// run one CPU profile at a time and not pause it, so each section gets its
// own profile and Write merges them into one.
type sectionProfiler struct {
	buf   *bytes.Buffer
	parts []*profile.Profile
	err   error
}

// set starts (on) or ends (!on) a section. The first error is kept for
// Write; later sections are skipped once one failed.
func (s *sectionProfiler) set(on bool) {
	if s.err != nil {
		return
	}
	if on {
		s.buf = new(bytes.Buffer)
		s.err = pprof.StartCPUProfile(s.buf)
		return
	}
	if s.buf == nil {
		return
	}
	pprof.StopCPUProfile()
	p, err := profile.Parse(s.buf)
	s.buf = nil
	if err != nil {
		s.err = fmt.Errorf("cpu profile: %w", err)
		return
	}
	s.parts = append(s.parts, p)
}

// Write ends a section still open and writes the merged profile to w.
func (s *sectionProfiler) Write(w io.Writer) error {
	s.set(false)
	if s.err != nil {
		return s.err
	}
	if len(s.parts) == 0 {
		return fmt.Errorf("cpu profile: no test ran")
	}
	p, err := profile.Merge(s.parts)
	if err != nil {
		return fmt.Errorf("cpu profile: merging the tests' profiles: %w", err)
	}
	return p.Write(w)
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
