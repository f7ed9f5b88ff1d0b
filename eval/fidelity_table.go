package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

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
	fmt.Fprintf(w, "%s %-46s %s %s %s %9s %s %s %s %8s %s %s %s %6s %s\n", sep, "recipe", sep, padLeft("mean KLD", 17), sep, "p99 KLD", sep, padLeft("top-1", 15), sep, "PPL", sep, padLeft("ΔPPL", 17), sep, "KV", sep)
	if format == FidelityMarkdown {
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
	}
	for _, f := range res {
		if f.Error != "" {
			fmt.Fprintf(w, "%s %-46s %s failed: %s\n", sep, f.Recipe, sep, f.Error)
			continue
		}
		fmt.Fprintf(w, "%s %-46s %s %s %s %9.5f %s %s %s %8.4f %s %s %s %6.3f %s\n", sep, f.Recipe, sep, padLeft(plusMinus("%.5f", f.MeanKLD, f.MeanKLDSE), 17), sep, f.P99KLD, sep,
			padLeft(plusMinus("%.4f", f.Top1, f.Top1SE), 15), sep, f.PPL, sep, padLeft(plusMinus("%+.4f", f.PPL-f.BasePPL, f.DeltaPPLSE), 17), sep, f.Ratio, sep)
	}
	for _, f := range res {
		if f.Error == "" {
			_, err := fmt.Fprintf(w, "\nbase %s: PPL %.4f over %d positions in %d chunk(s); ± is the standard error across chunks; KV is the mean cache size as a fraction of the full f16 cache\n", base, f.BasePPL, f.Positions, f.Chunks)
			return err
		}
	}
	return nil
}

// plusMinus formats x with format and, when se > 0, "±se" with the same
// decimals (unsigned).
func plusMinus(format string, x, se float64) string {
	s := fmt.Sprintf(format, x)
	if se <= 0 {
		return s
	}
	return s + " ±" + fmt.Sprintf(strings.Replace(format, "+", "", 1), se)
}

// padLeft right-aligns s in w characters (runes, not bytes: "±" and "Δ"
// take one column).
func padLeft(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}
