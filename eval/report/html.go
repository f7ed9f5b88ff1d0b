package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// WriteHTML writes the report as one self-contained page: styles inline,
// charts as inline SVG, no script and nothing fetched, so it opens from a
// file, a CI artifact or an e-mail the same way.
func (r *Report) WriteHTML(w io.Writer) error {
	charts, err := r.Charts()
	if err != nil {
		return err
	}
	type chartView struct {
		Title, Note string
		SVG         template.HTML
		Small       bool
	}
	var views []chartView
	for _, c := range charts {
		views = append(views, chartView{Title: c.Title, Note: c.Note, SVG: template.HTML(c.SVG), Small: strings.HasPrefix(c.Title, "Needles: ")})
	}
	cols := r.columns()
	type row struct {
		Name  string
		Cells []string
	}
	var matrix []row
	for _, rc := range r.Recipes {
		rw := row{Name: rc.Name}
		for _, c := range cols {
			s := "–"
			if cell := r.cell(rc.Name, c.task, c.n); cell != nil {
				s = fmt.Sprintf("%s /%d", Interval(cell.Accuracy, cell.AccuracyLow, cell.AccuracyHigh), cell.Cases)
			}
			rw.Cells = append(rw.Cells, s)
		}
		matrix = append(matrix, rw)
	}
	var colNames []string
	for _, c := range cols {
		colNames = append(colNames, c.label())
	}
	strata := r.strataNames()
	var strataRows []row
	for _, rc := range r.Recipes {
		if rc.Cases == 0 {
			continue
		}
		rw := row{Name: rc.Name}
		for _, n := range strata {
			s := "–"
			for _, st := range rc.Strata {
				if st.Name == n {
					s = fmt.Sprintf("%s/%d · %s", trimFloat(st.Score), st.Cases, Interval(st.Accuracy, st.Low, st.High))
				}
			}
			rw.Cells = append(rw.Cells, s)
		}
		strataRows = append(strataRows, rw)
	}
	return page.Execute(w, map[string]any{
		"R": r, "Charts": views, "Cols": colNames, "Matrix": matrix, "Strata": strata, "StrataRows": strataRows,
		"Readings": r.Readings(), "Legend": TableLegend,
	})
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":    func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"f3":     func(x float64) string { return fmt.Sprintf("%.3f", x) },
	"f5":     func(x float64) string { return fmt.Sprintf("%.5f", x) },
	"f0":     func(x float64) string { return fmt.Sprintf("%.0f", x) },
	"bytes":  Bytes,
	"ibytes": func(x int64) string { return Bytes(float64(x)) },
	"dppl":   func(f *Fidelity) string { return pmSigned(f.PPL-f.BasePPL, f.DeltaPPLSE, 4) },
	"pm":     pm,
	"acc":    func(rc Recipe) string { return Interval(rc.Accuracy, rc.AccuracyLow, rc.AccuracyHigh) },
	"outside": func(o *Stratum) string {
		if o == nil {
			return "–"
		}
		return fmt.Sprintf("%s /%d", Interval(o.Accuracy, o.Low, o.High), o.Cases)
	},
	"depth": func(d *float64) string {
		if d == nil {
			return "–"
		}
		return fmt.Sprintf("%.2f", *d)
	},
	"join": strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kvgo eval: {{.R.Model.Source}}</title>
<style>
body{font-family:"Liberation Sans",Arial,Helvetica,sans-serif;margin:24px auto;max-width:1240px;padding:0 16px;color:#1a1a1a;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px;line-height:1.5}
.warn{background:#fff4e0;border:1px solid #f0c36d;padding:8px 12px;border-radius:4px;font-size:14px;margin:12px 0}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{padding:4px 9px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f5f5f5;font-weight:600}
td:first-child,th:first-child{text-align:left}
td.wrap{white-space:normal;text-align:left;max-width:360px;font-family:monospace}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
.charts.small{grid-template-columns:repeat(auto-fill,minmax(340px,1fr))}
figure{margin:0;border:1px solid #e2e2e2;border-radius:4px;padding:8px;background:#fff}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#444;margin-top:4px;max-width:600px}
figcaption b{display:block;font-size:14px;color:#111;margin-bottom:2px}
details{margin:8px 0;font-size:13px}
.note{font-size:12px;color:#555;max-width:900px}
.scroll{overflow-x:auto}
.readings{font-size:13px;max-width:1000px;line-height:1.45}
</style>
</head>
<body>
<h1>kvgo eval — what each KV method costs</h1>
<div class="meta">
model <b>{{.R.Model.Source}}</b> ({{.R.Model.Params}} parameters, {{.R.Model.Layers}} layers, {{.R.Model.KVHeads}} KV heads × {{.R.Model.HeadDim}}, context {{.R.Model.Context}}) ·
{{.R.Model.Threads}} threads · {{.R.Created.Format "2006-01-02 15:04 UTC"}} · {{printf "%.1f" .R.Seconds}} s ·
schema {{.R.Schema}}<br>
tasks: {{.R.Setup.Tasks}}{{if eq .R.Setup.Tasks "built-in"}} ({{join .R.Setup.Suite ", "}}; seed {{.R.Setup.Seed}}; haystack {{.R.Setup.Haystack}}){{end}} ·
fidelity: {{if .R.Setup.FidelityChunks}}{{.R.Setup.FidelityText}}, {{.R.Setup.FidelityChunks}} chunk(s) of {{.R.Setup.FidelityCtx}} tokens against {{.R.Setup.Base}}{{else}}off{{end}}
</div>
{{if not .R.Complete}}<div class="warn">
{{if .R.Stopped}}This run stopped early ({{.R.Stopped}}); the report holds what finished.{{end}}
{{if .R.Errors}}{{len .R.Errors}} error(s) — see <a href="#errors">Errors</a>; everything else ran.{{end}}
</div>{{end}}

<h2>Summary</h2>
<div class="scroll"><table>
<tr><th>recipe</th><th>cases</th><th>accuracy [95%]</th><th>outside window</th><th>KV / full</th><th>peak / full</th><th>KV mean</th><th>KV peak</th><th>prefill tok/s</th><th>decode tok/s</th><th>TTFT ms</th><th>mean KLD</th><th>p99 KLD</th><th>top-1</th><th>ΔPPL</th></tr>
{{range .R.Recipes}}<tr><td title="{{.Recipe}}">{{.Name}}</td>
{{if and .Error (not .Cases)}}<td colspan="14" class="wrap">failed: {{.Error}}</td>{{else}}
<td>{{.Cases}}</td><td>{{acc .}}</td><td>{{outside .OutsideWindow}}</td><td>{{f3 .Cost.Ratio}}</td><td>{{f3 .Cost.PeakRatio}}</td><td>{{bytes .Cost.KVBytesMean}}</td><td>{{ibytes .Cost.KVBytesPeakMax}}</td>
<td>{{f0 .Cost.PrefillTokPerSec}}</td><td>{{f0 .Cost.DecodeTokPerSec}}</td><td>{{f0 .Cost.TTFTMsMean}}</td>
{{with .Fidelity}}<td>{{pm .MeanKLD .MeanKLDSE 5}}</td><td>{{f5 .P99KLD}}</td><td>{{pm .Top1 .Top1SE 4}}</td><td>{{dppl .}}</td>{{else}}<td>–</td><td>–</td><td>–</td><td>–</td>{{end}}
{{end}}</tr>
{{end}}</table></div>
<p class="note">{{.Legend}}.</p>
{{if .Readings}}<ul class="readings">{{range .Readings}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="note">Accuracy: a case scores the fraction of its expected answers contained in the greedy continuation (docs/EVAL.md). KV / full: the cache at the end of each case over a full f16 cache for the same tokens; peak: the largest size during the case. Speeds and time to first token come from the same runs, interleaved case by case across recipes so background load hits every recipe alike. Fidelity columns compare next-token distributions with {{.R.Setup.Base}} on the fidelity text.</p>

<h2>Charts</h2>
<div class="charts">
{{range .Charts}}{{if not .Small}}<figure>{{.SVG}}<figcaption><b>{{.Title}}</b>{{.Note}}</figcaption></figure>
{{end}}{{end}}</div>
<h2>Needle heatmaps</h2>
<div class="charts small">
{{range .Charts}}{{if .Small}}<figure>{{.SVG}}<figcaption><b>{{.Title}}</b>{{.Note}}</figcaption></figure>
{{end}}{{end}}</div>

{{if .Strata}}<h2>Accuracy by needle stratum</h2>
<p class="note">Answered / cases and accuracy with its 95% interval. <b>window</b>: the needle sat in the tokens the method keeps by rule (sinks, a recent or observation window), where a recency baseline answers too; the other columns are the remaining cases by needle depth.</p>
<table>
<tr><th>recipe</th>{{range .Strata}}<th>{{.}}</th>{{end}}</tr>
{{range .StrataRows}}<tr><td>{{.Name}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}

<h2>Accuracy by task and context length</h2>
{{if .Cols}}<table>
<tr><th>recipe</th>{{range .Cols}}<th>{{.}}</th>{{end}}</tr>
{{range .Matrix}}<tr><td>{{.Name}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{else}}<p class="note">No scored cases.</p>{{end}}

{{if .R.Errors}}<h2 id="errors">Errors</h2>
<table>
<tr><th>stage</th><th>line</th><th>recipe</th><th>reason</th></tr>
{{range .R.Errors}}<tr><td>{{.Stage}}</td><td>{{if .Line}}{{.Line}}{{end}}</td><td>{{.Recipe}}</td><td class="wrap">{{.Message}}</td></tr>
{{end}}</table>{{end}}

<h2>Cases</h2>
<details><summary>{{len .R.Cases}} runs (line, recipe, task, length, depth, expected, output, score)</summary>
<table>
<tr><th>line</th><th>recipe</th><th>task</th><th>length</th><th>prompt</th><th>depth</th><th>expected</th><th>output</th><th>score</th><th>KV</th><th>TTFT ms</th></tr>
{{range .R.Cases}}<tr><td>{{.Line}}</td><td>{{.Recipe}}</td><td>{{.Task}}</td><td>{{.ContextTokens}}</td><td>{{.PromptTokens}}</td><td>{{depth .Depth}}</td><td class="wrap">{{join .Answers ", "}}</td><td class="wrap">{{printf "%q" .Output}}</td><td>{{printf "%.2f" .Score}}</td><td>{{ibytes .KVBytes}}</td><td>{{f0 .TTFTMs}}</td></tr>
{{end}}</table>
</details>
</body>
</html>
`))
