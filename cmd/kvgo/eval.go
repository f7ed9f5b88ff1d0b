package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kvgo/kvgo/eval"
	"github.com/kvgo/kvgo/eval/tasks"
	"github.com/kvgo/kvgo/kv/recipe"
)

// cmdEval measures KV recipes: "kvgo eval" runs the task comparison and
// writes the report; "kvgo eval gen" writes the built-in suite as JSONL;
// "kvgo eval fidelity" compares recipes with the full cache on a text.
func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "fidelity":
			return cmdFidelity(ctx, args[1:], stdout, stderr)
		case "gen":
			return cmdEvalGen(ctx, args[1:], stdout, stderr)
		case "rag":
			return cmdEvalRAG(ctx, args[1:], stdout, stderr)
		}
	}
	return cmdEvalRun(ctx, args, stdout, stderr)
}

// suiteFlags are the built-in suite's flags, shared by "eval" and
// "eval gen".
type suiteFlags struct {
	suite, lengths, depths, haystack string
	cases                            int
	seed                             uint64
}

func (s *suiteFlags) register(fs *flag.FlagSet, defSuite string, withTasks bool) {
	filter, limit := "", ""
	if withTasks {
		filter, limit = " (with --tasks: keep only these)", " (with --tasks: at most this many per task × length, a sample stratified by needle depth drawn with --seed; 0 = all)"
	}
	fs.StringVar(&s.suite, "suite", defSuite, "built-in `tasks`, comma-separated: passkey, multikey, kv, vt, multivalue, or all"+filter)
	fs.StringVar(&s.lengths, "lengths", "256,512,1024,2048", "context `lengths` in the model's tokens"+filter)
	fs.StringVar(&s.depths, "depths", "0,0.25,0.5,0.75,1", "needle `depths`, relative positions 0..1")
	fs.IntVar(&s.cases, "cases", 1, "cases per task × length × depth"+limit)
	fs.Uint64Var(&s.seed, "seed", 1, "random `seed` of the built-in suite")
	fs.StringVar(&s.haystack, "haystack", tasks.HaystackMixed, "haystack: mixed, prose or noise")
}

func (s *suiteFlags) spec() (tasks.Spec, error) {
	names, err := tasks.ParseNames(s.suite)
	if err != nil {
		return tasks.Spec{}, usagef("--suite: %v", err)
	}
	lengths, err := parseInts(s.lengths)
	if err != nil {
		return tasks.Spec{}, usagef("--lengths: %v", err)
	}
	depths, err := parseFloats(s.depths)
	if err != nil {
		return tasks.Spec{}, usagef("--depths: %v", err)
	}
	if err := oneOf("haystack", s.haystack, tasks.HaystackMixed, tasks.HaystackProse, tasks.HaystackNoise); err != nil {
		return tasks.Spec{}, err
	}
	return tasks.Spec{Seed: s.seed, Tasks: names, Lengths: lengths, Depths: depths, Cases: s.cases, Haystack: s.haystack}, nil
}

func cmdEvalGen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval gen", "[-m FILE] [-o CASES.jsonl] [--suite TASKS] [--lengths N,...] [--depths D,...] [--cases N] [--seed N]")
	var mf modelFlags
	mf.register(fs)
	var sf suiteFlags
	sf.register(fs, "all", false)
	out := fs.String("o", "-", "output `file` (- = standard output)")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	spec, err := sf.spec()
	if err != nil {
		return err
	}
	if spec.Cases < 1 {
		return usagef("--cases must be at least 1")
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	cases, err := tasks.Generate(spec, eval.Tokens(e))
	if err != nil {
		return err
	}
	if *out == "-" {
		return tasks.Write(stdout, cases)
	}
	if err := eval.WriteCases(*out, cases); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d cases (%s at %s tokens, measured in %s's tokens) to %s\n",
		len(cases), strings.Join(spec.Tasks, ", "), sf.lengths, e.Source, *out)
	return nil
}

func cmdEvalRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", "") // the usage below replaces the generic one
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kvgo eval [-m FILE] [--tasks CASES.jsonl] [--kv \"R1;R2\"] [-o DIR]\n"+
			"       kvgo eval gen [flags]        write the built-in suite as JSONL\n"+
			"       kvgo eval fidelity [flags]   KL divergence and perplexity against the full cache on a text\n\n"+
			"Runs every case greedily with every recipe, scores the answers, measures memory and speed,\n"+
			"compares next-token distributions with the full cache, and writes report.html and report.json.\n"+
			"With no flags: the built-in passkey suite on the embedded model with a default comparison.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var mf modelFlags
	mf.register(fs)
	var sf suiteFlags
	sf.register(fs, "passkey", true)
	tasksFile := fs.String("tasks", "", "case `file` (JSONL, the format of ../shared/eval/retrieval-dev.jsonl); default: the built-in suite")
	kvFlag := fs.String("kv", "", "KV `recipes` separated by ';' (default: "+strings.Join(eval.DefaultRecipes(), "; ")+")")
	baseFlag := fs.String("base", recipe.Default, "the full-cache `recipe`: fidelity is measured against it, and it runs first")
	extra := fs.Int("extra", 8, "tokens generated beyond the answer's length")
	fidFile := fs.String("f", "", "fidelity text `file` (.jsonl: its prompts); default: the prompts of the cases")
	fidCtx := fs.Int("fidelity-ctx", 512, "fidelity chunk `tokens`: the first half is compressed context, the rest decoded and compared")
	fidChunks := fs.Int("fidelity-chunks", 2, "fidelity chunks (0 = skip fidelity)")
	outDir := fs.String("o", "kvgo-eval-report", "report `directory` (report.html, report.json)")
	format := fs.String("format", "table", "what to print on stdout: table, json or none")
	quiet := fs.Bool("quiet", false, "no progress bar")
	trace := fs.Bool("trace", false, "record per case which needle tokens each layer and KV head of an evicting recipe kept (needle_trace in the JSON)")
	equalKV := fs.String("equal-kv", "", "compare at equal memory: `fractions` of the full f16 cache (e.g. 0.15,0.3,0.5); each recipe with a budget runs once per fraction, its budget searched so its cache holds that much")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q (subcommands: gen, fidelity)", pos)
	}
	if err := oneOf("format", *format, "table", "json", "none"); err != nil {
		return err
	}
	if *extra < 1 || *fidCtx < 0 || *fidChunks < 0 {
		return usagef("--extra must be at least 1; --fidelity-ctx and --fidelity-chunks at least 0")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	opt := eval.Options{
		Recipes: *kvFlag, Base: *baseFlag, Tasks: *tasksFile, Suite: tasks.Spec{Seed: sf.seed},
		ExtraTokens: *extra, FidelityText: *fidFile, FidelityCtx: *fidCtx, FidelityChunks: *fidChunks,
		AdaptFidelityCtx: !set["fidelity-ctx"], Dir: *outDir, Trace: *trace,
		Warn: func(msg string) { fmt.Fprintf(stderr, "kvgo eval: %s\n", msg) },
	}
	if !set["kv"] {
		opt.Recipes = strings.Join(eval.DefaultRecipes(), ";")
	}
	if *equalKV != "" {
		if opt.EqualKV, err = parseFloats(*equalKV); err != nil {
			return usagef("--equal-kv: %v", err)
		}
	}
	if !*quiet {
		opt.Progress, opt.Terminal = stderr, isTerminal(stderr)
	}
	if *tasksFile == "" {
		if opt.Suite, err = sf.spec(); err != nil {
			return err
		}
	} else { // the suite flags given narrow the file's cases
		if set["suite"] {
			if opt.FilterTasks, err = tasks.ParseNames(sf.suite); err != nil {
				return usagef("--suite: %v", err)
			}
		}
		if set["lengths"] {
			if opt.FilterLengths, err = parseInts(sf.lengths); err != nil {
				return usagef("--lengths: %v", err)
			}
		}
		if set["cases"] {
			opt.FilterCases = sf.cases
		}
	}
	job, err := eval.NewJob(opt)
	if err != nil {
		return usageError{err.Error()}
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	res, err := job.Run(ctx, e)
	if err != nil {
		return err
	}
	switch *format {
	case "table":
		res.Report.WriteTable(stdout)
	case "json":
		res.Report.WriteJSON(stdout)
	}
	if res.WriteErr != nil {
		return fmt.Errorf("writing the report: %w", res.WriteErr)
	}
	fmt.Fprintf(stderr, "report: %s\n        %s\n", res.HTML, res.JSON)
	return res.Err()
}

// isTerminal reports whether w is a terminal, where the progress bar can
// redraw in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || x < 0 || x > 1 {
			return nil, fmt.Errorf("%q is not a number in 0..1", f)
		}
		out = append(out, x)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func cmdFidelity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval fidelity", "[-m FILE] -f TEXT|CASES.jsonl --ctx N --kv \"R1;R2\"")
	var mf modelFlags
	mf.register(fs)
	file := fs.String("f", "", "text `file`; a .jsonl file contributes the \"prompt\" field of each line")
	nctx := ctxFlag(fs, 512, "tokens per chunk: the first half is the compressed context, the rest is decoded and compared")
	kvFlag := fs.String("kv", "", "KV `recipes` to compare with the full cache, separated by ';'")
	baseFlag := fs.String("base", recipe.Default, "the full-cache `recipe` everything is compared with")
	chunks := fs.Int("chunks", 0, "use at most this many chunks (0 = all)")
	format := fs.String("format", "table", "output: table, markdown or json")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *file == "" || *kvFlag == "" {
		return usagef("-f FILE and --kv RECIPES are required")
	}
	if err := oneOf("format", *format, "table", "markdown", "json"); err != nil {
		return err
	}
	base, err := parseRecipe(*baseFlag)
	if err != nil {
		return err
	}
	var recipes []*recipe.Recipe
	for _, s := range strings.Split(*kvFlag, ";") {
		r, err := parseRecipe(s)
		if err != nil {
			return err
		}
		recipes = append(recipes, r)
	}
	text, err := eval.ReadText(*file)
	if err != nil {
		return err
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	ids := e.Tok.Encode(text, true, false)
	res, err := eval.CompareFidelity(ctx, e, ids, *nctx, base, recipes, *chunks)
	if werr := eval.WriteFidelity(stdout, *format, base, res); werr != nil && err == nil {
		err = werr
	}
	return err
}
