package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/internal/units"
)

// Schema is Report.Schema, the version of the JSON document `kvgo bench
// --json` writes (documented in docs/PERFORMANCE.md).
const Schema = "kvgo-bench/1"

// Report is one bench run: the machine and model it ran on, the results,
// and what was measured around them. WriteJSON writes it as the
// kvgo-bench/1 document, WriteTable as the terminal table.
type Report struct {
	Schema       string   `json:"schema"`
	Model        string   `json:"model"`
	Params       uint64   `json:"params"`
	Threads      int      `json:"threads"`
	GOARCH       string   `json:"goarch"`
	Results      []Result `json:"results"`
	PeakRSSBytes int64    `json:"peak_rss_bytes"`
	// MemBW is the measured memory bandwidth in bytes/s (0 = not measured).
	MemBW               float64 `json:"membw_bytes_per_second"`
	WeightBytesPerToken int64   `json:"weight_bytes_per_token"`
	// FMAFlops is the attention kernels' arithmetic rate in flops/s
	// (FMAThroughput; 0 = not measured), and AttnFlopsPerPos the
	// attention's flops per cached position and token (AttentionFlops):
	// with MemBW they give each tg test's arithmetic bound (ArithBound).
	FMAFlops        float64 `json:"fma_flops_per_second,omitempty"`
	AttnFlopsPerPos float64 `json:"attention_flops_per_position,omitempty"`
	// Arch is the model's architecture, shown in the table's heading; it
	// is not part of kvgo-bench/1.
	Arch string `json:"-"`
}

// NewReport starts the report of a run on e: the model and the machine,
// without results.
func NewReport(e *engine.Engine) *Report {
	return &Report{
		Schema: Schema, Model: e.Source, Arch: e.Model.Arch, Params: e.Params(), Threads: e.Pool.Threads(),
		GOARCH: runtime.GOARCH, WeightBytesPerToken: e.WeightBytesPerToken(),
		AttnFlopsPerPos: AttentionFlops(e.Model.Config),
	}
}

// WriteJSON writes the report as indented JSON and a newline; no results
// are written as [], not null.
func (r *Report) WriteJSON(w io.Writer) error {
	rep := *r
	if rep.Results == nil {
		rep.Results = []Result{}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// WriteTable writes the terminal table of a finished report, as a Table
// fed its results one by one would: the heading, a row per result, then
// the peak RSS and the decode bounds. The "vs first" column is shown when
// the results carry it (recipes interleaved).
func (r *Report) WriteTable(w io.Writer) error {
	paired := false
	for _, res := range r.Results {
		paired = paired || res.VsFirst != 0
	}
	t := NewTable(w, r, paired)
	for _, res := range r.Results {
		t.Row(res)
	}
	t.Summary(r)
	return t.Err()
}

// Table writes the terminal table of kvgo bench while the run goes on:
// NewTable writes the heading, Row a result (it fits Config.Progress) and
// Summary what was measured after the results.
type Table struct {
	w      io.Writer
	paired bool
	err    error
}

// NewTable writes the heading of r's table to w: the model, then the
// columns. paired adds the "vs first" column of recipes interleaved
// (Result.VsFirst).
func NewTable(w io.Writer, r *Report, paired bool) *Table {
	t := &Table{w: w, paired: paired}
	t.printf("model: %s (%s, %s params, %s of weights read per token), %d threads\n\n",
		r.Model, r.Arch, units.Params(r.Params), units.Bytes(r.WeightBytesPerToken), r.Threads)
	head := fmt.Sprintf("| %-40s | %-7s | %6s | %20s | %11s | %6s |", "recipe", "test", "depth", "t/s", "KV", "ratio")
	rule := fmt.Sprintf("|%s|%s|%s|%s|%s|%s|", strings.Repeat("-", 42), strings.Repeat("-", 9), strings.Repeat("-", 8), strings.Repeat("-", 22), strings.Repeat("-", 13), strings.Repeat("-", 8))
	if paired {
		head += fmt.Sprintf(" %15s |", "vs first")
		rule += strings.Repeat("-", 17) + "|"
	}
	t.printf("%s\n%s\n", head, rule)
	return t
}

// Row writes one result.
func (t *Table) Row(r Result) {
	line := fmt.Sprintf("| %-40s | %-7s | %6d | %10.2f ± %7.2f | %11s | %6.3f |", r.Recipe, r.Test, r.Depth, r.TokPerSec, r.StdDev, units.Bytes(r.KVBytes), r.Ratio)
	if t.paired {
		line += fmt.Sprintf(" %6.3f ± %6.3f |", r.VsFirst, r.VsFirstStdDev)
	}
	t.printf("%s\n", line)
}

// Summary writes the peak RSS and, when the memory bandwidth was measured,
// how close each tg result came to its decode bound.
func (t *Table) Summary(r *Report) {
	t.printf("\npeak RSS: %s\n", units.Bytes(r.PeakRSSBytes))
	for _, res := range r.Results {
		if res.Seqs > 0 {
			t.printf("batched decode %-40s %-9s depth %6d: %8.2f t/s total, %7.2f per sequence\n", res.Recipe, res.Test, res.Depth, res.TokPerSec, res.PerSeqTokPerSec)
		}
	}
	if r.MemBW <= 0 {
		return
	}
	t.printf("memory bandwidth: %.1f GB/s; decode bound = bandwidth / (weights + KV bytes) per token:\n", r.MemBW/1e9)
	for _, res := range r.Results {
		if res.BoundTokPerSec > 0 {
			t.printf("  %-40s %-7s depth %6d: %8.2f t/s = %5.1f%% of the bound %.2f\n", res.Recipe, res.Test, res.Depth, res.TokPerSec, 100*res.TokPerSec/res.BoundTokPerSec, res.BoundTokPerSec)
		}
	}
	if r.FMAFlops <= 0 {
		return
	}
	t.printf("attention kernels: %.1f GFLOP/s; attention %.0f flops per cached position and token;\n", r.FMAFlops/1e9, r.AttnFlopsPerPos)
	t.printf("bound with arithmetic = 1 / (weights / bandwidth + max(KV bytes / bandwidth, attention flops / kernel rate)):\n")
	for _, res := range r.Results {
		if b := r.ArithBound(res); b > 0 {
			t.printf("  %-40s %-7s depth %6d: %8.2f t/s = %5.1f%% of the bound %.2f\n", res.Recipe, res.Test, res.Depth, res.TokPerSec, 100*res.TokPerSec/b, b)
		}
	}
}

// Err is the first error writing the table met; later writes are skipped.
func (t *Table) Err() error { return t.err }

func (t *Table) printf(format string, a ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, a...)
	}
}
