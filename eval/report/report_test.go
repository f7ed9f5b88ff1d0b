package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func ptr(f float64) *float64 { return &f }

// sample builds a report with every field set: two scored recipes over
// two lengths and three depths, a failed recipe, a stop and errors.
func sample() *Report {
	r := New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.Seconds = 12.5
	r.Stopped = "interrupted"
	r.Model = Model{Source: "m.gguf", Params: 1000, Layers: 4, KVHeads: 2, HeadDim: 32, Context: 2048, Vocab: 1024, Threads: 2}
	r.Setup = Setup{Tasks: "built-in", Seed: 1, Suite: []string{"passkey"}, Lengths: []int{256, 512}, Depths: []float64{0, 0.5, 1},
		Haystack: "mixed", CasesPerCell: 1, ExtraTokens: 8, Base: "f16", FidelityText: "t", FidelityCtx: 128, FidelityChunks: 1, EqualKV: []float64{0.25}}
	r.Recipes = []Recipe{
		{Name: "f16", Recipe: "f16", Method: "f16", Fidelity: &Fidelity{Top1: 1, PPL: 10, BasePPL: 10, Chunks: 2, Positions: 63, KVBytes: 100, FullKVBytes: 100, Ratio: 1}},
		{Name: "snapkv(budget=0.25)", Recipe: "snapkv(budget=0.25,window=32)+f16", Method: "snapkv", KVTarget: 0.25,
			Fidelity: &Fidelity{MeanKLD: 0.05, P99KLD: 0.5, Top1: 0.9, PPL: math.Inf(1), BasePPL: 10, MeanKLDSE: 0.01, Top1SE: 0.01, DeltaPPLSE: 0.5, Chunks: 2,
				Positions: 63, KVBytes: 40, FullKVBytes: 100, Ratio: 0.4}},
		{Name: "bogus", Error: "unknown method"},
	}
	line := 0
	for _, n := range []int{256, 512} {
		for _, d := range []float64{0, 0.5, 1} {
			line++
			for ri, name := range []string{"f16", "snapkv(budget=0.25)"} {
				score := 1.0
				if ri == 1 && d < 1 {
					score = 0
				}
				full := int64(n * 1000)
				kv := full
				peak := full
				if ri == 1 {
					kv, peak = full/4, 2*full
				}
				var in *bool
				if ri == 1 {
					b := d == 1
					in = &b
				}
				r.Cases = append(r.Cases, CaseResult{
					Line: line, Recipe: name, Task: "passkey", ContextTokens: n, PromptTokens: n - 10, Depth: ptr(d), InWindow: in,
					Answers: []string{"12345"}, Output: " 12345", Score: score, Found: int(score), GeneratedTokens: 6,
					KVBytes: kv, KVBytesPeak: peak, FullKVBytes: full, PrefillMs: float64(n), TTFTMs: float64(n) + 1, DecodeMs: 10,
				})
			}
		}
	}
	r.Errors = []Error{
		{Stage: "tasks", Line: 7, Message: "missing \"prompt\""},
		{Stage: "recipe", Recipe: "bogus", Message: "unknown method"},
	}
	r.Finalize()
	return r
}

func TestFinalize(t *testing.T) {
	r := sample()
	if r.Complete {
		t.Error("a stopped report with errors is complete")
	}
	f16, snap, bogus := r.Recipes[0], r.Recipes[1], r.Recipes[2]
	if f16.Cases != 6 || f16.Accuracy != 1 || snap.Cases != 6 || math.Abs(snap.Accuracy-2.0/6) > 1e-12 || bogus.Cases != 0 {
		t.Errorf("accuracy: %+v %+v %+v", f16, snap, bogus)
	}
	if f16.Cost.Ratio != 1 || snap.Cost.Ratio != 0.25 || snap.Cost.PeakRatio != 2 {
		t.Errorf("ratios %v %v %v", f16.Cost.Ratio, snap.Cost.Ratio, snap.Cost.PeakRatio)
	}
	// 6 cases of 246 and 502 prompt tokens over 3×256 + 3×512 ms.
	if want := float64(3*246+3*502) / (float64(3*256+3*512) / 1000); math.Abs(f16.Cost.PrefillTokPerSec-want) > 1e-9 {
		t.Errorf("prefill %v, want %v", f16.Cost.PrefillTokPerSec, want)
	}
	if want := 6 * 5 / (6 * 10.0 / 1000); f16.Cost.DecodeTokPerSec != want {
		t.Errorf("decode %v, want %v", f16.Cost.DecodeTokPerSec, want)
	}
	if f16.Cost.KVBytesPeakMax != 512000 || f16.Cost.GeneratedTokens != 36 {
		t.Errorf("peak max %d, generated %d", f16.Cost.KVBytesPeakMax, f16.Cost.GeneratedTokens)
	}
	if len(r.Cells) != 4 || r.Cells[0].Recipe != "f16" || r.Cells[0].ContextTokens != 256 || r.Cells[3].Accuracy != 1.0/3 {
		t.Errorf("cells %+v", r.Cells)
	}
	if len(r.Lengths) != 4 || r.Lengths[1].ContextTokens != 512 || r.Lengths[2].KVBytesMean != 64000 {
		t.Errorf("lengths %+v", r.Lengths)
	}
	if snap.Fidelity.PPL != math.MaxFloat64 {
		t.Errorf("an infinite PPL became %v, want the largest float", snap.Fidelity.PPL)
	}
	r2 := *r
	r2.Finalize()
	if !slices.Equal(r2.Cells, r.Cells) {
		t.Error("Finalize is not idempotent")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Schema != Schema || len(back.Cases) != len(r.Cases) || back.Recipes[1].Fidelity.MeanKLD != 0.05 || *back.Cases[1].Depth != 0 {
		t.Errorf("round trip lost data: %+v", back.Recipes)
	}
	if _, err := ReadJSON(strings.NewReader(`{"schema":"kvgo-eval/2"}`)); err == nil {
		t.Error("another schema version was accepted")
	}
	if _, err := ReadJSON(strings.NewReader(`{"schema":"kvgo-eval/1","extra":1}`)); err == nil {
		t.Error("an unknown field was accepted")
	}
	bad := sample()
	bad.Cases[0].Recipe = "nope"
	bad.Cases[1].Score = 2
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `unknown recipe "nope"`) || !strings.Contains(err.Error(), "score 2") {
		t.Errorf("Validate: %v", err)
	}
}

// TestEmptyReportIsValid: a run stopped before its first case still
// writes a document consumers can read, with lists rather than nulls.
func TestEmptyReportIsValid(t *testing.T) {
	r := New(time.Now())
	r.Recipes = []Recipe{{Name: "f16", Recipe: "f16", Method: "f16"}}
	r.Stopped = "interrupted"
	r.Finalize()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "null,") && !strings.Contains(b.String(), `"fidelity": null`) {
		t.Errorf("null lists in %s", b.String())
	}
	if _, err := ReadJSON(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
	var h bytes.Buffer
	if err := r.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(h.String(), "<svg"); n != 5 {
		t.Errorf("%d charts in an empty report, want 5 (four plus one heatmap)", n)
	}
}

// evalDoc reads docs/EVAL.md, which is part of this repository.
func evalDoc(t *testing.T) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "EVAL.md"))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// schemaExample returns the JSON example of docs/EVAL.md.
func schemaExample(t *testing.T) []byte {
	t.Helper()
	doc := evalDoc(t)
	sec := strings.Index(string(doc), "## JSON schema `"+Schema+"`")
	if sec < 0 {
		t.Fatalf("docs/EVAL.md has no section for %s", Schema)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)\n```").FindSubmatch(doc[sec:])
	if m == nil {
		t.Fatal("no json block in the schema section of docs/EVAL.md")
	}
	return m[1]
}

// keyPaths lists every object key of a JSON document as a dotted path,
// array elements as [].
func keyPaths(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				out[prefix+k] = true
				walk(prefix+k+".", c)
			}
		case []any:
			for _, c := range x {
				walk(strings.TrimSuffix(prefix, ".")+"[].", c)
			}
		}
	}
	walk("", v)
	return out
}

// TestSchemaDocumented checks docs/EVAL.md against the code both ways: the
// example parses strictly (no field the code lacks) and contains every
// field the code writes for a fully populated report.
func TestSchemaDocumented(t *testing.T) {
	ex := schemaExample(t)
	if _, err := ReadJSON(bytes.NewReader(ex)); err != nil {
		t.Fatalf("the documented example does not parse as %s: %v", Schema, err)
	}
	var b bytes.Buffer
	if err := sample().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	documented := keyPaths(t, ex)
	for k := range keyPaths(t, b.Bytes()) {
		if !documented[k] {
			t.Errorf("field %s is written but not in the docs/EVAL.md example", k)
		}
	}
	doc := string(evalDoc(t))
	for k := range documented {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(doc, "`"+leaf+"`") && !strings.Contains(doc, "`"+leaf+"[]`") {
			t.Errorf("field %s is not described in docs/EVAL.md", k)
		}
	}
}

func TestHTML(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	// Three charts plus a heatmap per recipe, failed one included.
	if n := strings.Count(h, "<svg"); n != 4+len(r.Recipes) {
		t.Errorf("%d charts, want %d", n, 4+len(r.Recipes))
	}
	if strings.Count(h, "<svg") != strings.Count(h, "</svg>") {
		t.Error("unbalanced svg elements")
	}
	for _, bad := range []string{"<script", "<?xml", `src="http`, `href="http`, "@import", "url("} {
		if strings.Contains(h, bad) {
			t.Errorf("the page is not self-contained: it contains %q", bad)
		}
	}
	for _, want := range []string{"snapkv(budget=0.25)", "Accuracy vs KV bytes", "KL divergence vs KV bytes", "Speed", "KV memory vs context length",
		"Needles: f16", "passkey@512", "missing &#34;prompt&#34;", "stopped early", `viewBox="0 0 600 340"`} {
		if !strings.Contains(h, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Every chart draws something: paths for lines, markers and cells.
	for i, svg := range strings.Split(h, "<svg")[1:] {
		if strings.Count(svg[:strings.Index(svg, "</svg>")], "<path") < 10 {
			t.Errorf("chart %d draws almost nothing", i)
		}
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	sample().WriteTable(&b)
	out := b.String()
	for _, want := range []string{"legend: accuracy", "recipe", "snapkv(budget=0.25)", "33% [10–70]", "0.250", "bogus", "failed: unknown method",
		"passkey@256", "100% [44–100] /3", "33% [6–79] /3", "snapkv(budget=0.25) ties f16", "window", "2/2", "±0.01",
		`tasks (line 7): missing "prompt"`, "stopped early"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestDepthBin(t *testing.T) {
	for d, want := range map[float64]int{0: 0, 0.1: 0, 0.13: 1, 0.25: 1, 0.6: 2, 0.63: 3, 0.8: 3, 0.9: 4, 1: 4} {
		if got := depthBin(d); got != want {
			t.Errorf("depthBin(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	p := newProgressAt(&b, 100, false, func() time.Time { return now })
	for i := 0; i < 10; i++ {
		now = now.Add(time.Second)
		p.Add(10, "step")
	}
	p.Done("done", true)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// Not a terminal: a line per 10% and a final one, no carriage returns.
	if len(lines) != 11 || strings.Contains(b.String(), "\r") {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	if !strings.Contains(lines[0], " 10% 0:01 elapsed, eta 0:09") {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.Contains(lines[10], "100% 0:10  done") {
		t.Errorf("last line %q", lines[10])
	}
	var tty bytes.Buffer
	q := newProgressAt(&tty, 0, true, func() time.Time { return now })
	q.Grow(4)
	q.Add(1, "x")
	if !strings.HasPrefix(tty.String(), "\r\x1b[K") || !strings.Contains(tty.String(), " 25% ") {
		t.Errorf("terminal redraw %q", tty.String())
	}
	var nilBar *Progress
	nilBar.Add(1, "no panic")
}

func TestPlainTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   string
	}{
		{0, 2700, "0 500 1000 1500 2000 2500"},
		{0, 1.05, "0 0.2 0.4 0.6 0.8 1"},
		{0, 0.003, "0 0.0005 0.001 0.0015 0.002 0.0025 0.003"},
		{3, 3, "3"},
	} {
		var got []string
		for _, tk := range (plainTicks{}).Ticks(c.lo, c.hi) {
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%v..%v: %v, want %s", c.lo, c.hi, got, c.want)
		}
	}
}

// TestRankingTiesNeighbours: a ">" is printed only between neighbours
// whose intervals do not overlap, never between two that tie.
func TestRankingTiesNeighbours(t *testing.T) {
	r := New(time.Now())
	r.Setup.Base = "a"
	for i, acc := range []struct {
		name string
		k    int
	}{{"a", 53}, {"b", 28}, {"c", 17}, {"d", 0}} {
		r.Recipes = append(r.Recipes, Recipe{Name: acc.name, Recipe: acc.name, Method: acc.name})
		for j := range 60 {
			score := 0.0
			if j < acc.k {
				score = 1
			}
			r.Cases = append(r.Cases, CaseResult{Line: j + 1, Recipe: acc.name, Task: "passkey", ContextTokens: 256 << (i % 2), Score: score})
		}
	}
	r.Finalize()
	got := r.Readings()[0]
	if !strings.Contains(got, "a 88% > b 47% ≈ c 28% > d 0%") {
		t.Errorf("ranking %q", got)
	}
}
