package eval

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/eval/tasks"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/sample"
)

// RecipeSpec is a recipe as the user wrote it. Err holds why it did not
// parse; such a recipe is reported as failed while the others run.
type RecipeSpec struct {
	Name   string
	Recipe *recipe.Recipe
	Err    error
	// KVTarget is the fraction of the full f16 cache the recipe's budget
	// was searched for (equal-memory comparisons), 0 when it was given.
	KVTarget float64
}

// ParseRecipes splits a ';'-separated list and parses each recipe,
// keeping the ones that fail (with their reason) so the caller can run the
// rest and still report every failure. Duplicates are dropped.
func ParseRecipes(list string) []RecipeSpec {
	var out []RecipeSpec
	seen := map[string]bool{}
	for i, s := range strings.Split(list, ";") {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		r, err := recipe.Parse(s)
		if err != nil {
			err = fmt.Errorf("--kv recipe %d: %w", i+1, err)
		}
		out = append(out, RecipeSpec{Name: s, Recipe: r, Err: err})
	}
	return out
}

// DefaultRecipes is the comparison `kvgo eval` runs with no --kv: the
// registry's showcase (the full cache, a quantizer, an evictor and the two
// stacked), so the list follows what kv/recipe offers.
func DefaultRecipes() []string {
	var valid []string
	for _, s := range recipe.Showcase() {
		if _, err := recipe.Parse(s); err == nil {
			valid = append(valid, s)
		}
	}
	return valid
}

// Method is a recipe's family (recipe.Recipe.Family): its methods' names
// without parameters, an evictor over the default codec being just the
// evictor. Recipes of one method differ only in parameters and form one
// line in the accuracy chart.
func Method(r *recipe.Recipe) string { return r.Family() }

// Config is what Run measures.
type Config struct {
	Cases []tasks.Case
	// Recipes run in this order for every case; the report keeps failed
	// ones with their reason.
	Recipes []RecipeSpec
	// ExtraTokens are generated beyond the answer's own length (8 when 0).
	ExtraTokens int
	// Fidelity compares every recipe with Base on these tokens in
	// FidelityChunks chunks of FidelityCtx tokens (skipped when
	// FidelityChunks is 0 or there are no tokens).
	Base           *recipe.Recipe
	FidelityTokens []int
	FidelityCtx    int
	FidelityChunks int
	// Progress, if set, is told the work ahead and done, in tokens.
	Progress Progress
	// Trace runs every case of an evicting recipe a second time through a
	// Session and records which needle tokens each stream kept
	// (report.NeedleTrace).
	Trace bool
}

// Progress receives the runner's progress, counted in tokens to process
// (prefill dominates the time, so tokens track it better than cases).
// *report.Progress implements it.
type Progress interface {
	Grow(units float64)
	Add(units float64, label string)
}

type noProgress struct{}

func (noProgress) Grow(float64)        {}
func (noProgress) Add(float64, string) {}

// Run measures every case with every recipe, then fidelity, appending to
// rep as results arrive so that whatever stops the run (an error, Ctrl-C)
// leaves rep holding everything finished. It returns ctx's error when
// cancelled and nil otherwise: failures of single recipes or cases are
// recorded in rep.Errors and do not stop the others. The caller calls
// rep.Finalize before writing.
func Run(ctx context.Context, e *engine.Engine, cfg Config, rep *report.Report) error {
	start := time.Now()
	defer func() { rep.Seconds += time.Since(start).Seconds() }()
	if cfg.Progress == nil {
		cfg.Progress = noProgress{}
	}
	extra := cfg.ExtraTokens
	if extra <= 0 {
		extra = 8
	}
	rep.Model = report.Model{
		Source: e.Source, Params: e.Params(), Layers: e.Model.Config.Layers, KVHeads: e.Model.KVHeads,
		HeadDim: e.Model.HeadDim, Context: e.Model.ContextLen, Vocab: e.Model.Vocab, Threads: e.Pool.Threads(),
	}
	rep.Setup.ExtraTokens = extra

	// Recipes: report each, check each can build a cache before spending
	// time on it.
	var live []int // indexes into cfg.Recipes
	for i, rs := range cfg.Recipes {
		entry := report.Recipe{Name: rs.Name, KVTarget: rs.KVTarget}
		if rs.Recipe != nil {
			entry.Recipe, entry.Method = rs.Recipe.String(), Method(rs.Recipe)
		}
		err := rs.Err
		if err == nil {
			_, err = e.NewCache(rs.Recipe, min(64, e.Model.ContextLen))
		}
		if err != nil {
			entry.Error = err.Error()
			rep.Errors = append(rep.Errors, report.Error{Stage: "recipe", Recipe: rs.Name, Message: err.Error()})
		} else {
			live = append(live, i)
		}
		rep.Recipes = append(rep.Recipes, entry)
	}

	// Prepare cases: tokenize once, size the generation.
	type prepared struct {
		c       *tasks.Case
		ids     []int
		maxTok  int
		needles [][]span
	}
	var cases []prepared
	work := 0.0
	for i := range cfg.Cases {
		c := &cfg.Cases[i]
		ids := e.Tok.Encode(c.Prompt, true, false)
		ans := 0
		for _, t := range append([]string{c.Answer}, c.Targets()...) {
			ans = max(ans, len(e.Tok.Encode(" "+t, false, false)))
		}
		if c.ContextTokens == 0 {
			c.ContextTokens = 1 << bits.Len(uint(max(len(ids), 1)-1))
		}
		p := prepared{c: c, ids: ids, maxTok: ans + extra, needles: needleSpans(e, ids, c.Targets())}
		cases = append(cases, p)
		work += float64(len(live) * (len(ids) + p.maxTok))
	}
	fidChunks := 0
	if cfg.FidelityChunks > 0 && cfg.FidelityCtx > 0 && len(live) > 0 {
		fidChunks = min(cfg.FidelityChunks, len(cfg.FidelityTokens)/cfg.FidelityCtx)
		work += float64((len(live) + 1) * fidChunks * (cfg.FidelityCtx - 1)) // tokens each cache is fed
	}
	cfg.Progress.Grow(work)

	// Warm up once (page in the weights, grow the heap) so the first
	// measured case is not charged for it.
	if len(live) > 0 && len(cases) > 0 {
		warm := cases[0].ids[:min(len(cases[0].ids), 64)]
		_, _ = e.Generate(ctx, engine.Request{Prompt: warm, MaxTokens: 2, KV: cfg.Recipes[live[0]].Recipe})
	}

	// Case-major order: every recipe runs case i before any runs case i+1,
	// so a partial report compares recipes on the same cases and
	// background load is spread evenly over them.
	greedy := sample.Params{Temperature: 0}
	type window struct {
		p      kv.Protector
		evicts bool
	}
	windows := make([]window, len(cfg.Recipes))
	for _, ri := range live {
		windows[ri].p, windows[ri].evicts = protector(cfg.Recipes[ri].Recipe)
	}
	for _, p := range cases {
		for _, ri := range live {
			if err := ctx.Err(); err != nil {
				return stopped(rep, err)
			}
			rs := cfg.Recipes[ri]
			res, err := runCase(ctx, e, p.c, p.ids, p.maxTok, rs, greedy)
			if ctx.Err() != nil { // an interrupted decode is not a result
				return stopped(rep, ctx.Err())
			}
			if err != nil {
				rep.Errors = append(rep.Errors, report.Error{Stage: "case", Line: p.c.Line, Recipe: rs.Name, Message: err.Error()})
			} else {
				if in, ok := inWindow(windows[ri].p, windows[ri].evicts, len(p.ids), p.needles); ok {
					res.InWindow = &in
				}
				if cfg.Trace {
					tr, err := traceNeedle(ctx, e, rs.Recipe, p.ids, p.maxTok, p.needles)
					if ctx.Err() != nil {
						return stopped(rep, ctx.Err())
					}
					if err != nil {
						rep.Errors = append(rep.Errors, report.Error{Stage: "case", Line: p.c.Line, Recipe: rs.Name, Message: "trace: " + err.Error()})
					}
					res.NeedleTrace = tr
				}
				rep.Cases = append(rep.Cases, res)
			}
			cfg.Progress.Add(float64(len(p.ids)+p.maxTok), fmt.Sprintf("%s@%d %s", p.c.Task, p.c.ContextTokens, rs.Name))
		}
	}

	if fidChunks == 0 {
		return nil
	}
	rep.Setup.FidelityChunks = fidChunks
	var recs []*recipe.Recipe
	for _, ri := range live {
		recs = append(recs, cfg.Recipes[ri].Recipe)
	}
	res, ok, err := compareAligned(ctx, e, cfg.FidelityTokens, cfg.FidelityCtx, cfg.Base, recs, FidelityOptions{
		MaxChunks: fidChunks,
		Progress:  func(n int) { cfg.Progress.Add(float64(n), "fidelity") },
	})
	for i, f := range res {
		name := cfg.Recipes[live[i]].Name
		if !ok[i] {
			continue
		}
		if f.Error != "" {
			rep.Errors = append(rep.Errors, report.Error{Stage: "fidelity", Recipe: name, Message: f.Error})
			continue
		}
		rep.Recipe(name).Fidelity = &report.Fidelity{
			MeanKLD: f.MeanKLD, P99KLD: f.P99KLD, Top1: f.Top1, PPL: f.PPL, BasePPL: f.BasePPL,
			MeanKLDSE: f.MeanKLDSE, Top1SE: f.Top1SE, DeltaPPLSE: f.DeltaPPLSE, Chunks: f.Chunks,
			Positions: f.Positions, KVBytes: f.KVBytes, FullKVBytes: f.FullKVBytes, Ratio: f.Ratio,
		}
	}
	if ctx.Err() != nil {
		return stopped(rep, ctx.Err())
	}
	if err != nil && len(res) == 0 {
		rep.Errors = append(rep.Errors, report.Error{Stage: "fidelity", Message: err.Error()})
	}
	return nil
}

func stopped(rep *report.Report, err error) error {
	rep.Stopped = "interrupted"
	if !errors.Is(err, context.Canceled) {
		rep.Stopped = err.Error()
	}
	return err
}

// runCase generates greedily through engine.Generate — the code path of
// `kvgo run` — and scores the continuation.
func runCase(ctx context.Context, e *engine.Engine, c *tasks.Case, ids []int, maxTok int, rs RecipeSpec, greedy sample.Params) (report.CaseResult, error) {
	var out []int
	var first, last time.Time
	t0 := time.Now()
	st, err := e.Generate(ctx, engine.Request{
		Prompt: ids, MaxTokens: maxTok, Sampling: greedy, KV: rs.Recipe, StopAtEOG: true,
		OnToken: func(id int) error {
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			last = now
			out = append(out, id)
			return nil
		},
	})
	if err != nil {
		return report.CaseResult{}, err
	}
	// Decode after the prompt, so the first piece keeps its leading space
	// as it does in `kvgo run`.
	dec := e.ContinuationDecoder(ids)
	var text strings.Builder
	for _, id := range out {
		text.WriteString(dec.Next(id))
	}
	text.WriteString(dec.Flush())
	score, found := tasks.Score(c, text.String())
	res := report.CaseResult{
		Line: c.Line, Recipe: rs.Name, Task: c.Task, ContextTokens: c.ContextTokens, PromptTokens: len(ids),
		Depth: c.Depth, Answers: c.Targets(), Output: text.String(), Score: score, Found: found,
		GeneratedTokens: st.GeneratedTokens, KVBytes: st.KVBytes, KVBytesPeak: st.PeakKVBytes, FullKVBytes: st.FullKVBytes,
		PrefillMs: ms(st.PromptTime),
	}
	if first.IsZero() {
		res.TTFTMs = ms(time.Since(t0))
	} else {
		res.TTFTMs = ms(first.Sub(t0))
		res.DecodeMs = ms(last.Sub(first))
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
