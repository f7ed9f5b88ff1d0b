package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteTable prints the summary a terminal user reads: one row per recipe
// with accuracy, cost and fidelity, then accuracy per task and length.
func (r *Report) WriteTable(w io.Writer) {
	nameW := len("recipe")
	for _, rc := range r.Recipes {
		nameW = max(nameW, len(rc.Name))
	}
	fmt.Fprintf(w, "%-*s %6s %8s %8s %9s %10s %9s %9s %8s %9s %9s %7s %9s\n", nameW,
		"recipe", "cases", "accuracy", "KV/full", "peak/full", "KV mean", "prefill/s", "decode/s", "TTFT ms",
		"mean KLD", "p99 KLD", "top-1", "ΔPPL")
	for _, rc := range r.Recipes {
		if rc.Error != "" && rc.Cases == 0 {
			fmt.Fprintf(w, "%-*s failed: %s\n", nameW, rc.Name, rc.Error)
			continue
		}
		c := rc.Cost
		fmt.Fprintf(w, "%-*s %6d %7.1f%% %8.3f %9.3f %10s %9.0f %9.0f %8.0f", nameW,
			rc.Name, rc.Cases, 100*rc.Accuracy, c.Ratio, c.PeakRatio, Bytes(c.KVBytesMean),
			c.PrefillTokPerSec, c.DecodeTokPerSec, c.TTFTMsMean)
		if f := rc.Fidelity; f != nil {
			fmt.Fprintf(w, " %9.5f %9.5f %7.4f %+9.4f", f.MeanKLD, f.P99KLD, f.Top1, f.PPL-f.BasePPL)
		} else {
			fmt.Fprintf(w, " %9s %9s %7s %9s", "-", "-", "-", "-")
		}
		fmt.Fprintln(w)
	}
	cols := r.columns()
	if len(cols) > 0 {
		fmt.Fprintln(w)
		widths := make([]int, len(cols))
		fmt.Fprintf(w, "%-*s", nameW, "accuracy")
		for i, c := range cols {
			widths[i] = max(len(c.label()), 6)
			fmt.Fprintf(w, "  %*s", widths[i], c.label())
		}
		fmt.Fprintln(w)
		for _, rc := range r.Recipes {
			fmt.Fprintf(w, "%-*s", nameW, rc.Name)
			for i, c := range cols {
				cell := r.cell(rc.Name, c.task, c.n)
				s := "-"
				if cell != nil {
					s = fmt.Sprintf("%.0f%% /%d", 100*cell.Accuracy, cell.Cases)
				}
				fmt.Fprintf(w, "  %*s", widths[i], s)
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
