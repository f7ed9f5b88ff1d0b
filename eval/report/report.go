// Package report holds the results of kvgo eval and renders them: the
// versioned JSON document (schema "kvgo-eval/1", documented in
// docs/EVAL.md), a terminal table and a self-contained HTML page whose
// charts are drawn in Go as inline SVG.
//
// The runner only appends raw per-case results, fidelity rows and errors;
// every aggregate (accuracy cells, per-recipe cost, per-length memory) is
// derived from them by Finalize. So a report cut short by Ctrl-C or an
// error is as consistent as a complete one, just smaller.
package report

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Schema names the JSON layout. A change that renames, removes or
// re-interprets a field gets a new number; adding a field does not.
const Schema = "kvgo-eval/1"

// Report is the whole result of one kvgo eval run.
type Report struct {
	Schema  string    `json:"schema"`
	Created time.Time `json:"created"`
	// Complete is false when the run stopped early (Stopped says why) or
	// any recipe, case or line failed (see Errors).
	Complete bool   `json:"complete"`
	Stopped  string `json:"stopped,omitempty"`
	// Seconds is the wall time of the run so far.
	Seconds float64 `json:"seconds"`
	Model   Model   `json:"model"`
	Setup   Setup   `json:"setup"`
	// Recipes in the order they were given; the first is the baseline.
	Recipes []Recipe `json:"recipes"`
	// Cells is accuracy per recipe × task × context length.
	Cells []Cell `json:"cells"`
	// Lengths is cost per recipe × context length.
	Lengths []LengthCost `json:"lengths"`
	// Cases is every scored run, in the order they ran.
	Cases  []CaseResult `json:"cases"`
	Errors []Error      `json:"errors"`
}

// Model describes the model that ran.
type Model struct {
	Source  string `json:"source"`
	Params  uint64 `json:"params"`
	Layers  int    `json:"layers"`
	KVHeads int    `json:"kv_heads"`
	HeadDim int    `json:"head_dim"`
	Context int    `json:"context"`
	Vocab   int    `json:"vocab"`
	Threads int    `json:"threads"`
}

// Setup records how the run was configured, so a report can be
// reproduced.
type Setup struct {
	// Tasks is the case file, or "built-in" for the generated suite.
	Tasks    string    `json:"tasks"`
	Seed     uint64    `json:"seed"`
	Suite    []string  `json:"suite"`
	Lengths  []int     `json:"lengths"`
	Depths   []float64 `json:"depths"`
	Haystack string    `json:"haystack"`
	// CasesPerCell is cases per task × length × depth (built-in suite) or
	// the cap per task × length (a case file; 0 = all).
	CasesPerCell int `json:"cases_per_cell"`
	// ExtraTokens is how many tokens beyond the answer's length are
	// generated per case.
	ExtraTokens int `json:"extra_tokens"`
	// Base is the full-cache recipe fidelity is measured against.
	Base           string `json:"base"`
	FidelityText   string `json:"fidelity_text"`
	FidelityCtx    int    `json:"fidelity_ctx"`
	FidelityChunks int    `json:"fidelity_chunks"`
	// EqualKV are the targets of an equal-memory run: fractions of the
	// full f16 cache each budgeted recipe was set to hold (empty = the
	// recipes as given).
	EqualKV []float64 `json:"equal_kv"`
}

// Recipe is one KV recipe's summary.
type Recipe struct {
	// Name is the recipe as given (the label in tables and charts);
	// Recipe is its canonical form with every parameter.
	Name   string `json:"name"`
	Recipe string `json:"recipe"`
	// Method is the family (evictor+codec names without parameters):
	// recipes of one method form one line in the accuracy chart.
	Method string `json:"method"`
	// KVTarget is the fraction of the full f16 cache its budget was set
	// to hold in an equal-memory run (--equal-kv), 0 otherwise.
	KVTarget float64 `json:"kv_target"`
	Error    string  `json:"error,omitempty"`
	// Cases is how many cases were scored; Accuracy is their mean score,
	// AccuracyLow and AccuracyHigh its 95% Wilson interval.
	Cases        int     `json:"cases"`
	Accuracy     float64 `json:"accuracy"`
	AccuracyLow  float64 `json:"accuracy_low"`
	AccuracyHigh float64 `json:"accuracy_high"`
	// Strata split the cases: the needle in the recipe's always-kept
	// window, then the others by needle depth.
	Strata []Stratum `json:"strata"`
	// OutsideWindow is the accuracy over the cases whose needle was not
	// in the always-kept window, the part a recency baseline cannot
	// answer; nil for a recipe that keeps every token.
	OutsideWindow *Stratum  `json:"outside_window"`
	Cost          Cost      `json:"cost"`
	Fidelity      *Fidelity `json:"fidelity"`
}

// Cost is what a recipe spent over its cases.
type Cost struct {
	// KVBytesMean is the mean cache size at the end of a case; the peak is
	// the largest size during a case (a staged prompt before eviction).
	KVBytesMean     float64 `json:"kv_bytes_mean"`
	KVBytesPeakMean float64 `json:"kv_bytes_peak_mean"`
	KVBytesPeakMax  int64   `json:"kv_bytes_peak_max"`
	// FullKVBytesMean is what a full f16 cache holds for the same tokens.
	FullKVBytesMean float64 `json:"kv_bytes_full_f16_mean"`
	// Ratio is sum(KV bytes) / sum(full f16 bytes) over the cases, so
	// longer cases weigh more; PeakRatio the same for the peaks.
	Ratio     float64 `json:"kv_ratio"`
	PeakRatio float64 `json:"kv_peak_ratio"`
	// PrefillTokPerSec is prompt tokens / prefill time summed over cases;
	// DecodeTokPerSec is tokens after the first / time after the first.
	PrefillTokPerSec float64 `json:"prefill_tokens_per_second"`
	DecodeTokPerSec  float64 `json:"decode_tokens_per_second"`
	// TTFTMsMean is the mean time from the request to the first token.
	TTFTMsMean      float64 `json:"ttft_ms_mean"`
	PromptTokens    int     `json:"prompt_tokens"`
	GeneratedTokens int     `json:"generated_tokens"`
}

// Fidelity compares a recipe with the base recipe on the same tokens (see
// eval.CompareFidelity).
type Fidelity struct {
	MeanKLD float64 `json:"mean_kld"`
	P99KLD  float64 `json:"p99_kld"`
	Top1    float64 `json:"top1_agreement"`
	PPL     float64 `json:"ppl"`
	BasePPL float64 `json:"ppl_full"`
	// MeanKLDSE, Top1SE and DeltaPPLSE are standard errors across the
	// chunks (the spread of the per-chunk values over √chunks; 0 with one
	// chunk).
	MeanKLDSE   float64 `json:"mean_kld_se"`
	Top1SE      float64 `json:"top1_se"`
	DeltaPPLSE  float64 `json:"delta_ppl_se"`
	Chunks      int     `json:"chunks"`
	Positions   int     `json:"positions"`
	KVBytes     int64   `json:"kv_bytes"`
	FullKVBytes int64   `json:"kv_bytes_full"`
	Ratio       float64 `json:"kv_ratio"`
}

// Cell is accuracy for one recipe, task and context length.
type Cell struct {
	Recipe        string  `json:"recipe"`
	Task          string  `json:"task"`
	ContextTokens int     `json:"context_tokens"`
	Cases         int     `json:"cases"`
	Accuracy      float64 `json:"accuracy"`
	// AccuracyLow and AccuracyHigh are the 95% Wilson interval.
	AccuracyLow  float64 `json:"accuracy_low"`
	AccuracyHigh float64 `json:"accuracy_high"`
}

// LengthCost is a recipe's cost at one context length.
type LengthCost struct {
	Recipe           string  `json:"recipe"`
	ContextTokens    int     `json:"context_tokens"`
	Cases            int     `json:"cases"`
	PromptTokensMean float64 `json:"prompt_tokens_mean"`
	KVBytesMean      float64 `json:"kv_bytes_mean"`
	KVBytesPeakMean  float64 `json:"kv_bytes_peak_mean"`
	FullKVBytesMean  float64 `json:"kv_bytes_full_f16_mean"`
	TTFTMsMean       float64 `json:"ttft_ms_mean"`
	PrefillTokPerSec float64 `json:"prefill_tokens_per_second"`
}

// CaseResult is one case run with one recipe.
type CaseResult struct {
	// Line is the case's line in the tasks file (its index in a generated
	// suite), 1-based.
	Line          int      `json:"line"`
	Recipe        string   `json:"recipe"`
	Task          string   `json:"task"`
	ContextTokens int      `json:"context_tokens"`
	PromptTokens  int      `json:"prompt_tokens"`
	Depth         *float64 `json:"depth"`
	// InWindow says whether every answer sat in the tokens the recipe
	// keeps by rule at the end of the prompt (kv.Protector: sinks, a recent
	// or observation window); null for a recipe that keeps every token or
	// an answer not found in the prompt.
	InWindow *bool    `json:"in_window"`
	Answers  []string `json:"answers"`
	// Output is the decoded continuation the score was computed on.
	Output          string  `json:"output"`
	Score           float64 `json:"score"`
	Found           int     `json:"found"`
	GeneratedTokens int     `json:"generated_tokens"`
	KVBytes         int64   `json:"kv_bytes"`
	KVBytesPeak     int64   `json:"kv_bytes_peak"`
	FullKVBytes     int64   `json:"kv_bytes_full_f16"`
	PrefillMs       float64 `json:"prefill_ms"`
	TTFTMs          float64 `json:"ttft_ms"`
	DecodeMs        float64 `json:"decode_ms"` // from the first token to the last
	// NeedleTrace, with --trace and an evicting recipe, is which needle
	// tokens each stream kept; null otherwise.
	NeedleTrace *NeedleTrace `json:"needle_trace"`
}

// NeedleTrace records, for one case and an evicting recipe, which tokens
// of the needle (every occurrence of the answers in the prompt) each
// (layer, KV head) stream held: AfterPrompt once the evictor chose from
// the prompt, AtEnd after the last generated token. Each string has one
// character per position of Positions, '1' kept and '0' evicted.
type NeedleTrace struct {
	Positions   []int32    `json:"positions"`
	AfterPrompt [][]string `json:"after_prompt"`
	AtEnd       [][]string `json:"at_end"`
	// Generated are the token ids the traced run generated (greedy, as the
	// case run), to line its decode steps up with the needle's tokens.
	Generated []int `json:"generated"`
}

// Error is something that failed without stopping the rest of the run.
type Error struct {
	// Stage is "tasks" (a line of the case file), "recipe" (parsing or
	// building a recipe), "case" (running one case) or "fidelity".
	Stage  string `json:"stage"`
	Line   int    `json:"line,omitempty"`
	Recipe string `json:"recipe,omitempty"`
	// Message is the reason, as printed.
	Message string `json:"message"`
}

// New starts an empty report.
func New(now time.Time) *Report {
	return &Report{Schema: Schema, Created: now.UTC().Truncate(time.Second), Complete: true}
}

// Recipe returns the recipe named name, or nil.
func (r *Report) Recipe(name string) *Recipe {
	for i := range r.Recipes {
		if r.Recipes[i].Name == name {
			return &r.Recipes[i]
		}
	}
	return nil
}

// Finalize recomputes every aggregate from the cases and marks the report
// incomplete when anything failed. It is idempotent.
func (r *Report) Finalize() {
	if len(r.Errors) > 0 || r.Stopped != "" {
		r.Complete = false
	}
	r.Cells, r.Lengths = nil, nil
	type cellKey struct {
		recipe, task string
		n            int
	}
	type lenKey struct {
		recipe string
		n      int
	}
	cells := map[cellKey]*Cell{}
	lens := map[lenKey]*lenAcc{}
	recs := map[string]*lenAcc{}
	for _, c := range r.Cases {
		k := cellKey{c.Recipe, c.Task, c.ContextTokens}
		cl := cells[k]
		if cl == nil {
			cl = &Cell{Recipe: c.Recipe, Task: c.Task, ContextTokens: c.ContextTokens}
			cells[k] = cl
		}
		cl.Cases++
		cl.Accuracy += c.Score
		lk := lenKey{c.Recipe, c.ContextTokens}
		if lens[lk] == nil {
			lens[lk] = &lenAcc{}
		}
		lens[lk].add(c)
		if recs[c.Recipe] == nil {
			recs[c.Recipe] = &lenAcc{}
		}
		recs[c.Recipe].add(c)
	}
	order := map[string]int{}
	for i, rc := range r.Recipes {
		order[rc.Name] = i
	}
	for _, cl := range cells {
		cl.AccuracyLow, cl.AccuracyHigh = Wilson(cl.Accuracy, cl.Cases)
		cl.Accuracy /= float64(cl.Cases)
		r.Cells = append(r.Cells, *cl)
	}
	slices.SortFunc(r.Cells, func(a, b Cell) int {
		return cmp.Or(cmp.Compare(order[a.Recipe], order[b.Recipe]), cmp.Compare(taskOrder(a.Task), taskOrder(b.Task)),
			cmp.Compare(a.Task, b.Task), cmp.Compare(a.ContextTokens, b.ContextTokens))
	})
	for k, a := range lens {
		r.Lengths = append(r.Lengths, LengthCost{
			Recipe: k.recipe, ContextTokens: k.n, Cases: a.n,
			PromptTokensMean: a.prompt / float64(a.n),
			KVBytesMean:      a.kv / float64(a.n), KVBytesPeakMean: a.peak / float64(a.n), FullKVBytesMean: a.full / float64(a.n),
			TTFTMsMean: a.ttft / float64(a.n), PrefillTokPerSec: rate(a.prompt, a.prefillMs),
		})
	}
	slices.SortFunc(r.Lengths, func(a, b LengthCost) int {
		return cmp.Or(cmp.Compare(order[a.Recipe], order[b.Recipe]), cmp.Compare(a.ContextTokens, b.ContextTokens))
	})
	for i := range r.Recipes {
		rc := &r.Recipes[i]
		a := recs[rc.Name]
		rc.Strata, rc.OutsideWindow = nil, nil
		if a == nil {
			rc.Cases, rc.Accuracy, rc.AccuracyLow, rc.AccuracyHigh, rc.Cost = 0, 0, 0, 0, Cost{}
			rc.Strata = []Stratum{}
			continue
		}
		n := float64(a.n)
		rc.Cases, rc.Accuracy = a.n, a.score/n
		rc.AccuracyLow, rc.AccuracyHigh = Wilson(a.score, a.n)
		rc.Strata, rc.OutsideWindow = r.strata(rc.Name)
		rc.Cost = Cost{
			KVBytesMean: a.kv / n, KVBytesPeakMean: a.peak / n, KVBytesPeakMax: a.peakMax, FullKVBytesMean: a.full / n,
			Ratio: safeDiv(a.kv, a.full), PeakRatio: safeDiv(a.peak, a.full),
			PrefillTokPerSec: rate(a.prompt, a.prefillMs), DecodeTokPerSec: rate(a.decodeTok, a.decodeMs),
			TTFTMsMean: a.ttft / n, PromptTokens: int(a.prompt), GeneratedTokens: a.gen,
		}
	}
	r.sanitize()
	// Empty lists, not null, so consumers can iterate without checks.
	r.Recipes, r.Cells, r.Lengths = orEmpty(r.Recipes), orEmpty(r.Cells), orEmpty(r.Lengths)
	r.Cases, r.Errors = orEmpty(r.Cases), orEmpty(r.Errors)
	r.Setup.Suite, r.Setup.Lengths, r.Setup.Depths = orEmpty(r.Setup.Suite), orEmpty(r.Setup.Lengths), orEmpty(r.Setup.Depths)
	r.Setup.EqualKV = orEmpty(r.Setup.EqualKV)
}

// strata splits a recipe's cases by stratum (Stratum) and sums those
// outside the always-kept window; outside is nil when no case of the
// recipe has a window (it keeps every token).
func (r *Report) strata(recipe string) (strata []Stratum, outside *Stratum) {
	by := map[string]*Stratum{}
	windowed := false
	out := &Stratum{Name: "outside window"}
	for i := range r.Cases {
		c := &r.Cases[i]
		if c.Recipe != recipe {
			continue
		}
		name := stratumOf(c)
		if by[name] == nil {
			by[name] = &Stratum{Name: name}
		}
		by[name].add(c.Score)
		if c.InWindow != nil {
			windowed = true
			if !*c.InWindow {
				out.add(c.Score)
			}
		}
	}
	for _, s := range by {
		s.finish()
		strata = append(strata, *s)
	}
	slices.SortFunc(strata, strataOrder)
	if !windowed {
		return orEmpty(strata), nil
	}
	out.finish()
	return orEmpty(strata), out
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type lenAcc struct {
	n                             int
	score, kv, peak, full, prompt float64
	prefillMs, ttft, decodeMs     float64
	decodeTok                     float64
	gen                           int
	peakMax                       int64
}

func (a *lenAcc) add(c CaseResult) {
	a.n++
	a.score += c.Score
	a.kv += float64(c.KVBytes)
	a.peak += float64(c.KVBytesPeak)
	a.peakMax = max(a.peakMax, c.KVBytesPeak)
	a.full += float64(c.FullKVBytes)
	a.prompt += float64(c.PromptTokens)
	a.prefillMs += c.PrefillMs
	a.ttft += c.TTFTMs
	a.gen += c.GeneratedTokens
	if c.GeneratedTokens > 1 {
		a.decodeTok += float64(c.GeneratedTokens - 1)
		a.decodeMs += c.DecodeMs
	}
}

func rate(tokens, ms float64) float64 {
	if ms <= 0 {
		return 0
	}
	return tokens / (ms / 1000)
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// taskOrder puts the built-in tasks first, in their usual order.
func taskOrder(t string) int {
	switch t {
	case "passkey":
		return 0
	case "multikey":
		return 1
	case "kv":
		return 2
	case "vt":
		return 3
	case "multivalue":
		return 4
	}
	return 5
}

// sanitize replaces values JSON cannot carry (a perplexity can overflow to
// +Inf): NaN becomes 0 and ±Inf the largest finite float, so the document
// always parses.
func (r *Report) sanitize() {
	fix := func(x *float64) {
		switch {
		case math.IsNaN(*x):
			*x = 0
		case math.IsInf(*x, 1):
			*x = math.MaxFloat64
		case math.IsInf(*x, -1):
			*x = -math.MaxFloat64
		}
	}
	for i := range r.Recipes {
		if f := r.Recipes[i].Fidelity; f != nil {
			for _, x := range []*float64{&f.MeanKLD, &f.P99KLD, &f.Top1, &f.PPL, &f.BasePPL, &f.Ratio, &f.MeanKLDSE, &f.Top1SE, &f.DeltaPPLSE} {
				fix(x)
			}
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadJSON parses a report and checks its schema, rejecting unknown
// fields so that a document that drifted from the schema is noticed.
func ReadJSON(rd io.Reader) (*Report, error) {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	var r Report
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("schema %q, want %q", r.Schema, Schema)
	}
	return &r, r.Validate()
}

// Validate checks the invariants a consumer may rely on.
func (r *Report) Validate() error {
	var errs []error
	names := map[string]bool{}
	for _, rc := range r.Recipes {
		if rc.Name == "" {
			errs = append(errs, errors.New("a recipe has no name"))
		}
		if names[rc.Name] {
			errs = append(errs, fmt.Errorf("recipe %q appears twice", rc.Name))
		}
		names[rc.Name] = true
		if rc.Accuracy < 0 || rc.Accuracy > 1 {
			errs = append(errs, fmt.Errorf("recipe %q: accuracy %g outside 0..1", rc.Name, rc.Accuracy))
		}
	}
	for i, c := range r.Cases {
		if !names[c.Recipe] {
			errs = append(errs, fmt.Errorf("case %d: unknown recipe %q", i, c.Recipe))
		}
		if c.Score < 0 || c.Score > 1 {
			errs = append(errs, fmt.Errorf("case %d: score %g outside 0..1", i, c.Score))
		}
	}
	for _, c := range r.Cells {
		if !names[c.Recipe] {
			errs = append(errs, fmt.Errorf("cell: unknown recipe %q", c.Recipe))
		}
	}
	if !r.Complete && r.Stopped == "" && len(r.Errors) == 0 {
		errs = append(errs, errors.New("incomplete without a reason: neither stopped nor errors"))
	}
	return errors.Join(errs...)
}
