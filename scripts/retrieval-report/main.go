// Command retrieval-report prints the markdown tables of docs/RETRIEVAL.md
// (scripts/retrieval.sh) from kvgo's own JSON reports:
//
//	retrieval-report accuracy REPORT.json   # kvgo eval's report (kvgo-eval/1)
//	retrieval-report bench BENCH.json...    # kvgo bench --json, in order
//
// Accuracies are mean scores (a multi-answer case counts its fraction) with
// the 95% Wilson interval of eval/report.Wilson and the case count.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/bench"
	"github.com/kvgo/kvgo/eval/report"
)

func main() {
	if len(os.Args) < 3 || (os.Args[1] != "accuracy" && os.Args[1] != "bench") {
		fmt.Fprintln(os.Stderr, "usage: retrieval-report accuracy REPORT.json | bench BENCH.json...")
		os.Exit(2)
	}
	var err error
	if os.Args[1] == "accuracy" {
		err = accuracy(os.Args[2])
	} else {
		err = benchTable(os.Args[2:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "retrieval-report:", err)
		os.Exit(1)
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// cell is "acc% [lo–hi] x/n" for the scores of n cases.
func cell(scores []float64) string {
	n := len(scores)
	if n == 0 {
		return "-"
	}
	var x float64
	for _, s := range scores {
		x += s
	}
	lo, hi := report.Wilson(x, n)
	return fmt.Sprintf("%.0f%% [%.0f–%.0f] %s/%d", 100*x/float64(n), 100*lo, 100*hi, strings.TrimSuffix(fmt.Sprintf("%.3g", x), ".0"), n)
}

func short(name string) string { return strings.ReplaceAll(name, "|", `\|`) }

// taskGroup is a column of the accuracy table: the tasks it pools (nil:
// every task).
type taskGroup struct {
	name  string
	tasks []string
}

func accuracy(path string) error {
	var rep report.Report
	if err := readJSON(path, &rep); err != nil {
		return err
	}
	var lengths []int
	for _, c := range rep.Cases {
		if !slices.Contains(lengths, c.ContextTokens) {
			lengths = append(lengths, c.ContextTokens)
		}
	}
	sort.Ints(lengths)
	groups := []taskGroup{{"all tasks", nil}, {"passkey", []string{"passkey"}}, {"multikey", []string{"multikey"}},
		{"kv, vt, multivalue", []string{"kv", "vt", "multivalue"}}}
	for _, n := range lengths {
		fmt.Printf("### %d tokens\n\n| recipe | ", n)
		for _, g := range groups {
			fmt.Printf("%s | ", g.name)
		}
		fmt.Printf("KV/full |\n%s|\n", strings.Repeat("|---", len(groups)+2))
		for _, r := range rep.Recipes {
			var row []string
			for _, g := range groups {
				var s []float64
				for _, c := range rep.Cases {
					if c.Recipe == r.Name && c.ContextTokens == n && (g.tasks == nil || slices.Contains(g.tasks, c.Task)) {
						s = append(s, c.Score)
					}
				}
				row = append(row, cell(s))
			}
			// The cache at the end of each case against the full f16
			// cache for the same tokens, averaged over the length's cases.
			var sum float64
			var k int
			for _, c := range rep.Cases {
				if c.Recipe == r.Name && c.ContextTokens == n && c.FullKVBytes > 0 {
					sum += float64(c.KVBytes) / float64(c.FullKVBytes)
					k++
				}
			}
			ratio := math.NaN()
			if k > 0 {
				ratio = sum / float64(k)
			}
			fmt.Printf("| `%s` | %s | %.3f |\n", short(r.Name), strings.Join(row, " | "), ratio)
		}
		fmt.Println()
	}
	// Needle-depth strata, passkey and multikey (the tasks kvgo-tiny
	// answers), both lengths: each case in the nearest bin.
	bins := []float64{0, 0.25, 0.5, 0.75, 1}
	var heads []string
	for _, b := range bins {
		heads = append(heads, fmt.Sprintf("depth %g", b))
	}
	fmt.Printf("### By needle depth (passkey and multikey, both lengths)\n\n| recipe | %s |\n%s|\n", strings.Join(heads, " | "), strings.Repeat("|---", len(bins)+1))
	for _, r := range rep.Recipes {
		var row []string
		for _, b := range bins {
			var s []float64
			for _, c := range rep.Cases {
				if c.Recipe == r.Name && (c.Task == "passkey" || c.Task == "multikey") && c.Depth != nil && nearest(bins, *c.Depth) == b {
					s = append(s, c.Score)
				}
			}
			row = append(row, cell(s))
		}
		fmt.Printf("| `%s` | %s |\n", short(r.Name), strings.Join(row, " | "))
	}
	fmt.Println()
	return nil
}

// nearest is the bin closest to x, the first on ties.
func nearest(bins []float64, x float64) float64 {
	best := bins[0]
	for _, b := range bins[1:] {
		if math.Abs(b-x) < math.Abs(best-x) {
			best = b
		}
	}
	return best
}

func benchTable(paths []string) error {
	fmt.Printf("| depth | recipe | decode t/s | vs f16 | KV/full |\n|---|---|---|---|---|\n")
	for _, p := range paths {
		var rep bench.Report
		if err := readJSON(p, &rep); err != nil {
			return err
		}
		for _, r := range rep.Results {
			if !strings.HasPrefix(r.Test, "tg") {
				continue
			}
			vs := "1"
			if r.VsFirst != 0 {
				vs = fmt.Sprintf("%.2f ± %.2f", r.VsFirst, r.VsFirstStdDev)
			}
			name := r.Recipe
			if strings.HasPrefix(name, "f16") {
				name, _, _ = strings.Cut(name, "(")
			}
			fmt.Printf("| %d | `%s` | %.2f ± %.2f | %s | %.3f |\n", r.Depth, short(name), r.TokPerSec, r.StdDev, vs, r.Ratio)
		}
	}
	fmt.Println()
	return nil
}
