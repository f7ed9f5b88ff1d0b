package eval

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/kvgo/kvgo/kv/recipe"
)

// Fidelity output formats of WriteFidelity.
const (
	FidelityTable    = "table"
	FidelityMarkdown = "markdown"
	FidelityJSON     = "json"
)

// WriteFidelity prints the results of CompareFidelity against base: as an
// aligned table, a markdown table, or a JSON array (empty, not null, when
// there are none). Failed recipes get a line with their reason.
func WriteFidelity(w io.Writer, format string, base *recipe.Recipe, res []Fidelity) error {
	switch format {
	case FidelityJSON:
		if res == nil {
			res = []Fidelity{}
		}
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case FidelityTable, FidelityMarkdown:
	default:
		return fmt.Errorf("unknown fidelity format %q", format)
	}
	sep := " "
	if format == FidelityMarkdown {
		sep = "|"
	}
	fmt.Fprintf(w, "%s %-46s %s %9s %s %9s %s %6s %s %8s %s %8s %s %6s %s\n", sep, "recipe", sep, "mean KLD", sep, "p99 KLD", sep, "top-1", sep, "PPL", sep, "ΔPPL", sep, "KV", sep)
	if format == FidelityMarkdown {
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
	}
	for _, f := range res {
		if f.Error != "" {
			fmt.Fprintf(w, "%s %-46s %s failed: %s\n", sep, f.Recipe, sep, f.Error)
			continue
		}
		fmt.Fprintf(w, "%s %-46s %s %9.5f %s %9.5f %s %6.4f %s %8.4f %s %+8.4f %s %6.3f %s\n", sep, f.Recipe, sep, f.MeanKLD, sep, f.P99KLD, sep, f.Top1, sep, f.PPL, sep, f.PPL-f.BasePPL, sep, f.Ratio, sep)
	}
	for _, f := range res {
		if f.Error == "" {
			_, err := fmt.Fprintf(w, "\nbase %s: PPL %.4f over %d positions; KV is the mean cache size as a fraction of the full f16 cache\n", base, f.BasePPL, f.Positions)
			return err
		}
	}
	return nil
}
