// Command rag-served-table prints the markdown table of docs/RAG.md's
// "Served" section from `kvgo loadtest --rag --json` reports
// (scripts/rag-served.sh): per policy, throughput (requests/s and prompt
// tokens/s, medians over repetitions), the per-repetition ratio of
// requests/s to prefix caching's (median, range, and in how many
// repetitions it was above 1: runs are seconds long on a shared machine, so
// a burst of load shows as an outlier, hence medians), TTFT percentiles
// (medians over repetitions), the share of prompt tokens cached, and the
// accuracy pooled over repetitions with its 95% Wilson interval.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/loadtest"
)

// baseline is the policy every other one's requests/s is divided by.
const baseline = "prefix+f16"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rag-served-table:", err)
		os.Exit(1)
	}
}

func run(paths []string) error {
	if len(paths) == 0 {
		return fmt.Errorf("usage: rag-served-table REPORT.json...")
	}
	runs := map[string]map[uint64]*loadtest.Report{} // recipe -> seed -> report
	var order []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var r loadtest.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if r.RAG == nil {
			return fmt.Errorf("%s: not a --rag report", p)
		}
		if runs[r.Recipe] == nil {
			runs[r.Recipe] = map[uint64]*loadtest.Report{}
			order = append(order, r.Recipe)
		}
		runs[r.Recipe][r.RAG.Seed] = &r
	}
	var seeds []uint64
	for s := range runs[order[0]] {
		seeds = append(seeds, s)
	}
	slices.Sort(seeds)
	first := runs[order[0]][seeds[0]]
	rag := first.RAG
	var seedList []string
	for _, s := range seeds {
		seedList = append(seedList, fmt.Sprint(s))
	}
	fmt.Printf("%s served by one `kvgo serve` on loopback: %d documents of %.0f tokens, %d per question, Zipf s=%.2f; "+
		"%d streaming clients, %d measured questions per run after %d warm-up ones, %d repetitions with every policy in turn (seeds %s); "+
		"%d generated tokens per answer.\n\n",
		first.Model, rag.Docs, rag.DocTokens, rag.K, rag.Zipf, first.Clients, first.OK+first.Failed, rag.Warm, len(seeds),
		strings.Join(seedList, ", "), first.GenTokens/max(first.OK, 1))
	fmt.Println("| policy | requests/s | prompt tok/s | requests/s vs prefix+f16 (paired median, range) | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | cached prompt tokens | accuracy (n, 95% CI) | failed |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, rec := range order {
		var rs []*loadtest.Report
		var ratios []float64
		for _, s := range seeds {
			r, ok := runs[rec][s]
			if !ok {
				continue
			}
			rs = append(rs, r)
			if b, ok := runs[baseline][s]; ok && b.ReqPerSec > 0 {
				ratios = append(ratios, r.ReqPerSec/b.ReqPerSec)
			}
		}
		med := func(f func(r *loadtest.Report) float64) float64 {
			var x []float64
			for _, r := range rs {
				x = append(x, f(r))
			}
			return median(x)
		}
		ratio := "-"
		if len(ratios) > 0 && rec != baseline {
			above := 0
			for _, x := range ratios {
				if x > 1 {
					above++
				}
			}
			ratio = fmt.Sprintf("%.2fx (%.2f-%.2f; above 1 in %d/%d)", median(ratios), slices.Min(ratios), slices.Max(ratios), above, len(ratios))
		}
		var prompt, cached, correct, cases, failed int
		for _, r := range rs {
			prompt += r.PromptTokens
			cached += r.CachedTokens
			correct += r.RAG.Correct
			cases += r.RAG.Cases
			failed += r.Failed + r.RAG.WarmFailed
		}
		lo, hi := report.Wilson(float64(correct), cases)
		fmt.Printf("| %s | %.2f | %.0f | %s | %.1f | %.1f | %.1f | %.1f%% | %.2f (%d/%d, %.2f-%.2f) | %d |\n",
			rec, med(func(r *loadtest.Report) float64 { return r.ReqPerSec }), med(func(r *loadtest.Report) float64 { return r.PromptTokPerSec }),
			ratio, med(func(r *loadtest.Report) float64 { return r.TTFTp50 }), med(func(r *loadtest.Report) float64 { return r.TTFTp90 }),
			med(func(r *loadtest.Report) float64 { return r.TTFTp99 }), 100*float64(cached)/float64(max(prompt, 1)),
			float64(correct)/float64(max(cases, 1)), correct, cases, lo, hi, failed)
	}
	return nil
}

// median is the middle value of x, the mean of the two middle ones for an
// even count, as Python's statistics.median.
func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
