package eval

import (
	"bytes"
	"html/template"
	"io"
	"strings"

	"github.com/kvgo/kvgo/eval/report"
)

// WriteRAGHTML writes the RAG workload's report as one self-contained page
// (`kvgo eval rag --html`): the table WriteRAGTable prints and the charts
// of quality against time to first token (report.RAGCharts), inline SVG,
// nothing fetched.
func WriteRAGHTML(w io.Writer, r *RAGReport, quality bool) error {
	var pts []report.RAGPoint
	for _, x := range r.Rows {
		pts = append(pts, report.RAGPoint{Name: x.Recipe, Speedup: x.TTFTRatio, Compute: x.Compute,
			KLD: x.KLD, KLDSE: x.KLDSE, Accuracy: x.Accuracy, Lo: x.Lo, Hi: x.Hi})
	}
	charts, err := report.RAGCharts(pts, quality)
	if err != nil {
		return err
	}
	// The Markdown table, parsed back into cells.
	var md bytes.Buffer
	WriteRAGTable(&md, r, quality)
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	caption := lines[0]
	var head []string
	var rows [][]string
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "|") || strings.HasPrefix(l, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "| "), " | ")
		if head == nil {
			head = cells
			continue
		}
		rows = append(rows, cells)
	}
	type chart struct {
		Title, Note string
		SVG         template.HTML
	}
	var cs []chart
	for _, c := range charts {
		cs = append(cs, chart{c.Title, c.Note, template.HTML(c.SVG)})
	}
	return ragPage.Execute(w, map[string]any{"Caption": caption, "Head": head, "Rows": rows, "Charts": cs})
}

var ragPage = template.Must(template.New("rag").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kvgo eval rag</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1100px;padding:0 1rem;color:#222}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
figure{margin:1.5rem 0}figcaption{font-size:.85rem;color:#555;max-width:820px}
svg{max-width:100%;height:auto}
</style></head><body>
<h1>RAG chunk reuse: kvgo eval rag</h1>
<p>{{.Caption}}</p>
<table><thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</tbody></table>
{{range .Charts}}<figure><h2>{{.Title}}</h2>{{.SVG}}<figcaption>{{.Note}}</figcaption></figure>
{{end}}</body></html>
`))
