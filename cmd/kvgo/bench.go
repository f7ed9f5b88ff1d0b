package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"github.com/kvgo/kvgo/bench"
	"github.com/kvgo/kvgo/internal/units"
	"github.com/kvgo/kvgo/kv/recipe"
)

// benchReport is the --json output of kvgo bench (schema kvgo-bench/1,
// documented in docs/PERFORMANCE.md).
type benchReport struct {
	Schema       string         `json:"schema"`
	Model        string         `json:"model"`
	Params       uint64         `json:"params"`
	Threads      int            `json:"threads"`
	GOARCH       string         `json:"goarch"`
	Results      []bench.Result `json:"results"`
	PeakRSSBytes int64          `json:"peak_rss_bytes"`
	// MemBW is the measured memory bandwidth in bytes/s (0 = not measured).
	MemBW               float64 `json:"membw_bytes_per_second"`
	WeightBytesPerToken int64   `json:"weight_bytes_per_token"`
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "[-m FILE] [-p 512] [-n 128] [-d 0,2048,8192] [-r 5] [--kv RECIPE;RECIPE] [--interleave] [--json]")
	var mf modelFlags
	mf.register(fs)
	p := fs.Int("p", 512, "prompt tokens per pp test (0 = skip)")
	n := fs.Int("n", 128, "generated tokens per tg test (0 = skip)")
	depths := fs.String("d", "0,2048,8192", "comma-separated context `depths`")
	reps := fs.Int("r", 5, "timed repetitions per test (each test first runs once untimed)")
	batch := fs.Int("b", 512, "prompt tokens per forward pass")
	kvFlag := fs.String("kv", recipe.Default, "KV `recipes` to compare, separated by ';'")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the timed tests (not of filling the cache to its depth) to `file` (go tool pprof)")
	interleave := fs.Bool("interleave", false, "fill every recipe's cache first, then run each repetition once per recipe in turn, and report each recipe's speed relative to the first one in the same repetitions (needs every cache in memory at once)")
	membw := fs.Bool("membw", false, "measure memory bandwidth and show each tg test's bound (bandwidth / bytes read per token)")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *p < 0 || *n < 0 || (*p == 0 && *n == 0) {
		return usagef("-p and -n must be >= 0 and not both 0")
	}
	if *reps < 1 || *batch < 1 {
		return usagef("-r and -b must be at least 1")
	}
	var ds []int
	for _, s := range strings.Split(*depths, ",") {
		d, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return usagef("invalid depth %q in -d", s)
		}
		ds = append(ds, d)
	}
	var recipes []*recipe.Recipe
	for _, s := range strings.Split(*kvFlag, ";") {
		r, err := parseRecipe(s)
		if err != nil {
			return err
		}
		recipes = append(recipes, r)
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	cfg := bench.Config{Prompt: *p, Gen: *n, Depths: ds, Reps: *reps, Batch: *batch, Recipes: recipes, Interleave: *interleave}

	if !*asJSON {
		fmt.Fprintf(stdout, "model: %s (%s, %s params, %s of weights read per token), %d threads\n", e.Source, e.Model.Arch, units.Params(e.Params()), units.Bytes(e.WeightBytesPerToken()), e.Pool.Threads())
		fmt.Fprintln(stdout)
		paired := *interleave && len(recipes) > 1
		head := fmt.Sprintf("| %-40s | %-7s | %6s | %20s | %11s | %6s |", "recipe", "test", "depth", "t/s", "KV", "ratio")
		rule := fmt.Sprintf("|%s|%s|%s|%s|%s|%s|", strings.Repeat("-", 42), strings.Repeat("-", 9), strings.Repeat("-", 8), strings.Repeat("-", 22), strings.Repeat("-", 13), strings.Repeat("-", 8))
		if paired {
			head += fmt.Sprintf(" %15s |", "vs first")
			rule += strings.Repeat("-", 17) + "|"
		}
		fmt.Fprintln(stdout, head)
		fmt.Fprintln(stdout, rule)
		cfg.Progress = func(r bench.Result) {
			line := fmt.Sprintf("| %-40s | %-7s | %6d | %10.2f ± %7.2f | %11s | %6.3f |", r.Recipe, r.Test, r.Depth, r.TokPerSec, r.StdDev, units.Bytes(r.KVBytes), r.Ratio)
			if paired {
				line += fmt.Sprintf(" %6.3f ± %6.3f |", r.VsFirst, r.VsFirstStdDev)
			}
			fmt.Fprintln(stdout, line)
		}
	}
	var prof sectionProfiler
	if *cpuprofile != "" {
		cfg.Measuring = prof.set
	}
	results, err := bench.Run(ctx, e, cfg)
	if *cpuprofile != "" {
		if perr := writeFile(*cpuprofile, prof.Write); perr != nil && err == nil {
			err = perr
		}
	}
	rss := peakRSS() // before the bandwidth test's buffer
	var bw float64
	if *membw && err == nil {
		bw = bench.MemoryBandwidth(e.Pool, 1<<30, 5)
		bench.SetBounds(results, bw, e.WeightBytesPerToken())
	}
	if *asJSON {
		rep := benchReport{Schema: "kvgo-bench/1", Model: e.Source, Params: e.Params(), Threads: e.Pool.Threads(), GOARCH: runtime.GOARCH,
			Results: results, PeakRSSBytes: rss, MemBW: bw, WeightBytesPerToken: e.WeightBytesPerToken()}
		if rep.Results == nil {
			rep.Results = []bench.Result{}
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "\npeak RSS: %s\n", units.Bytes(rss))
		if bw > 0 {
			fmt.Fprintf(stdout, "memory bandwidth: %.1f GB/s; decode bound = bandwidth / (weights + KV bytes) per token:\n", bw/1e9)
			for _, r := range results {
				if r.BoundTokPerSec > 0 {
					fmt.Fprintf(stdout, "  %-40s %-7s depth %6d: %8.2f t/s = %5.1f%% of the bound %.2f\n", r.Recipe, r.Test, r.Depth, r.TokPerSec, 100*r.TokPerSec/r.BoundTokPerSec, r.BoundTokPerSec)
				}
			}
		}
	}
	return err
}
