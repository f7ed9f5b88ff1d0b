package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/kvgo/kvgo/bench"
	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv/recipe"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "[-m FILE] [-p 512] [-n 128] [-d 0,2048,8192] [-r 5] [--kv RECIPE;RECIPE] [--interleave] [--npl 4,8,16] [--json]")
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
	npl := fs.String("npl", "", "comma-separated `counts` of sequences that decode -n tokens together after each filled its own cache to the depth (batched decode, as llama-batched-bench -npl; replaces the tg test)")
	var of offloadFlags
	of.register(fs)
	membw := fs.Bool("membw", false, "measure memory bandwidth and the attention kernels' arithmetic rate, and show each tg test's bound (bandwidth / bytes read per token) and its bound with the attention's arithmetic")
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
	var parallel []int
	if *npl != "" {
		if *n == 0 {
			return usagef("--npl needs -n tokens to decode")
		}
		if *interleave {
			return usagef("--npl and --interleave do not combine")
		}
		for _, s := range strings.Split(*npl, ",") {
			k, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || k < 1 {
				return usagef("invalid sequence count %q in --npl", s)
			}
			parallel = append(parallel, k)
		}
	}
	var recipes []*recipe.Recipe
	for _, s := range strings.Split(*kvFlag, ";") {
		r, err := parseRecipe(s)
		if err != nil {
			return err
		}
		recipes = append(recipes, r)
	}
	if _, err := of.options(); err != nil {
		return err
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	cfg := bench.Config{Prompt: *p, Gen: *n, Depths: ds, Reps: *reps, Batch: *batch, Recipes: recipes, Interleave: *interleave, Parallel: parallel}
	if !flagSet(fs, "d") {
		// The default depths suit a model with a long context and recipes
		// that run at any depth; leave out, with a note, those this model
		// or a recipe cannot run (kvgo-tiny's context is 2048 tokens; a
		// read budget of 2048 tokens refuses depth 0). Depths given with
		// -d are checked by bench.Run, which refuses them.
		cfg.Depths = usableDepths(e, cfg, stderr)
		if len(cfg.Depths) == 0 {
			return fmt.Errorf("no default depth (%s) suits this model and these recipes; give them with -d", *depths)
		}
	}
	if of.dir != "" {
		// Without a writable directory, the caches may stay in memory
		// only if the deepest fits the heap budget given to its pages.
		hot, _ := parseSize(of.hot)
		if err := of.apply(e, e.FullCacheBytes(slices.Max(cfg.Depths)+max(*p, *n)), hot, stderr); err != nil {
			return err
		}
	}
	rep := bench.NewReport(e)
	var table *bench.Table
	if !*asJSON {
		table = bench.NewTable(stdout, rep, *interleave && len(recipes) > 1)
		cfg.Progress = table.Row
	}
	var prof bench.Profiler
	if *cpuprofile != "" {
		cfg.Measuring = prof.Measuring
	}
	rep.Results, err = bench.Run(ctx, e, cfg)
	if *cpuprofile != "" {
		if perr := writeFile(*cpuprofile, prof.Write); perr != nil && err == nil {
			err = perr
		}
	}
	rep.PeakRSSBytes = bench.PeakRSS() // before the bandwidth test's buffer
	if *membw && err == nil {
		rep.MemBW = bench.MemoryBandwidth(e.Pool, 1<<30, 5)
		rep.FMAFlops = bench.FMAThroughput(e.Pool, 5)
		bench.SetBounds(rep.Results, rep.MemBW, rep.WeightBytesPerToken)
	}
	if *asJSON {
		if jerr := rep.WriteJSON(stdout); err == nil {
			err = jerr
		}
	} else {
		table.Summary(rep)
	}
	return err
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

// usableDepths returns the depths of cfg at which every recipe can run
// its tests, telling stderr why each other one is left out.
func usableDepths(e *engine.Engine, cfg bench.Config, stderr io.Writer) []int {
	var keep []int
	for _, d := range cfg.Depths {
		if err := cfg.CheckDepth(e, d); err != nil {
			fmt.Fprintf(stderr, "kvgo bench: depth %d left out (-d sets the depths): %s\n", d, strings.TrimPrefix(err.Error(), "bench: "))
			continue
		}
		keep = append(keep, d)
	}
	return keep
}
