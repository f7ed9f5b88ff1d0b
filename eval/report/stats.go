package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson is the 95% Wilson score interval of x successes in n trials. A
// case with partial credit counts its score as a fraction of a success,
// which keeps the interval's width that of n cases. n == 0 gives [0, 1].
func Wilson(x float64, n int) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	fn := float64(n)
	p := min(max(x/fn, 0), 1)
	z2 := z95 * z95
	d := 1 + z2/fn
	c := (p + z2/(2*fn)) / d
	h := z95 * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn)) / d
	return max(0, c-h), min(1, c+h)
}

// Tie reports whether two accuracies cannot be told apart: their 95%
// intervals overlap. Every generated sentence that compares recipes uses
// it, so a difference inside the intervals is never read as a ranking.
func Tie(aLo, aHi, bLo, bHi float64) bool { return aLo <= bHi && bLo <= aHi }

// Stratum is the accuracy of a recipe's cases of one kind: the needle in
// the recipe's always-kept window, or outside it at one needle depth.
type Stratum struct {
	// Name is "window" (the needle sat in the tokens the recipe keeps by
	// rule, kv.Protector), "depth D" (outside the window, depth to the
	// nearest quarter as in the heatmap) or "no depth".
	Name  string `json:"stratum"`
	Cases int    `json:"cases"`
	// Score is the summed score of the cases (answered cases, when every
	// case scores 0 or 1).
	Score    float64 `json:"score"`
	Accuracy float64 `json:"accuracy"`
	Low      float64 `json:"accuracy_low"`
	High     float64 `json:"accuracy_high"`
}

func (s *Stratum) add(score float64) {
	s.Cases++
	s.Score += score
}

func (s *Stratum) finish() {
	if s.Cases > 0 {
		s.Accuracy = s.Score / float64(s.Cases)
	}
	s.Low, s.High = Wilson(s.Score, s.Cases)
}

// StratumWindow names the stratum of cases whose needle sat in the
// recipe's always-kept window.
const StratumWindow = "window"

// stratumOf is the stratum of a case.
func stratumOf(c *CaseResult) string {
	switch {
	case c.InWindow != nil && *c.InWindow:
		return StratumWindow
	case c.Depth == nil:
		return "no depth"
	}
	return fmt.Sprintf("depth %g", float64(depthBin(*c.Depth))/(DepthBins-1))
}

// strataOrder sorts strata: the window first, then by depth.
func strataOrder(a, b Stratum) int {
	rank := func(s string) float64 {
		switch s {
		case StratumWindow:
			return -1
		case "no depth":
			return 2
		}
		var d float64
		fmt.Sscanf(s, "depth %g", &d)
		return d
	}
	return cmp.Compare(rank(a.Name), rank(b.Name))
}

// Interval formats an accuracy with its 95% interval, "40% [27–55]".
func Interval(acc, lo, hi float64) string {
	return fmt.Sprintf("%.0f%% [%.0f–%.0f]", 100*acc, 100*lo, 100*hi)
}

// Readings are the report's generated sentences: the recipes ranked by
// accuracy, neighbours that tie (overlapping 95% intervals) joined by "≈",
// each
// recipe against the base, and how many needles sat in each evicting
// recipe's always-kept window with its accuracy outside it.
func (r *Report) Readings() []string {
	var scored []*Recipe
	for i := range r.Recipes {
		if r.Recipes[i].Cases > 0 {
			scored = append(scored, &r.Recipes[i])
		}
	}
	if len(scored) == 0 {
		return nil
	}
	var out []string
	// Ranking: each symbol compares a recipe with the next one down,
	// "≈" when their intervals overlap, ">" when they do not, so no ">" is
	// printed between two recipes that tie.
	ranked := slices.Clone(scored)
	slices.SortStableFunc(ranked, func(a, b *Recipe) int { return cmp.Compare(b.Accuracy, a.Accuracy) })
	var sb strings.Builder
	for i, rc := range ranked {
		if i > 0 {
			prev := ranked[i-1]
			if Tie(prev.AccuracyLow, prev.AccuracyHigh, rc.AccuracyLow, rc.AccuracyHigh) {
				sb.WriteString(" ≈ ")
			} else {
				sb.WriteString(" > ")
			}
		}
		fmt.Fprintf(&sb, "%s %.0f%%", rc.Name, 100*rc.Accuracy)
	}
	out = append(out, "Ranking by accuracy, each recipe against the next: ≈ a tie (their 95% intervals overlap), > a difference: "+sb.String()+".")
	base := r.Recipe(r.Setup.Base)
	if base == nil || base.Cases == 0 {
		base = scored[0]
	}
	for _, rc := range scored {
		if rc == base {
			continue
		}
		verdict := "ties"
		switch {
		case Tie(rc.AccuracyLow, rc.AccuracyHigh, base.AccuracyLow, base.AccuracyHigh):
		case rc.Accuracy < base.Accuracy:
			verdict = "is below"
		default:
			verdict = "is above"
		}
		out = append(out, fmt.Sprintf("%s %s %s: %s of %d cases against %s of %d.", rc.Name, verdict, base.Name,
			Interval(rc.Accuracy, rc.AccuracyLow, rc.AccuracyHigh), rc.Cases, Interval(base.Accuracy, base.AccuracyLow, base.AccuracyHigh), base.Cases))
	}
	for _, rc := range scored {
		o := rc.OutsideWindow
		if o == nil {
			continue
		}
		in := rc.Cases - o.Cases
		if in == 0 {
			continue
		}
		var w *Stratum
		for i := range rc.Strata {
			if rc.Strata[i].Name == StratumWindow {
				w = &rc.Strata[i]
			}
		}
		answered := 0.0
		if w != nil {
			answered = w.Score
		}
		out = append(out, fmt.Sprintf("%s: %d of %d needles sat in its always-kept window (%s answered); outside it %s of %d cases.",
			rc.Name, in, rc.Cases, trimFloat(answered), Interval(o.Accuracy, o.Low, o.High), o.Cases))
	}
	return out
}

// trimFloat prints a count that may carry partial credit: "3", "2.5".
func trimFloat(x float64) string { return strings.TrimSuffix(fmt.Sprintf("%.2f", x), ".00") }
