package report

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// RAGPoint is one policy of the RAG chunk-reuse workload (`kvgo eval rag`,
// issue 12) as its charts draw it.
type RAGPoint struct {
	Name string
	// Speedup is full prefill's time to first token over the policy's;
	// Compute the share of full prefill's (token, layer) pairs computed.
	Speedup, Compute float64
	// KLD is the mean answer KL divergence from full prefill (nats) and
	// KLDSE its standard error; Accuracy with its 95% interval [Lo, Hi].
	KLD, KLDSE       float64
	Accuracy, Lo, Hi float64
}

// RAGCharts draws quality against time to first token, the trade the
// repair policies make: the answer's KL divergence from full prefill (log
// scale, ± its standard error) and the accuracy (95% Wilson interval),
// both against the TTFT speedup over full prefill. Without quality
// (random-weight models) it draws the speedup against the share of the
// prefill's work computed instead. One colour and glyph per policy; names
// are left to the legend (policy names are long, and the points few).
func RAGCharts(pts []RAGPoint, quality bool) ([]Chart, error) {
	var out []Chart
	add := func(title, note string, f figure) error {
		s, err := renderSVG(f, 820, 360)
		if err != nil {
			return err
		}
		out = append(out, Chart{Title: title, Note: note, SVG: s})
		return nil
	}
	if !quality {
		return out, add("TTFT speedup vs compute",
			"Time to first token of full prefill over the policy's, against the share of full prefill's (token, layer) pairs the policy computed (CacheBlend's check layers included). On a compute-bound model the points lie near speedup = 1 / compute.",
			ragFigure(pts, "share of full prefill's (token, layer) pairs computed", "TTFT speedup over full prefill",
				func(p RAGPoint) (x, y, lo, hi float64, ok bool) { return p.Compute, p.Speedup, 0, 0, true }, false))
	}
	if err := add("Answer KL divergence vs TTFT speedup",
		"Mean KL divergence of the answer's next-token distributions from full prefill's (teacher forced along full prefill's answer), ± its standard error, log scale, against the TTFT speedup over full prefill. Full prefill itself (speedup 1, divergence 0) and policies within 1e-6 of it (prefix caching computes the same values) are not drawn; down and right is better.",
		ragFigure(pts, "TTFT speedup over full prefill", "answer KL divergence (nats, log scale)",
			func(p RAGPoint) (x, y, lo, hi float64, ok bool) {
				return p.Speedup, p.KLD, min(p.KLDSE, p.KLD/2), p.KLDSE, p.KLD >= 1e-6
			}, true)); err != nil {
		return nil, err
	}
	return out, add("Accuracy vs TTFT speedup",
		"Share of questions whose answer holds the asked number, with its 95% Wilson interval, against the TTFT speedup over full prefill; up and right is better.",
		ragFigure(pts, "TTFT speedup over full prefill", "accuracy (%), 95% interval",
			func(p RAGPoint) (x, y, lo, hi float64, ok bool) {
				return p.Speedup, 100 * p.Accuracy, 100 * (p.Accuracy - p.Lo), 100 * (p.Hi - p.Accuracy), true
			}, false))
}

// ragFigure draws one point per policy from xy (its coordinates and error
// bar below and above y; ok false leaves it out), y on a log scale when
// logY.
func ragFigure(pts []RAGPoint, xl, yl string, xy func(RAGPoint) (x, y, lo, hi float64, ok bool), logY bool) figure {
	p := newPlot("", xl, yl)
	leg := newLegend()
	var names []string
	ylo, yhi, xhi := math.Inf(1), 0.0, 0.0
	for i, pt := range pts {
		x, y, lo, hi, ok := xy(pt)
		if !ok {
			continue
		}
		if lo > 0 || hi > 0 {
			addErrorBars(p, errPoints{XYs: plotter.XYs{{X: x, Y: y}}, lo: []float64{lo}, hi: []float64{hi}}, i)
		}
		addLinePoints(p, leg, plotter.XYs{{X: x, Y: y}}, pt.Name, i, false)
		names = append(names, pt.Name)
		ylo, yhi, xhi = min(ylo, y-lo), max(yhi, y+hi), max(xhi, x)
	}
	if len(names) == 0 {
		noData(p, "no policy to draw")
		return figure{p: p}
	}
	p.X.Min, p.X.Max = 0, max(1.05, xhi*1.1)
	if logY {
		ylo = max(ylo, 1e-9)
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
		p.Y.Min = math.Pow(10, math.Floor(math.Log10(ylo/2)))
		p.Y.Max = math.Pow(10, math.Ceil(math.Log10(yhi*1.5)))
	} else {
		p.Y.Min, p.Y.Max = 0, max(yhi*1.1, 1)
	}
	return figure{p: p, legend: leg, legendW: legendWidth(leg, names)}
}
