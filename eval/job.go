package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/eval/tasks"
	"github.com/kvgo/kvgo/kv/recipe"
)

// Options describe one `kvgo eval`: which cases, which recipes against
// which base, the fidelity text, and where the report goes. The command
// fills them from its flags; NewJob checks them and Job.Run does the rest.
type Options struct {
	// Recipes are the recipes to compare, separated by ';' (see
	// ParseRecipes; DefaultRecipes is the usual list).
	Recipes string
	// Base is the full-cache recipe as written: fidelity is measured
	// against it, and it runs first (added when Recipes lacks it).
	Base string

	// Tasks is a case file (JSONL); empty runs the built-in Suite.
	Tasks string
	// Suite is the built-in suite. With a Tasks file only its Seed is
	// used: it draws the sample of FilterCases.
	Suite tasks.Spec
	// FilterTasks, FilterLengths and FilterCases narrow the cases of a
	// Tasks file (tasks.Filter; nil and 0 keep everything): FilterCases
	// caps each task × length by a sample stratified by needle depth,
	// drawn with Suite.Seed.
	FilterTasks   []string
	FilterLengths []int
	FilterCases   int

	// ExtraTokens are generated beyond the answer's length (8 when 0).
	ExtraTokens int
	// FidelityText is the fidelity text file (ReadText); empty uses the
	// prompts of the cases.
	FidelityText string
	// FidelityCtx is the fidelity chunk in tokens; FidelityChunks how many
	// chunks (0 skips fidelity).
	FidelityCtx    int
	FidelityChunks int
	// AdaptFidelityCtx halves FidelityCtx (down to 64 tokens) while the
	// cases' prompts are too short for FidelityChunks chunks, rather than
	// skip fidelity. It has no effect with a FidelityText file.
	AdaptFidelityCtx bool

	// EqualKV, when set, compares recipes at equal memory: every recipe
	// with a budget parameter runs once per target instead, its budget
	// set so that its cache holds that fraction of the full f16 cache
	// (EqualKV of a calibration; recipes without a budget run once, at
	// their own size).
	EqualKV []float64
	// Trace records which needle tokens each stream of an evicting recipe
	// kept, per case (Config.Trace).
	Trace bool

	// Dir receives report.html and report.json.
	Dir string
	// Progress, if set, gets a progress bar; Terminal selects in-place
	// redraws.
	Progress io.Writer
	Terminal bool
	// Warn, if set, is told of each recipe that does not parse and each
	// bad line of the case file when it is found; the run goes on without
	// them.
	Warn func(msg string)
}

// Job is an evaluation whose recipes have been parsed: what NewJob
// returns before any model is loaded, so bad recipes fail fast.
type Job struct {
	opt     Options
	recipes []RecipeSpec
	base    *recipe.Recipe
	early   []error // failures known before the run, in order
}

// NewJob parses the recipes and the base. It fails when the base does not
// parse or no recipe does; recipes that fail alone are reported (Warn and,
// later, the report) while the others run.
func NewJob(opt Options) (*Job, error) {
	base, err := recipe.Parse(opt.Base)
	if err != nil {
		return nil, fmt.Errorf("--base: %w", err)
	}
	specs := ParseRecipes(opt.Recipes)
	if len(specs) == 0 {
		return nil, errors.New("--kv has no recipe")
	}
	var broken []string
	for _, s := range specs {
		if s.Err != nil {
			broken = append(broken, s.Err.Error())
		}
	}
	if len(broken) == len(specs) { // nothing to compare: fail before any work
		return nil, errors.New(strings.Join(broken, "; "))
	}
	hasBase := false
	for _, s := range specs {
		hasBase = hasBase || (s.Recipe != nil && s.Recipe.String() == base.String())
	}
	if !hasBase { // the baseline every other number is read against
		specs = append([]RecipeSpec{{Name: opt.Base, Recipe: base}}, specs...)
	}
	j := &Job{opt: opt, recipes: specs, base: base}
	for _, s := range specs {
		if s.Err != nil {
			j.warn(s.Err, "the other recipes still run")
		}
	}
	return j, nil
}

// Recipes are the recipes the job runs, in order, the base included.
func (j *Job) Recipes() []RecipeSpec { return j.recipes }

func (j *Job) warn(err error, rest string) {
	j.early = append(j.early, err)
	if j.opt.Warn != nil {
		j.opt.Warn(fmt.Sprintf("%v (%s)", err, rest))
	}
}

// Result is a finished or interrupted run whose report has been written.
type Result struct {
	Report *report.Report
	// HTML and JSON are the report files, absolute paths; WriteErr is why
	// writing them failed (Report still holds everything).
	HTML, JSON string
	WriteErr   error
	// Interrupted is the context's error when the run was cut short; the
	// report then holds what finished.
	Interrupted error

	early []error
}

// Err sums up the run for the command's exit status: nil when everything
// ran, the interruption, or the first few failures.
func (r *Result) Err() error {
	if r.Interrupted != nil {
		return fmt.Errorf("%v: partial report written (%d runs finished)", r.Interrupted, len(r.Report.Cases))
	}
	if len(r.Report.Errors) == 0 {
		return nil
	}
	// Name the first few failures in the order they happened: bad recipes
	// and lines (known before the run) first.
	var msgs []string
	seen := map[string]bool{}
	for _, e := range r.early {
		msgs = append(msgs, e.Error())
		seen[e.Error()] = true
	}
	for _, e := range r.Report.Errors {
		if e.Stage != "tasks" && e.Stage != "recipe" && !seen[e.Message] {
			msgs = append(msgs, e.String())
		}
	}
	if len(msgs) > 3 {
		msgs = append(msgs[:3], fmt.Sprintf("and %d more", len(msgs)-3))
	}
	return fmt.Errorf("%d error(s), everything else ran and is in the report: %s", len(r.Report.Errors), strings.Join(msgs, "; "))
}

// Run reads or generates the cases, runs them and fidelity on e (see
// Run), and writes the report into the job's directory whatever happened:
// a partial report is still valid. The error is for what stopped the job
// before anything ran (an unreadable case file, no cases); everything
// later is in the Result.
func (j *Job) Run(ctx context.Context, e *engine.Engine) (*Result, error) {
	opt := j.opt
	r := &jobRun{Job: j, early: slices.Clone(j.early)}
	rep := report.New(time.Now())
	rep.Setup = report.Setup{Seed: opt.Suite.Seed, Base: opt.Base, FidelityCtx: opt.FidelityCtx}
	cases, err := r.cases(e, rep)
	if err != nil {
		return nil, err
	}

	recipes := j.recipes
	if len(opt.EqualKV) > 0 {
		rep.Setup.EqualKV = opt.EqualKV
		if recipes, err = r.equalKV(ctx, e, cases, rep); err != nil {
			return nil, err
		}
	}
	cfg := Config{Trace: opt.Trace, Cases: cases, Recipes: recipes, ExtraTokens: opt.ExtraTokens, Base: j.base, FidelityCtx: opt.FidelityCtx, FidelityChunks: opt.FidelityChunks}
	if opt.FidelityChunks > 0 {
		if err := r.fidelity(e, cases, &cfg, rep); err != nil {
			return nil, err
		}
	}
	var bar *report.Progress
	if opt.Progress != nil {
		bar = report.NewProgress(opt.Progress, 0, opt.Terminal)
		cfg.Progress = bar
	}
	runErr := Run(ctx, e, cfg, rep)
	if bar != nil {
		if runErr != nil {
			bar.Done("interrupted", false)
		} else {
			bar.Done("done", true)
		}
	}
	rep.Finalize()
	res := &Result{Report: rep, Interrupted: runErr, early: r.early}
	res.HTML, res.JSON, res.WriteErr = writeReport(rep, opt.Dir)
	return res, nil
}

// jobRun is one Run of a job: the failures known before the run start
// with the job's own and grow with what reading the cases finds.
type jobRun struct {
	*Job
	early []error
}

func (r *jobRun) warn(err error, rest string) {
	r.early = append(r.early, err)
	if r.opt.Warn != nil {
		r.opt.Warn(fmt.Sprintf("%v (%s)", err, rest))
	}
}

// equalKV replaces every recipe with a budget parameter by one recipe per
// target of opt.EqualKV, its budget searched on one case per context
// length (the first of each) so that its cache holds the target fraction
// of the full f16 cache; the base and recipes without a budget stay.
func (r *jobRun) equalKV(ctx context.Context, e *engine.Engine, cases []tasks.Case, rep *report.Report) ([]RecipeSpec, error) {
	extra := r.opt.ExtraTokens
	if extra <= 0 {
		extra = 8
	}
	cal := &calibration{}
	seen := map[int]bool{}
	for _, c := range cases {
		ids := e.Tok.Encode(c.Prompt, true, false)
		n := c.ContextTokens
		if n == 0 {
			n = len(ids)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		ans := 0
		for _, t := range append([]string{c.Answer}, c.Targets()...) {
			ans = max(ans, len(e.Tok.Encode(" "+t, false, false)))
		}
		cal.prompts = append(cal.prompts, ids)
		cal.maxTok = append(cal.maxTok, ans+extra)
	}
	var out []RecipeSpec
	for _, s := range r.recipes {
		if s.Err != nil || s.Recipe.String() == r.base.String() {
			out = append(out, s)
			continue
		}
		if _, _, ok := budgetParam(s.Recipe); !ok {
			out = append(out, s)
			continue
		}
		for _, target := range r.opt.EqualKV {
			nr, name, got, err := cal.EqualKV(ctx, e, s.Recipe, target)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				r.warn(fmt.Errorf("--equal-kv %g: %s: %w", target, s.Name, err), "the other recipes still run")
				rep.Errors = append(rep.Errors, report.Error{Stage: "recipe", Recipe: s.Name, Message: err.Error()})
				continue
			}
			if r.opt.Progress != nil {
				fmt.Fprintf(r.opt.Progress, "equal KV %.3g: %s -> %s (holds %.3f of the full f16 cache on %d calibration prompts)\n", target, s.Name, name, got, len(cal.prompts))
			}
			dup := false
			for _, o := range out {
				dup = dup || o.Name == name
			}
			if !dup {
				out = append(out, RecipeSpec{Name: name, Recipe: nr, KVTarget: target})
			}
		}
	}
	return out, nil
}

// cases reads the case file (reporting bad lines) or generates the
// built-in suite in e's tokens, and records which in rep.Setup.
func (r *jobRun) cases(e *engine.Engine, rep *report.Report) ([]tasks.Case, error) {
	opt := r.opt
	if opt.Tasks == "" {
		spec := opt.Suite
		rep.Setup.Tasks = "built-in"
		rep.Setup.Suite, rep.Setup.Lengths, rep.Setup.Depths, rep.Setup.CasesPerCell = spec.Tasks, spec.Lengths, spec.Depths, spec.Cases
		rep.Setup.Haystack = spec.Haystack
		return tasks.Generate(spec, Tokens(e))
	}
	rep.Setup.Tasks = opt.Tasks
	f, err := os.Open(opt.Tasks)
	if err != nil {
		return nil, err
	}
	all, bad, err := tasks.Read(f, opt.Tasks)
	f.Close()
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		r.warn(b, "the other lines still run")
		rep.Errors = append(rep.Errors, report.Error{Stage: "tasks", Line: b.Line, Message: b.Err.Error()})
	}
	cases := tasks.Filter(all, opt.FilterTasks, opt.FilterLengths, opt.FilterCases, opt.Suite.Seed)
	rep.Setup.Suite, rep.Setup.Lengths, rep.Setup.CasesPerCell = opt.FilterTasks, opt.FilterLengths, opt.FilterCases
	if len(cases) == 0 && len(bad) == 0 {
		return nil, fmt.Errorf("%s: no cases (after --suite/--lengths filters)", opt.Tasks)
	}
	return cases, nil
}

// fidelity sets cfg's fidelity tokens from the text file or the cases'
// prompts, shrinking the chunk or skipping fidelity when the text is too
// short.
func (r *jobRun) fidelity(e *engine.Engine, cases []tasks.Case, cfg *Config, rep *report.Report) error {
	opt := r.opt
	var text string
	if opt.FidelityText != "" {
		var err error
		if text, err = ReadText(opt.FidelityText); err != nil {
			return err
		}
		rep.Setup.FidelityText = opt.FidelityText
	} else {
		var parts []string
		for _, c := range cases {
			parts = append(parts, c.Prompt)
		}
		text = strings.Join(parts, "\n\n")
		rep.Setup.FidelityText = "the prompts of the cases"
	}
	cfg.FidelityTokens = e.Tok.Encode(text, true, false)
	if opt.AdaptFidelityCtx && opt.FidelityText == "" && len(cfg.FidelityTokens) < opt.FidelityCtx*cfg.FidelityChunks {
		// A small suite's prompts are short: use smaller chunks rather
		// than skip fidelity (a power of two, at least 64).
		n := opt.FidelityCtx
		for n > 64 && len(cfg.FidelityTokens) < n*cfg.FidelityChunks {
			n /= 2
		}
		cfg.FidelityCtx = n
		rep.Setup.FidelityCtx = n
	}
	if cfg.FidelityCtx < 8 || len(cfg.FidelityTokens) < cfg.FidelityCtx {
		msg := fmt.Sprintf("fidelity skipped: the text has %d tokens, fewer than one chunk of --fidelity-ctx %d", len(cfg.FidelityTokens), cfg.FidelityCtx)
		rep.Errors = append(rep.Errors, report.Error{Stage: "fidelity", Message: msg})
		r.early = append(r.early, errors.New(msg))
		cfg.FidelityChunks = 0
	}
	return nil
}

// Tokens measures text in e's tokens, for tasks.Generate.
func Tokens(e *engine.Engine) tasks.Tokenizer { return engineTokens{e} }

type engineTokens struct{ e *engine.Engine }

func (t engineTokens) PromptTokens(s string) int { return len(t.e.Tok.Encode(s, true, false)) }
func (t engineTokens) AnswerTokens(s string) int { return len(t.e.Tok.Encode(s, false, false)) }

// WriteCases writes cases as JSONL to path through a temporary file and a
// rename, so an existing file is never left half written.
func WriteCases(path string, cases []tasks.Case) error {
	var buf bytes.Buffer
	if err := tasks.Write(&buf, cases); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeReport writes report.html and report.json into dir, each through a
// temporary file and a rename so an existing report is never left half
// written.
func writeReport(rep *report.Report, dir string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if abs, err := filepath.Abs(dir); err == nil { // printed paths work from anywhere
		dir = abs
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

// ReadText reads a text file (one trailing newline dropped, as
// llama-perplexity does), or joins the "prompt" fields of a .jsonl file
// into one text (paragraphs separated by blank lines).
func ReadText(path string) (string, error) {
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
