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
	"gonum.org/v1/plot/text"
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

// Charts renders every figure of the report: accuracy against KV bytes
// with 95% intervals, KL divergence against KV bytes on a log scale, memory
// against context length (end and peak), speed, and a needle heatmap per
// recipe. A chart without data still renders (with a "no data" note in
// it), so a partial report has the same layout as a complete one. Legends
// sit in a column right of the plot and point labels are placed where
// they overlap no other text or marker (or left out), so no two texts of
// a chart overlap (TestReportInChromium checks it in a browser).
func (r *Report) Charts() ([]Chart, error) {
	var out []Chart
	add := func(title, note string, f figure, w, h vg.Length) error {
		s, err := renderSVG(f, w, h)
		if err != nil {
			return fmt.Errorf("chart %q: %w", title, err)
		}
		out = append(out, Chart{Title: title, Note: note, SVG: s})
		return nil
	}
	n := 0
	for _, rc := range r.Recipes {
		n = max(n, rc.Cases)
	}
	if err := add("Accuracy vs KV bytes",
		fmt.Sprintf("Mean task score per recipe (up to %d cases each) with its 95%% Wilson interval, against its KV cache size as a fraction of a full f16 cache (end of each case, summed over cases). Recipes of one method (other budgets, or the targets of --equal-kv) share a line: accuracy against bytes.", n),
		r.accuracyChart(), 600, 340); err != nil {
		return nil, err
	}
	if err := add("KL divergence vs KV bytes",
		"Mean KL divergence of next-token distributions from the base recipe's (filled, ± its standard error across chunks) and its 99th percentile (open rings), on the fidelity text, against the KV size in that run; log scale. The base itself (0) is not drawn.",
		r.kldChart(), 600, 340); err != nil {
		return nil, err
	}
	if err := add("KV memory vs context length",
		"Mean KV cache size at the end of a case (solid) and at its peak (dashed, when it differs: an evictor holds the whole prompt before choosing), by context length; one colour per recipe.",
		r.memoryChart(), 600, 340); err != nil {
		return nil, err
	}
	sf, sh := r.speedChart()
	if err := add("Speed",
		"Prefill and decode tokens per second per recipe, from the same runs (interleaved case by case, so background load falls on every recipe alike).",
		sf, 600, sh); err != nil {
		return nil, err
	}
	for _, rc := range r.Recipes {
		if err := add("Needles: "+rc.Name,
			"Mean score by needle depth (rows: the relative position of the queried needle, to the nearest quarter; 0 = start of the haystack) and context length (columns); each cell shows the score in percent and the number of cases.",
			figure{p: r.heatmap(rc.Name)}, 300, 240); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// figure is a plot and, optionally, a legend drawn in a column of legendW
// right of it, where it cannot cover data or labels.
type figure struct {
	p       *plot.Plot
	legend  *plot.Legend
	legendW vg.Length
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

// newLegend is a legend for the column right of a plot.
func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = sans(9)
	l.Top, l.Left = true, true
	l.Padding = vg.Points(2)
	return &l
}

// legendWidth is the column a legend of these entries needs.
func legendWidth(l *plot.Legend, names []string) vg.Length {
	w := vg.Length(0)
	for _, n := range names {
		w = max(w, l.TextStyle.Width(n))
	}
	return min(w+l.ThumbnailWidth+vg.Points(16), 240)
}

// palette holds distinct colours: the Okabe-Ito set (distinguishable for
// colour-blind readers) without its yellow, then Paul Tol's muted and dark
// colours. With a glyph per series, 20 series stay distinct.
var palette = [...]color.RGBA{
	{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{230, 159, 0, 255}, {86, 180, 233, 255}, {0, 0, 0, 255}, {136, 34, 85, 255},
	{153, 153, 51, 255}, {51, 34, 136, 255}, {68, 170, 153, 255}, {170, 68, 153, 255},
	{102, 51, 0, 255}, {221, 204, 119, 255}, {119, 119, 119, 255}, {204, 102, 119, 255},
	{17, 119, 51, 255}, {136, 204, 238, 255}, {90, 30, 180, 255}, {160, 0, 0, 255},
}

// lineColor is series i's colour.
func lineColor(i int) color.Color { return palette[i%len(palette)] }

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

// errPoints are points with asymmetric vertical errors, for error bars.
type errPoints struct {
	plotter.XYs
	lo, hi []float64 // distances below and above each point
}

func (e errPoints) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

// addErrorBars draws vertical error bars in series i's colour.
func addErrorBars(p *plot.Plot, e errPoints, i int) {
	if len(e.XYs) == 0 {
		return
	}
	if b, err := plotter.NewYErrorBars(e); err == nil {
		b.LineStyle.Color, b.LineStyle.Width = lineColor(i), vg.Points(1)
		b.CapWidth = vg.Points(5)
		p.Add(b)
	}
}

func (r *Report) accuracyChart() figure {
	p := newPlot("", "KV size / full f16 cache", "accuracy (%), 95% interval")
	methods, groups := r.methodGroups(func(rc *Recipe) bool { return rc.Cases > 0 })
	if len(methods) == 0 {
		noData(p, "no scored cases yet")
		return figure{p: p}
	}
	leg := newLegend()
	lab := &labeler{style: labelStyle()}
	var names []string
	maxRatio := 0.0
	for mi, m := range methods {
		var pts plotter.XYs
		var eb errPoints
		for _, i := range groups[m] {
			rc := &r.Recipes[i]
			x, y := rc.Cost.Ratio, 100*rc.Accuracy
			pts = append(pts, plotter.XY{X: x, Y: y})
			eb.XYs = append(eb.XYs, plotter.XY{X: x, Y: y})
			eb.lo = append(eb.lo, y-100*rc.AccuracyLow)
			eb.hi = append(eb.hi, 100*rc.AccuracyHigh-y)
			lab.marks = append(lab.marks, plotter.XY{X: x, Y: y})
			if len(groups[m]) > 1 {
				lab.add(x, y, rc.Name)
			}
			maxRatio = max(maxRatio, x)
		}
		slices.SortFunc(pts, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		addErrorBars(p, eb, mi)
		name := fmt.Sprintf("%s (%d)", m, len(groups[m]))
		if len(groups[m]) == 1 {
			name = r.Recipes[groups[m][0]].Name
		}
		addLinePoints(p, leg, pts, name, mi, false)
		names = append(names, name)
	}
	p.Add(lab)
	p.X.Min, p.X.Max = 0, max(1.05, maxRatio*1.05)
	p.Y.Min, p.Y.Max = 0, 105
	return figure{p: p, legend: leg, legendW: legendWidth(leg, names)}
}

func (r *Report) kldChart() figure {
	p := newPlot("", "KV size / full f16 cache (fidelity run)", "KL divergence (nats, log scale)")
	methods, groups := r.methodGroups(func(rc *Recipe) bool { return rc.Fidelity != nil && rc.Fidelity.MeanKLD > 0 })
	if len(methods) == 0 {
		noData(p, "no fidelity results")
		return figure{p: p}
	}
	leg := newLegend()
	lab := &labeler{style: labelStyle()}
	var names []string
	lo, hi, maxRatio := math.Inf(1), 0.0, 0.0
	for mi, m := range methods {
		var mean, p99 plotter.XYs
		var eb errPoints
		for _, i := range groups[m] {
			rc := &r.Recipes[i]
			f := rc.Fidelity
			mean = append(mean, plotter.XY{X: f.Ratio, Y: f.MeanKLD})
			lo, hi, maxRatio = min(lo, f.MeanKLD), max(hi, f.MeanKLD), max(maxRatio, f.Ratio)
			if f.P99KLD > 0 {
				p99 = append(p99, plotter.XY{X: f.Ratio, Y: f.P99KLD})
				lab.marks = append(lab.marks, plotter.XY{X: f.Ratio, Y: f.P99KLD})
				hi = max(hi, f.P99KLD)
			}
			if f.MeanKLDSE > 0 {
				eb.XYs = append(eb.XYs, plotter.XY{X: f.Ratio, Y: f.MeanKLD})
				eb.lo = append(eb.lo, min(f.MeanKLDSE, f.MeanKLD/2)) // a log axis has no 0
				eb.hi = append(eb.hi, f.MeanKLDSE)
				hi = max(hi, f.MeanKLD+f.MeanKLDSE)
			}
			lab.marks = append(lab.marks, plotter.XY{X: f.Ratio, Y: f.MeanKLD})
			if len(groups[m]) > 1 {
				lab.add(f.Ratio, f.MeanKLD, rc.Name)
			}
		}
		slices.SortFunc(mean, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		addErrorBars(p, eb, mi)
		name := fmt.Sprintf("%s (%d)", m, len(groups[m]))
		if len(groups[m]) == 1 {
			name = r.Recipes[groups[m][0]].Name
		}
		addLinePoints(p, leg, mean, name, mi, false)
		names = append(names, name)
		if s, err := plotter.NewScatter(p99); err == nil && len(p99) > 0 {
			s.GlyphStyle = draw.GlyphStyle{Color: lineColor(mi), Radius: vg.Points(3.5), Shape: draw.RingGlyph{}}
			p.Add(s)
		}
	}
	ring, _ := plotter.NewScatter(plotter.XYs{{}})
	ring.GlyphStyle = draw.GlyphStyle{Color: color.Gray{Y: 90}, Radius: vg.Points(3.5), Shape: draw.RingGlyph{}}
	leg.Add("open ring: p99", ring)
	names = append(names, "open ring: p99")
	p.Add(lab)
	p.X.Min, p.X.Max = 0, max(1.05, maxRatio*1.05)
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo/2)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi*1.5)))
	return figure{p: p, legend: leg, legendW: legendWidth(leg, names)}
}

func (r *Report) memoryChart() figure {
	p := newPlot("", "prompt tokens (mean per context length)", "KV cache (KiB)")
	leg := newLegend()
	var names []string
	drawn, anyPeak := false, false
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
		addLinePoints(p, leg, end, rc.Name, ri, false)
		names = append(names, rc.Name)
		if differs {
			addLinePoints(p, nil, peak, "", ri, true)
			anyPeak = true
		}
	}
	if !drawn {
		noData(p, "no scored cases yet")
		return figure{p: p}
	}
	if anyPeak {
		if l, err := plotter.NewLine(plotter.XYs{{}, {X: 1}}); err == nil {
			l.Color, l.Width = color.Gray{Y: 60}, vg.Points(1.5)
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			const peakName = "dashed: peak (prompt held)"
			leg.Add(peakName, l)
			names = append(names, peakName)
		}
	}
	maxTok, maxKiB := 0.0, 0.0
	for _, l := range r.Lengths {
		maxTok, maxKiB = max(maxTok, l.PromptTokensMean), max(maxKiB, l.KVBytesPeakMean/1024, l.KVBytesMean/1024)
	}
	p.X.Min, p.X.Max = 0, maxTok*1.05
	p.Y.Min, p.Y.Max = 0, maxKiB*1.05
	p.Y.Tick.Marker = plainTicks{}
	p.X.Tick.Marker = plainTicks{}
	return figure{p: p, legend: leg, legendW: legendWidth(leg, names)}
}

// speedChart draws prefill and decode tokens per second as horizontal
// bars, one pair per recipe, the first recipe on top; it returns the
// height the chart needs.
func (r *Report) speedChart() (figure, vg.Length) {
	p := newPlot("", "tokens per second", "")
	var names []string
	var pre, dec plotter.Values
	for i := len(r.Recipes) - 1; i >= 0; i-- {
		rc := &r.Recipes[i]
		if rc.Cases == 0 {
			continue
		}
		names = append(names, rc.Name)
		pre = append(pre, rc.Cost.PrefillTokPerSec)
		dec = append(dec, rc.Cost.DecodeTokPerSec)
	}
	h := vg.Length(70 + 26*max(len(names), 2))
	if len(names) == 0 {
		noData(p, "no scored cases yet")
		return figure{p: p}, h
	}
	leg := newLegend()
	const bw = 8
	for k, v := range []plotter.Values{pre, dec} {
		b, err := plotter.NewBarChart(v, vg.Points(bw))
		if err != nil {
			continue
		}
		b.Horizontal = true
		b.Color = lineColor(k)
		b.LineStyle.Width = 0
		b.Offset = vg.Points(bw/2 - bw*float64(k))
		p.Add(b)
		leg.Add([]string{"prefill", "decode"}[k], b)
	}
	p.NominalY(names...)
	p.Y.Tick.Label.Font = sans(8.5)
	p.X.Min = 0
	p.X.Tick.Marker = plainTicks{}
	return figure{p: p, legend: leg, legendW: legendWidth(leg, []string{"prefill", "decode"})}, h
}

// addLinePoints draws pts as a line with markers (a lone point as a
// marker) in series i's colour and glyph, dashed without markers when
// dashed; name "" or a nil legend leaves it out of the legend.
func addLinePoints(p *plot.Plot, leg *plot.Legend, pts plotter.XYs, name string, i int, dashed bool) {
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
	if leg != nil && name != "" && len(thumbs) > 0 {
		leg.Add(name, thumbs...)
	}
}

func labelStyle() text.Style {
	return text.Style{Font: sans(7.5), Color: color.Gray{Y: 60}, Handler: plot.DefaultTextHandler}
}

// labeler writes a text next to each of its points where it overlaps no
// text placed before, no marker and nothing outside the plot area: it
// tries eight directions at growing distances and leaves out a label that
// fits nowhere (the legend and the tables still name every point).
type labeler struct {
	style text.Style
	pts   []labelPoint
	marks plotter.XYs // markers to keep clear of
}

type labelPoint struct {
	x, y float64
	text string
}

func (l *labeler) add(x, y float64, text string) { l.pts = append(l.pts, labelPoint{x, y, text}) }

// Plot implements plot.Plotter.
func (l *labeler) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	const mark = 4.5 // points: a marker's half size, with room
	var taken []vg.Rectangle
	for _, m := range l.marks {
		x, y := trX(m.X), trY(m.Y)
		taken = append(taken, vg.Rectangle{Min: vg.Point{X: x - mark, Y: y - mark}, Max: vg.Point{X: x + mark, Y: y + mark}})
	}
	sty := l.style
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YBottom
	dirs := [][2]float64{{1, 0}, {1, 1}, {1, -1}, {-1, 0}, {-1, 1}, {-1, -1}, {0, 1}, {0, -1}}
	for _, lp := range l.pts {
		w, h := sty.Width(lp.text), sty.Height(lp.text)
		x0, y0 := trX(lp.x), trY(lp.y)
		placed := false
		for _, d := range []vg.Length{6, 12, 20, 30, 42} {
			for _, dir := range dirs {
				var r vg.Rectangle
				switch {
				case dir[0] > 0:
					r.Min.X = x0 + d
				case dir[0] < 0:
					r.Min.X = x0 - d - w
				default:
					r.Min.X = x0 - w/2
				}
				switch {
				case dir[1] > 0:
					r.Min.Y = y0 + d/2
				case dir[1] < 0:
					r.Min.Y = y0 - d/2 - h
				default:
					r.Min.Y = y0 - h/2
				}
				r.Max = vg.Point{X: r.Min.X + w, Y: r.Min.Y + h}
				if !inside(r, c.Rectangle) || overlapsAny(r, taken) {
					continue
				}
				if d > 6 { // a leader from the point to a label set apart
					c.StrokeLine2(draw.LineStyle{Color: color.Gray{Y: 170}, Width: vg.Points(0.5)}, x0, y0, clamp(x0, r.Min.X, r.Max.X), clamp(y0, r.Min.Y, r.Max.Y))
				}
				c.FillText(sty, r.Min, lp.text)
				taken = append(taken, r)
				placed = true
				break
			}
			if placed {
				break
			}
		}
	}
}

func clamp(x, lo, hi vg.Length) vg.Length { return max(lo, min(hi, x)) }

func inside(r, bounds vg.Rectangle) bool {
	return r.Min.X >= bounds.Min.X && r.Min.Y >= bounds.Min.Y && r.Max.X <= bounds.Max.X && r.Max.Y <= bounds.Max.Y
}

// overlapsAny reports whether r comes within a point of any of rs.
func overlapsAny(r vg.Rectangle, rs []vg.Rectangle) bool {
	const pad = 1.5
	for _, o := range rs {
		if r.Min.X < o.Max.X+pad && o.Min.X < r.Max.X+pad && r.Min.Y < o.Max.Y+pad && o.Min.Y < r.Max.Y+pad {
			return true
		}
	}
	return false
}

// logTicks label the powers of ten of a log axis (gonum's LogTicks also
// labels 2 and 5 times them, which crowd a short axis) and mark the rest
// of each decade unlabelled.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for k := 1; k < 10; k++ {
			v := float64(k) * base
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if k == 1 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
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

// renderSVG draws f into an SVG fragment that can be inlined in HTML: the
// XML prologue is dropped and the fixed size becomes a viewBox that scales
// with the page.
func renderSVG(f figure, w, h vg.Length) (s string, err error) {
	defer func() { // gonum panics on degenerate ranges; a report must not
		if e := recover(); e != nil {
			s, err = "", fmt.Errorf("drawing failed: %v", e)
		}
	}()
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	if f.legend != nil {
		f.p.Draw(draw.Crop(dc, 0, -f.legendW, 0, 0))
		col := draw.Crop(dc, w-f.legendW+vg.Points(8), 0, 0, -vg.Points(8))
		f.legend.Draw(col)
	} else {
		f.p.Draw(dc)
	}
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
