package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// TableLegend is the one-line legend of WriteTable's columns.
const TableLegend = "accuracy: mean score with its 95% Wilson interval; outside window: accuracy where the needle was not in the tokens the method keeps by rule; " +
	"KV/full, peak/full: cache at the end / at its largest over a full f16 cache; prefill/s, decode/s: tokens per second; TTFT: time to first token; " +
	"KLD, top-1, ΔPPL: next-token distributions against the base on the fidelity text (± standard error across chunks)"

// WriteTable prints the summary a terminal user reads: a legend, one row
// per recipe with accuracy, cost and fidelity, the generated readings,
// then accuracy per needle stratum and per task and length.
func (r *Report) WriteTable(w io.Writer) {
	nameW := len("recipe")
	for _, rc := range r.Recipes {
		nameW = max(nameW, len(rc.Name))
	}
	fmt.Fprintf(w, "legend: %s\n\n", TableLegend)
	fmt.Fprintf(w, "%-*s %6s %s %s %8s %9s %10s %9s %9s %8s %s %9s %s %s\n", nameW,
		"recipe", "cases", padRight("accuracy", 14), padRight("outside window", 19), "KV/full", "peak/full", "KV mean", "prefill/s", "decode/s", "TTFT ms",
		padLeft("mean KLD", 16), "p99 KLD", padLeft("top-1", 14), padLeft("ΔPPL", 16))
	for _, rc := range r.Recipes {
		if rc.Error != "" && rc.Cases == 0 {
			fmt.Fprintf(w, "%-*s failed: %s\n", nameW, rc.Name, rc.Error)
			continue
		}
		c := rc.Cost
		outside := "-"
		if o := rc.OutsideWindow; o != nil {
			outside = fmt.Sprintf("%s /%d", Interval(o.Accuracy, o.Low, o.High), o.Cases)
		}
		fmt.Fprintf(w, "%-*s %6d %s %s %8.3f %9.3f %10s %9.0f %9.0f %8.0f", nameW,
			rc.Name, rc.Cases, padRight(Interval(rc.Accuracy, rc.AccuracyLow, rc.AccuracyHigh), 14), padRight(outside, 19), c.Ratio, c.PeakRatio, Bytes(c.KVBytesMean),
			c.PrefillTokPerSec, c.DecodeTokPerSec, c.TTFTMsMean)
		if f := rc.Fidelity; f != nil {
			fmt.Fprintf(w, " %s %9.5f %s %s", padLeft(pm(f.MeanKLD, f.MeanKLDSE, 5), 16), f.P99KLD, padLeft(pm(f.Top1, f.Top1SE, 4), 14), padLeft(pmSigned(f.PPL-f.BasePPL, f.DeltaPPLSE, 4), 16))
		} else {
			fmt.Fprintf(w, " %16s %9s %14s %16s", "-", "-", "-", "-")
		}
		fmt.Fprintln(w)
	}
	if rs := r.Readings(); len(rs) > 0 {
		fmt.Fprintln(w)
		for _, s := range rs {
			fmt.Fprintf(w, "- %s\n", s)
		}
	}
	if names := r.strataNames(); len(names) > 0 {
		fmt.Fprintln(w)
		widths := make([]int, len(names))
		fmt.Fprintf(w, "%-*s", nameW, "answered by stratum")
		for i, n := range names {
			widths[i] = max(len(n), 7)
			fmt.Fprintf(w, "  %*s", widths[i], n)
		}
		fmt.Fprintln(w)
		for _, rc := range r.Recipes {
			if rc.Cases == 0 {
				continue
			}
			fmt.Fprintf(w, "%-*s", nameW, rc.Name)
			for i, n := range names {
				s := "-"
				for _, st := range rc.Strata {
					if st.Name == n {
						s = fmt.Sprintf("%s/%d", trimFloat(st.Score), st.Cases)
					}
				}
				fmt.Fprintf(w, "  %*s", widths[i], s)
			}
			fmt.Fprintln(w)
		}
	}
	cols := r.columns()
	if len(cols) > 0 {
		fmt.Fprintln(w)
		widths := make([]int, len(cols))
		fmt.Fprintf(w, "%-*s", nameW, "accuracy")
		for i, c := range cols {
			widths[i] = max(len(c.label()), 17)
			fmt.Fprintf(w, "  %*s", widths[i], c.label())
		}
		fmt.Fprintln(w)
		for _, rc := range r.Recipes {
			fmt.Fprintf(w, "%-*s", nameW, rc.Name)
			for i, c := range cols {
				cell := r.cell(rc.Name, c.task, c.n)
				s := "-"
				if cell != nil {
					s = fmt.Sprintf("%s /%d", Interval(cell.Accuracy, cell.AccuracyLow, cell.AccuracyHigh), cell.Cases)
				}
				fmt.Fprintf(w, "  %s", padLeft(s, widths[i]))
			}
			fmt.Fprintln(w)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e.String())
	}
	if r.Stopped != "" {
		fmt.Fprintf(w, "stopped early: %s (the report holds what finished)\n", r.Stopped)
	}
}

// pm formats x with the given decimals and its standard error to two
// significant digits ("0.25834 ±0.031"); no error when se is 0 (one
// chunk).
func pm(x, se float64, dec int) string {
	if se <= 0 {
		return fmt.Sprintf("%.*f", dec, x)
	}
	return fmt.Sprintf("%.*f ±%.2g", dec, x, se)
}

func pmSigned(x, se float64, dec int) string {
	if math.Abs(x) > 1e12 { // a perplexity that overflowed
		return fmt.Sprintf("%+g", math.Inf(int(math.Copysign(1, x))))
	}
	if se <= 0 {
		return fmt.Sprintf("%+.*f", dec, x)
	}
	return fmt.Sprintf("%+.*f ±%.2g", dec, x, se)
}

// strataNames lists the strata that have cases, window first, then by
// depth.
func (r *Report) strataNames() []string {
	var all []Stratum
	seen := map[string]bool{}
	for _, rc := range r.Recipes {
		for _, s := range rc.Strata {
			if !seen[s.Name] {
				seen[s.Name] = true
				all = append(all, s)
			}
		}
	}
	slices.SortFunc(all, strataOrder)
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	return names
}

// String renders an error as the CLI prints it.
func (e Error) String() string {
	var where []string
	if e.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", e.Line))
	}
	if e.Recipe != "" {
		where = append(where, fmt.Sprintf("recipe %q", e.Recipe))
	}
	if len(where) == 0 {
		return e.Stage + ": " + e.Message
	}
	return fmt.Sprintf("%s (%s): %s", e.Stage, strings.Join(where, ", "), e.Message)
}

type column struct {
	task string
	n    int
}

func (c column) label() string { return fmt.Sprintf("%s@%d", c.task, c.n) }

// columns lists the task × length pairs that have results, in task then
// length order.
func (r *Report) columns() []column {
	var cols []column
	for _, c := range r.Cells {
		col := column{c.Task, c.ContextTokens}
		if !slices.Contains(cols, col) {
			cols = append(cols, col)
		}
	}
	slices.SortFunc(cols, func(a, b column) int {
		if d := taskOrder(a.task) - taskOrder(b.task); d != 0 {
			return d
		}
		if a.task != b.task {
			return strings.Compare(a.task, b.task)
		}
		return a.n - b.n
	})
	return cols
}

func (r *Report) cell(recipe, task string, n int) *Cell {
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Recipe == recipe && c.Task == task && c.ContextTokens == n {
			return c
		}
	}
	return nil
}

// Bytes formats a byte count with a binary unit.
func Bytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// padLeft right-aligns s in w columns, counting runes ("–", "±", "Δ").
func padLeft(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// padRight left-aligns s in w columns, counting runes.
func padRight(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}
