package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv/offload"
)

// offloadFlags are --kv-offload and --kv-hot: the cold tier of run, bench
// and serve (kv/offload).
type offloadFlags struct {
	dir, hot string
}

func (o *offloadFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.dir, "kv-offload", "", "keep each sequence's KV pages in a file in `dir`, with only page summaries and the pages read most recently on the heap (best with a selector such as quest(budget=2048)); the file is removed when the sequence ends")
	fs.StringVar(&o.hot, "kv-hot", "64MiB", "with --kv-offload: heap `budget` of each sequence's pages (the pages read most recently)")
}

// options parses the flags; nil without --kv-offload.
func (o *offloadFlags) options() (*offload.Options, error) {
	if o.dir == "" {
		return nil, nil
	}
	hot, err := parseSize(o.hot)
	if err != nil {
		return nil, usagef("invalid value %q for --kv-hot: %v", o.hot, err)
	}
	opts := &offload.Options{Dir: o.dir, HotBytes: hot}
	if err := opts.Validate(); err != nil {
		return nil, usageError{err.Error()}
	}
	return opts, nil
}

// apply gives e the cold tier, after checking that its directory can be
// written. When it cannot, a sequence whose whole cache (need bytes) fits
// the memory budget runs in memory with a warning; otherwise that is an
// error.
func (o *offloadFlags) apply(e *engine.Engine, need, budget int64, stderr io.Writer) error {
	opts, err := o.options()
	if opts == nil || err != nil {
		return err
	}
	if err := offload.Check(opts.Dir); err != nil {
		warn, err := engine.OffloadFallback(opts.Dir, err, need, budget)
		if err != nil {
			return fmt.Errorf("--kv-offload: %w", err)
		}
		fmt.Fprintf(stderr, "kvgo: %s\n", warn)
		return nil
	}
	e.Offload = opts
	// Pages read back and new pages are made in pages written out
	// (kv/offload), so the tier itself makes hardly any garbage; but any
	// garbage lets the heap grow, at Go's default GOGC=100, to twice what
	// is live (the pages and summaries the tier keeps, the model's
	// scratch): the memory the tier exists to bound. A quarter over is
	// the cost of a few more collections of a small heap, and with so
	// little garbage they are rare. GOGC, when set, decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(offloadGCPercent)
	}
	return nil
}

// offloadGCPercent is the garbage collector's target with a cold tier.
const offloadGCPercent = 25
