package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval"
	"github.com/kvgo/kvgo/eval/report"
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
		filter, limit = " (with --tasks: keep only these)", " (with --tasks: at most this many per task × length, 0 = all)"
	}
	fs.StringVar(&s.suite, "suite", defSuite, "built-in `tasks`, comma-separated: passkey, multikey, kv, vt, multivalue, or all"+filter)
	fs.StringVar(&s.lengths, "lengths", "256,512,1024", "context `lengths` in the model's tokens"+filter)
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

// engineTokens measures text in an engine's tokens for the generator.
type engineTokens struct{ e *engine.Engine }

func (t engineTokens) PromptTokens(s string) int { return len(t.e.Tok.Encode(s, true, false)) }
func (t engineTokens) AnswerTokens(s string) int { return len(t.e.Tok.Encode(s, false, false)) }

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
	cases, err := tasks.Generate(spec, engineTokens{e})
	if err != nil {
		return err
	}
	if *out == "-" {
		return tasks.Write(stdout, cases)
	}
	var buf bytes.Buffer
	if err := tasks.Write(&buf, cases); err != nil {
		return err
	}
	if err := writeFileAtomic(*out, buf.Bytes()); err != nil {
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

	base, err := parseRecipe(*baseFlag)
	if err != nil {
		return fmt.Errorf("--base: %w", err)
	}
	specs := eval.ParseRecipes(*kvFlag)
	if !set["kv"] {
		specs = eval.ParseRecipes(strings.Join(eval.DefaultRecipes(), ";"))
	}
	if len(specs) == 0 {
		return usagef("--kv has no recipe")
	}
	var broken []string
	for _, s := range specs {
		if s.Err != nil {
			broken = append(broken, s.Err.Error())
		}
	}
	if len(broken) == len(specs) { // nothing to compare: fail before any work
		return usageError{strings.Join(broken, "; ")}
	}
	hasBase := false
	for _, s := range specs {
		hasBase = hasBase || (s.Recipe != nil && s.Recipe.String() == base.String())
	}
	if !hasBase { // the baseline every other number is read against
		specs = append([]eval.RecipeSpec{{Name: *baseFlag, Recipe: base}}, specs...)
	}
	var early []error // reported now and again at the end
	for _, s := range specs {
		if s.Err != nil {
			early = append(early, s.Err)
			fmt.Fprintf(stderr, "kvgo eval: %v (the other recipes still run)\n", s.Err)
		}
	}

	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()

	rep := report.New(time.Now())
	rep.Setup = report.Setup{Seed: sf.seed, Base: *baseFlag, FidelityCtx: *fidCtx}
	var cases []tasks.Case
	if *tasksFile != "" {
		rep.Setup.Tasks = *tasksFile
		f, err := os.Open(*tasksFile)
		if err != nil {
			return err
		}
		all, bad, err := tasks.Read(f, *tasksFile)
		f.Close()
		if err != nil {
			return err
		}
		for _, b := range bad {
			early = append(early, b)
			fmt.Fprintf(stderr, "kvgo eval: %v (the other lines still run)\n", b)
			rep.Errors = append(rep.Errors, report.Error{Stage: "tasks", Line: b.Line, Message: b.Err.Error()})
		}
		var names []string
		var lengths []int
		if set["suite"] {
			if names, err = tasks.ParseNames(sf.suite); err != nil {
				return usagef("--suite: %v", err)
			}
		}
		if set["lengths"] {
			if lengths, err = parseInts(sf.lengths); err != nil {
				return usagef("--lengths: %v", err)
			}
		}
		limit := 0
		if set["cases"] {
			limit = sf.cases
		}
		cases = tasks.Filter(all, names, lengths, limit)
		rep.Setup.Suite, rep.Setup.Lengths, rep.Setup.CasesPerCell = names, lengths, limit
		if len(cases) == 0 && len(bad) == 0 {
			return fmt.Errorf("%s: no cases (after --suite/--lengths filters)", *tasksFile)
		}
	} else {
		spec, err := sf.spec()
		if err != nil {
			return err
		}
		rep.Setup.Tasks = "built-in"
		rep.Setup.Suite, rep.Setup.Lengths, rep.Setup.Depths, rep.Setup.CasesPerCell = spec.Tasks, spec.Lengths, spec.Depths, spec.Cases
		rep.Setup.Haystack = spec.Haystack
		if cases, err = tasks.Generate(spec, engineTokens{e}); err != nil {
			return err
		}
	}

	cfg := eval.Config{Cases: cases, Recipes: specs, ExtraTokens: *extra, Base: base, FidelityCtx: *fidCtx, FidelityChunks: *fidChunks}
	if *fidChunks > 0 {
		var text string
		if *fidFile != "" {
			if text, err = readEvalText(*fidFile); err != nil {
				return err
			}
			rep.Setup.FidelityText = *fidFile
		} else {
			var parts []string
			for _, c := range cases {
				parts = append(parts, c.Prompt)
			}
			text = strings.Join(parts, "\n\n")
			rep.Setup.FidelityText = "the prompts of the cases"
		}
		cfg.FidelityTokens = e.Tok.Encode(text, true, false)
		if !set["fidelity-ctx"] && *fidFile == "" && len(cfg.FidelityTokens) < *fidCtx*cfg.FidelityChunks {
			// A small suite's prompts are short: use smaller chunks
			// rather than skip fidelity (a power of two, at least 64).
			n := *fidCtx
			for n > 64 && len(cfg.FidelityTokens) < n*cfg.FidelityChunks {
				n /= 2
			}
			cfg.FidelityCtx = n
			rep.Setup.FidelityCtx = n
		}
		if cfg.FidelityCtx < 8 || len(cfg.FidelityTokens) < cfg.FidelityCtx {
			msg := fmt.Sprintf("fidelity skipped: the text has %d tokens, fewer than one chunk of --fidelity-ctx %d", len(cfg.FidelityTokens), cfg.FidelityCtx)
			rep.Errors = append(rep.Errors, report.Error{Stage: "fidelity", Message: msg})
			early = append(early, errors.New(msg))
			cfg.FidelityChunks = 0
		}
	}
	var bar *report.Progress
	if !*quiet {
		bar = report.NewProgress(stderr, 0, isTerminal(stderr))
		cfg.Progress = bar
	}
	runErr := eval.Run(ctx, e, cfg, rep)
	if bar != nil {
		if runErr != nil {
			bar.Done("interrupted", false)
		} else {
			bar.Done("done", true)
		}
	}
	rep.Finalize()

	// Write the report whatever happened: a partial one is still valid.
	htmlPath, jsonPath, werr := writeReport(rep, *outDir)
	switch *format {
	case "table":
		rep.WriteTable(stdout)
	case "json":
		rep.WriteJSON(stdout)
	}
	if werr != nil {
		return fmt.Errorf("writing the report: %w", werr)
	}
	fmt.Fprintf(stderr, "report: %s\n        %s\n", htmlPath, jsonPath)
	if runErr != nil {
		return fmt.Errorf("%v: partial report written (%d runs finished)", runErr, len(rep.Cases))
	}
	if len(rep.Errors) > 0 {
		// Name the first few failures in the order they happened: bad
		// recipes and lines (known before the run) first.
		var msgs []string
		seen := map[string]bool{}
		for _, e := range early {
			msgs = append(msgs, e.Error())
			seen[e.Error()] = true
		}
		for _, e := range rep.Errors {
			if e.Stage != "tasks" && e.Stage != "recipe" && !seen[e.Message] {
				msgs = append(msgs, e.String())
			}
		}
		if len(msgs) > 3 {
			msgs = append(msgs[:3], fmt.Sprintf("and %d more", len(msgs)-3))
		}
		return fmt.Errorf("%d error(s), everything else ran and is in the report: %s", len(rep.Errors), strings.Join(msgs, "; "))
	}
	return nil
}

// writeReport writes report.html and report.json into dir, each through a
// temporary file and a rename so an existing report is never left half
// written.
func writeReport(rep *report.Report, dir string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath := filepath.Join(dir, "report.json")
	htmlPath := filepath.Join(dir, "report.html")
	var jb, hb bytes.Buffer
	if err := rep.WriteJSON(&jb); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(jsonPath, jb.Bytes()); err != nil {
		return "", "", err
	}
	if err := rep.WriteHTML(&hb); err != nil {
		return htmlPath, jsonPath, err
	}
	return htmlPath, jsonPath, writeFileAtomic(htmlPath, hb.Bytes())
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
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
	nctx := fs.Int("ctx", 512, "tokens per chunk: the first half is the compressed context, the rest is decoded and compared")
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
	text, err := readEvalText(*file)
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
	switch *format {
	case "json":
		if res == nil {
			res = []eval.Fidelity{}
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
	default:
		sep := " "
		if *format == "markdown" {
			sep = "|"
		}
		fmt.Fprintf(stdout, "%s %-46s %s %9s %s %9s %s %6s %s %8s %s %8s %s %6s %s\n", sep, "recipe", sep, "mean KLD", sep, "p99 KLD", sep, "top-1", sep, "PPL", sep, "ΔPPL", sep, "KV", sep)
		if *format == "markdown" {
			fmt.Fprintln(stdout, "|---|--:|--:|--:|--:|--:|--:|")
		}
		for _, f := range res {
			if f.Error != "" {
				fmt.Fprintf(stdout, "%s %-46s %s failed: %s\n", sep, f.Recipe, sep, f.Error)
				continue
			}
			fmt.Fprintf(stdout, "%s %-46s %s %9.5f %s %9.5f %s %6.4f %s %8.4f %s %+8.4f %s %6.3f %s\n", sep, f.Recipe, sep, f.MeanKLD, sep, f.P99KLD, sep, f.Top1, sep, f.PPL, sep, f.PPL-f.BasePPL, sep, f.Ratio, sep)
		}
		for _, f := range res {
			if f.Error == "" {
				fmt.Fprintf(stdout, "\nbase %s: PPL %.4f over %d positions; KV is the mean cache size as a fraction of the full f16 cache\n", base, f.BasePPL, f.Positions)
				break
			}
		}
	}
	return err
}

// readEvalText reads a text file, or joins the "prompt" fields of a JSONL
// file into one text (paragraphs separated by blank lines).
func readEvalText(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(path, ".jsonl") {
		if !utf8.Valid(data) {
			return "", fmt.Errorf("%s is not valid UTF-8", path)
		}
		return strings.TrimSuffix(string(data), "\n"), nil
	}
	var parts []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c struct {
			Prompt *string `json:"prompt"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return "", fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if c.Prompt == nil {
			return "", fmt.Errorf("%s:%d: no \"prompt\" field", path, line)
		}
		parts = append(parts, *c.Prompt)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return strings.Join(parts, "\n\n"), nil
}
