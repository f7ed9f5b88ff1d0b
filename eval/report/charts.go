package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart is one rendered figure of the HTML report.
type Chart struct {
	Title string
	// Note says how to read the chart and what it was computed from.
	Note string
	SVG  string
}

// Charts renders every figure of the report: accuracy against compression,
// KL divergence against compression, memory against context length, and a
// needle heatmap per recipe. A chart without data still renders (with a
// "no data" note in it), so a partial report has the same layout as a
// complete one.
func (r *Report) Charts() ([]Chart, error) {
	var out []Chart
	add := func(title, note string, p *plot.Plot, w, h vg.Length) error {
		s, err := renderSVG(p, w, h)
		if err != nil {
			return fmt.Errorf("chart %q: %w", title, err)
		}
		out = append(out, Chart{Title: title, Note: note, SVG: s})
		return nil
	}
	if err := add("Accuracy vs KV size",
		"Mean task score per recipe against its KV cache size as a fraction of a full f16 cache (end of each case, summed over cases). Recipes of one method (same evictor and codec, other parameters) share a line.",
		r.accuracyChart(), 460, 320); err != nil {
		return nil, err
	}
	if err := add("KL divergence vs KV size",
		"Mean (filled) and 99th-percentile (open) KL divergence of next-token distributions from the base recipe's, on the fidelity text, against the KV size in that run.",
		r.kldChart(), 460, 320); err != nil {
		return nil, err
	}
	if err := add("KV memory vs context length",
		"Mean KV cache size at the end of a case (solid) and at its peak (dashed, when it differs: an evictor stages the whole prompt before choosing), by context length.",
		r.memoryChart(), 460, 320); err != nil {
		return nil, err
	}
	for _, rc := range r.Recipes {
		if err := add("Needles: "+rc.Name,
			"Mean score by needle depth (rows: the relative position of the queried needle, to the nearest quarter; 0 = start of the haystack) and context length (columns); each cell shows the score in percent and the number of cases.",
			r.heatmap(rc.Name), 300, 240); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sans is gonum's embedded Liberation Sans at size pt.
func sans(pt vg.Length) font.Font {
	return font.Font{Typeface: "Liberation", Variant: "Sans", Size: pt}
}

// newPlot makes a plot with sans-serif text everywhere (gonum's default is
// a serif face) and a light grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(12)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(10)
		a.Tick.Label.Font = sans(9)
	}
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Legend.TextStyle.Font = sans(9)
	p.Legend.Top = true
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	p.Add(g)
	return p
}

// lineColor is series i's colour from the Okabe-Ito palette, which stays
// distinguishable for colour-blind readers.
func lineColor(i int) color.Color {
	cs := [...]color.RGBA{
		{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
		{230, 159, 0, 255}, {86, 180, 233, 255}, {0, 0, 0, 255}, {240, 228, 66, 255},
	}
	return cs[i%len(cs)]
}

func glyph(i int) draw.GlyphDrawer {
	gs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}
	return gs[i%len(gs)]
}

// noData writes a note in the middle of an empty plot.
func noData(p *plot.Plot, msg string) {
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.5, Y: 0.5}}, Labels: []string{msg}})
	if err == nil {
		l.TextStyle[0].Font = sans(11)
		l.TextStyle[0].XAlign, l.TextStyle[0].YAlign = draw.XCenter, draw.YCenter
		l.TextStyle[0].Color = color.Gray{Y: 110}
		p.Add(l)
	}
}

// methodGroups returns recipe indices grouped by method, in first-seen
// order.
func (r *Report) methodGroups(keep func(*Recipe) bool) (methods []string, groups map[string][]int) {
	groups = map[string][]int{}
	for i := range r.Recipes {
		rc := &r.Recipes[i]
		if !keep(rc) {
			continue
		}
		if _, ok := groups[rc.Method]; !ok {
			methods = append(methods, rc.Method)
		}
		groups[rc.Method] = append(groups[rc.Method], i)
	}
	return methods, groups
}

func (r *Report) accuracyChart() *plot.Plot {
	p := newPlot("", "KV size / full f16 cache", "accuracy (%)")
	methods, groups := r.methodGroups(func(rc *Recipe) bool { return rc.Cases > 0 })
	if len(methods) == 0 {
		noData(p, "no scored cases yet")
		return p
	}
	var labels plotter.XYLabels
	for mi, m := range methods {
		var pts plotter.XYs
		for _, i := range groups[m] {
			rc := &r.Recipes[i]
			pts = append(pts, plotter.XY{X: rc.Cost.Ratio, Y: 100 * rc.Accuracy})
			labels.XYs = append(labels.XYs, plotter.XY{X: rc.Cost.Ratio, Y: 100 * rc.Accuracy})
			labels.Labels = append(labels.Labels, rc.Name)
		}
		slices.SortFunc(pts, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		addLinePoints(p, pts, m, mi, false)
	}
	addPointLabels(p, labels)
	p.X.Min, p.X.Max = 0, max(1.05, maxX(labels.XYs)*1.05)
	p.Y.Min, p.Y.Max = 0, 105
	p.Legend.Top, p.Legend.Left = false, true
	p.Legend.YOffs = vg.Points(12)
	p.Legend.XOffs = vg.Points(8)
	return p
}

func (r *Report) kldChart() *plot.Plot {
	p := newPlot("", "KV size / full f16 cache (fidelity run)", "KL divergence (nats)")
	methods, groups := r.methodGroups(func(rc *Recipe) bool { return rc.Fidelity != nil })
	if len(methods) == 0 {
		noData(p, "no fidelity results")
		return p
	}
	var labels plotter.XYLabels
	top := 0.0
	for mi, m := range methods {
		var mean, p99 plotter.XYs
		for _, i := range groups[m] {
			rc := &r.Recipes[i]
			f := rc.Fidelity
			mean = append(mean, plotter.XY{X: f.Ratio, Y: f.MeanKLD})
			p99 = append(p99, plotter.XY{X: f.Ratio, Y: f.P99KLD})
			labels.XYs = append(labels.XYs, plotter.XY{X: f.Ratio, Y: f.MeanKLD})
			labels.Labels = append(labels.Labels, rc.Name)
			top = max(top, f.P99KLD)
		}
		slices.SortFunc(mean, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		addLinePoints(p, mean, m, mi, false)
		if s, err := plotter.NewScatter(p99); err == nil {
			s.GlyphStyle = draw.GlyphStyle{Color: lineColor(mi), Radius: vg.Points(3.5), Shape: draw.RingGlyph{}}
			p.Add(s)
		}
	}
	addPointLabels(p, labels)
	p.X.Min, p.X.Max = 0, max(1.05, maxX(labels.XYs)*1.05)
	p.Y.Min, p.Y.Max = 0, max(top*1.1, 1e-3)
	p.Y.Tick.Marker = plainTicks{}
	return p
}

func (r *Report) memoryChart() *plot.Plot {
	p := newPlot("", "prompt tokens (mean per context length)", "KV cache (KiB)")
	drawn := false
	for ri, rc := range r.Recipes {
		var end, peak plotter.XYs
		differs := false
		for _, l := range r.Lengths {
			if l.Recipe != rc.Name {
				continue
			}
			end = append(end, plotter.XY{X: l.PromptTokensMean, Y: l.KVBytesMean / 1024})
			peak = append(peak, plotter.XY{X: l.PromptTokensMean, Y: l.KVBytesPeakMean / 1024})
			if l.KVBytesPeakMean > 1.01*l.KVBytesMean {
				differs = true
			}
		}
		if len(end) == 0 {
			continue
		}
		drawn = true
		addLinePoints(p, end, rc.Name, ri, false)
		if differs {
			addLinePoints(p, peak, "", ri, true)
		}
	}
	if !drawn {
		noData(p, "no scored cases yet")
		return p
	}
	maxTok, maxKiB := 0.0, 0.0
	for _, l := range r.Lengths {
		maxTok, maxKiB = max(maxTok, l.PromptTokensMean), max(maxKiB, l.KVBytesPeakMean/1024, l.KVBytesMean/1024)
	}
	p.X.Min, p.X.Max = 0, maxTok*1.08
	p.Y.Min, p.Y.Max = 0, maxKiB*1.25 // headroom for the legend
	p.Y.Tick.Marker = plainTicks{}
	p.X.Tick.Marker = plainTicks{}
	p.Legend.Left = true
	return p
}

// addLinePoints draws pts as a line with markers (a lone point as a
// marker) in series i's colour and glyph; name "" leaves it out of the
// legend.
func addLinePoints(p *plot.Plot, pts plotter.XYs, name string, i int, dashed bool) {
	var thumbs []plot.Thumbnailer
	if len(pts) > 1 {
		if l, err := plotter.NewLine(pts); err == nil {
			l.Color, l.Width = lineColor(i), vg.Points(1.5)
			if dashed {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(l)
			thumbs = append(thumbs, l)
		}
	}
	if !dashed {
		if s, err := plotter.NewScatter(pts); err == nil {
			s.GlyphStyle = draw.GlyphStyle{Color: lineColor(i), Radius: vg.Points(3), Shape: glyph(i)}
			p.Add(s)
			thumbs = append(thumbs, s)
		}
	}
	if name != "" && len(thumbs) > 0 {
		p.Legend.Add(name, thumbs...)
	}
}

// addPointLabels writes each recipe's name next to its point.
func addPointLabels(p *plot.Plot, l plotter.XYLabels) {
	if len(l.XYs) == 0 {
		return
	}
	labels, err := plotter.NewLabels(l)
	if err != nil {
		return
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font = sans(7.5)
		labels.TextStyle[i].Color = color.Gray{Y: 70}
		labels.TextStyle[i].Rotation = math.Pi / 12
	}
	labels.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
	p.Add(labels)
}

func maxX(xy plotter.XYs) float64 {
	m := 0.0
	for _, p := range xy {
		m = max(m, p.X)
	}
	return m
}

// DepthBins is the number of rows of the needle heatmap. Rows are centred
// on the depths 0, 0.25, 0.5, 0.75 and 1 (the generator's defaults) and
// take every depth within 0.125 of their centre, so a generated needle
// whose position was rounded to a sentence boundary stays in its row and
// cases with arbitrary depths (the dev set's are uniform) still fit.
const DepthBins = 5

func depthBin(d float64) int {
	return max(0, min(DepthBins-1, int(math.Round(d*(DepthBins-1)))))
}

// grid is the heatmap's data: columns are context lengths, rows depth bins.
type grid struct {
	lengths []int
	z       [][]float64 // [row][col], NaN where there is no case
	n       [][]int
}

func (g *grid) Dims() (c, r int)   { return len(g.lengths), DepthBins }
func (g *grid) Z(c, r int) float64 { return g.z[r][c] }
func (g *grid) X(c int) float64    { return float64(c) }
func (g *grid) Y(r int) float64    { return float64(r) }

func (r *Report) heatmap(recipe string) *plot.Plot {
	p := newPlot("", "context length (tokens)", "needle depth")
	g := &grid{}
	for _, c := range r.Cases {
		if c.Recipe == recipe && c.Depth != nil && !slices.Contains(g.lengths, c.ContextTokens) {
			g.lengths = append(g.lengths, c.ContextTokens)
		}
	}
	if len(g.lengths) == 0 {
		noData(p, "no cases with a needle depth")
		return p
	}
	slices.Sort(g.lengths)
	g.z = make([][]float64, DepthBins)
	g.n = make([][]int, DepthBins)
	for i := range g.z {
		g.z[i] = make([]float64, len(g.lengths))
		g.n[i] = make([]int, len(g.lengths))
	}
	for _, c := range r.Cases {
		if c.Recipe != recipe || c.Depth == nil {
			continue
		}
		col := slices.Index(g.lengths, c.ContextTokens)
		row := depthBin(*c.Depth)
		g.z[row][col] += c.Score
		g.n[row][col]++
	}
	var labels plotter.XYLabels
	for row := range g.z {
		for col := range g.z[row] {
			if g.n[row][col] == 0 {
				g.z[row][col] = math.NaN()
				continue
			}
			g.z[row][col] /= float64(g.n[row][col])
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(col), Y: float64(row)})
			labels.Labels = append(labels.Labels, fmt.Sprintf("%.0f%% /%d", 100*g.z[row][col], g.n[row][col]))
		}
	}
	hm := plotter.NewHeatMap(g, scorePalette{})
	hm.Min, hm.Max = 0, 1
	hm.NaN = color.Gray{Y: 235}
	p.Add(hm)
	if l, err := plotter.NewLabels(labels); err == nil {
		for i := range l.TextStyle {
			l.TextStyle[i].Font = sans(8)
			l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
		}
		p.Add(l)
	}
	p.X.Tick.Marker = fixedTicks(len(g.lengths), func(i int) string { return fmt.Sprint(g.lengths[i]) })
	p.Y.Tick.Marker = fixedTicks(DepthBins, func(i int) string {
		return fmt.Sprintf("%g", float64(i)/(DepthBins-1))
	})
	p.X.Min, p.X.Max = -0.5, float64(len(g.lengths))-0.5
	p.Y.Min, p.Y.Max = -0.5, DepthBins-0.5
	return p
}

// plainTicks label 4 to 8 evenly spaced values at a round step (1, 2,
// 2.5 or 5 times a power of ten) without trailing zeros: gonum's default
// can leave a 0..2500 axis with two labels.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', 4, 64)}}
	}
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if span/(step*m) <= 7 {
			step *= m
			break
		}
	}
	dec := max(0, 1-int(math.Floor(math.Log10(step)))) // enough for 2.5×10^k
	var ts []plot.Tick
	for k := math.Ceil(lo / step); k*step <= hi+step*1e-9; k++ {
		x := k * step
		label := strconv.FormatFloat(x, 'f', dec, 64)
		if strings.Contains(label, ".") {
			label = strings.TrimRight(strings.TrimRight(label, "0"), ".")
		}
		ts = append(ts, plot.Tick{Value: x, Label: label})
	}
	return ts
}

func fixedTicks(n int, label func(int) string) plot.Ticker {
	var ts []plot.Tick
	for i := 0; i < n; i++ {
		ts = append(ts, plot.Tick{Value: float64(i), Label: label(i)})
	}
	return plot.ConstantTicks(ts)
}

// scorePalette runs from red (0) through yellow to green (1), the reading
// most people expect for a score.
type scorePalette struct{}

func (scorePalette) Colors() []color.Color {
	stops := []color.RGBA{{215, 48, 39, 255}, {254, 224, 139, 255}, {26, 152, 80, 255}}
	const n = 64
	out := make([]color.Color, n)
	for i := range out {
		t := float64(i) / (n - 1) * float64(len(stops)-1)
		k := min(int(t), len(stops)-2)
		f := t - float64(k)
		a, b := stops[k], stops[k+1]
		mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + f*(float64(y)-float64(x)))) }
		out[i] = color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 255}
	}
	return out
}

// renderSVG draws p into an SVG fragment that can be inlined in HTML: the
// XML prologue is dropped and the fixed size becomes a viewBox that scales
// with the page.
func renderSVG(p *plot.Plot, w, h vg.Length) (s string, err error) {
	defer func() { // gonum panics on degenerate ranges; a report must not
		if e := recover(); e != nil {
			s, err = "", fmt.Errorf("drawing failed: %v", e)
		}
	}()
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	out := buf.String()
	if i := strings.Index(out, "<svg"); i >= 0 {
		out = out[i:]
	}
	out = strings.Replace(out, fmt.Sprintf(`width="%gpt" height="%gpt"`, float64(w), float64(h)),
		fmt.Sprintf(`width="%g" height="%g" role="img"`, float64(w)*4/3, float64(h)*4/3), 1)
	return out, nil
}
