package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/eval/tasks"
)

var testTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestNewJobRecipes(t *testing.T) {
	for _, c := range []struct{ recipes, base, want string }{
		{"f16", "zzz", "--base: "},
		{" ; ", "f16", "--kv has no recipe"},
		{"bogus;nope", "f16", `--kv recipe 1: recipe "bogus": unknown method "bogus"`},
	} {
		if _, err := NewJob(Options{Recipes: c.recipes, Base: c.base}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("recipes %q base %q: error %v, want %q", c.recipes, c.base, err, c.want)
		}
	}

	// The base runs first when the list lacks it; a broken recipe is told
	// to Warn and kept, so the report names it.
	var warned []string
	j, err := NewJob(Options{Recipes: "q8;bogus", Base: "f16", Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range j.Recipes() {
		names = append(names, r.Name)
	}
	if strings.Join(names, ";") != "f16;q8;bogus" {
		t.Errorf("recipes %v, want the base first", names)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], `unknown method "bogus"`) || !strings.HasSuffix(warned[0], "(the other recipes still run)") {
		t.Errorf("warnings %q", warned)
	}

	// A list holding the base (in any spelling of it) is not given a
	// second one.
	j, err = NewJob(Options{Recipes: "q8;f16", Base: "f16"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(j.Recipes()); n != 2 || j.Recipes()[0].Name != "q8" {
		t.Errorf("recipes %+v", j.Recipes())
	}
}

// writeCases generates passkey cases in e's tokens and writes them with
// WriteCases, as `kvgo eval gen -o` does.
func writeCases(t *testing.T, path string, cases []tasks.Case) []byte {
	t.Helper()
	if err := WriteCases(path, cases); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, bad, err := tasks.Read(bytes.NewReader(data), path)
	if err != nil || len(bad) > 0 || len(back) != len(cases) {
		t.Fatalf("WriteCases wrote %d cases back (%v %v), want %d", len(back), bad, err, len(cases))
	}
	return data
}

// TestJobTasksFile: a case file with a bad line and a broken recipe runs
// the rest, warns about both as they are found, filters by length, writes
// both report files, and sums the failures up in Err.
func TestJobTasksFile(t *testing.T) {
	e := tiny(t)
	dir := t.TempDir()
	cases := append(suite(t, e, []int{128}, []float64{0, 1}), suite(t, e, []int{256}, []float64{0})...)
	data := writeCases(t, filepath.Join(dir, "gen.jsonl"), cases)
	lines := strings.SplitAfter(string(data), "\n")
	file := filepath.Join(dir, "cases.jsonl")
	os.WriteFile(file, []byte(lines[0]+`{"task": "passkey", "answer": "1"}`+"\n"+lines[1]+lines[2]), 0o644)

	var warned []string
	j, err := NewJob(Options{
		Recipes: "f16;bogus", Base: "f16", Tasks: file, FilterLengths: []int{128}, Suite: tasks.Spec{Seed: 7},
		Dir: filepath.Join(dir, "out"), Warn: func(m string) { warned = append(warned, m) },
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Run(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if len(warned) != 2 || !strings.Contains(warned[1], file+`:2: missing "prompt"`) || !strings.HasSuffix(warned[1], "(the other lines still run)") {
		t.Errorf("warnings %q", warned)
	}
	rep := res.Report
	if len(rep.Cases) != 2 || rep.Cases[0].Line != 1 || rep.Cases[1].Line != 3 {
		t.Errorf("%d cases %+v, want lines 1 and 3 (the 256-token line filtered out)", len(rep.Cases), rep.Cases)
	}
	s := rep.Setup
	if s.Tasks != file || s.Seed != 7 || len(s.Lengths) != 1 || s.Lengths[0] != 128 || len(s.Suite) != 0 || s.FidelityChunks != 0 {
		t.Errorf("setup %+v", s)
	}
	if res.WriteErr != nil || res.HTML != filepath.Join(dir, "out", "report.html") {
		t.Fatalf("files %s %s: %v", res.HTML, res.JSON, res.WriteErr)
	}
	f, err := os.Open(res.JSON)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := report.ReadJSON(f)
	if err != nil || len(back.Cases) != 2 || len(back.Errors) != 2 {
		t.Errorf("report.json: %v, %+v", err, back)
	}
	msg := res.Err()
	if msg == nil || !strings.HasPrefix(msg.Error(), "2 error(s), everything else ran and is in the report: --kv recipe 2: ") ||
		!strings.Contains(msg.Error(), `; `+file+`:2: missing "prompt"`) {
		t.Errorf("Err() = %v", msg)
	}

	// Filters that leave nothing fail before any run.
	os.WriteFile(file, []byte(lines[0]), 0o644)
	j, _ = NewJob(Options{Recipes: "f16", Base: "f16", Tasks: file, FilterLengths: []int{4096}, Dir: filepath.Join(dir, "none")})
	if _, err := j.Run(context.Background(), e); err == nil || !strings.Contains(err.Error(), "no cases") {
		t.Errorf("no cases: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		t.Error("a report was written for a job that never ran")
	}
}

// TestJobFidelityChunk: the built-in suite's short prompts shrink the
// fidelity chunk instead of skipping fidelity, unless the chunk was asked
// for; a skip is recorded and reported. Interrupting still writes.
func TestJobFidelityChunk(t *testing.T) {
	e := tiny(t)
	spec := tasks.Spec{Seed: 1, Tasks: []string{"passkey"}, Lengths: []int{128}, Depths: []float64{0, 1}, Cases: 1, Haystack: tasks.HaystackMixed}
	opt := Options{Recipes: "f16", Base: "f16", Suite: spec, FidelityCtx: 512, FidelityChunks: 2, AdaptFidelityCtx: true}

	opt.Dir = filepath.Join(t.TempDir(), "adapt")
	j, err := NewJob(opt)
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Run(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Report.Setup
	if s.FidelityCtx != 64 || s.FidelityChunks != 2 || s.Tasks != "built-in" || s.FidelityText != "the prompts of the cases" || res.Err() != nil {
		t.Errorf("setup %+v, err %v", s, res.Err())
	}
	if f := res.Report.Recipe("f16").Fidelity; f == nil || f.MeanKLD != 0 {
		t.Errorf("f16 against itself: %+v", f)
	}

	opt.AdaptFidelityCtx = false
	opt.Dir = filepath.Join(t.TempDir(), "fixed")
	j, _ = NewJob(opt)
	if res, err = j.Run(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "fidelity skipped: the text has") || res.Report.Setup.FidelityChunks != 0 {
		t.Errorf("a fixed 512-token chunk on short prompts: %v, setup %+v", err, res.Report.Setup)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opt.Dir = filepath.Join(t.TempDir(), "cancelled")
	j, _ = NewJob(opt)
	if res, err = j.Run(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "partial report written (0 runs finished)") || res.WriteErr != nil {
		t.Errorf("cancelled: %v, write %v", err, res.WriteErr)
	}
	if _, err := os.Stat(res.JSON); err != nil {
		t.Errorf("no partial report: %v", err)
	}
}

func TestResultErr(t *testing.T) {
	rep := report.New(testTime)
	if err := (&Result{Report: rep}).Err(); err != nil {
		t.Errorf("no errors: %v", err)
	}
	for i := range 5 {
		rep.Errors = append(rep.Errors, report.Error{Stage: "case", Line: i + 1, Recipe: "q8", Message: "boom"})
	}
	rep.Errors = append(rep.Errors, report.Error{Stage: "recipe", Recipe: "x", Message: "early"})
	err := (&Result{Report: rep, early: []error{errors.New("early")}}).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "6 error(s), everything else ran and is in the report: early; ") || !strings.HasSuffix(err.Error(), "and 3 more") {
		t.Errorf("Err() = %v", err)
	}
	rep.Errors = rep.Errors[2:] // early + 3 case errors: the fourth message is summed up
	err = (&Result{Report: rep, early: []error{errors.New("early")}}).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "4 error(s), everything else ran and is in the report: early; case (line 3, recipe \"q8\"): boom; case (line 4") || !strings.HasSuffix(err.Error(), "; and 1 more") {
		t.Errorf("Err() = %v", err)
	}
	err = (&Result{Report: rep, Interrupted: context.Canceled}).Err()
	if err == nil || err.Error() != "context canceled: partial report written (0 runs finished)" {
		t.Errorf("interrupted: %v", err)
	}
}

func TestReadText(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for _, c := range []struct{ name, data, want, err string }{
		{"a.txt", "one\ntwo\n\n", "one\ntwo\n", ""},
		{"b.txt", "\xff", "", "not valid UTF-8"},
		{"c.jsonl", `{"prompt": "one"}` + "\n\n" + `{"prompt": "two", "answer": "x"}` + "\n", "one\n\ntwo", ""},
		{"d.jsonl", `{"prompt": "one"}` + "\n" + `{"answer": "x"}`, "", `d.jsonl:2: no "prompt" field`},
		{"e.jsonl", `{"prompt": `, "", "e.jsonl:1: "},
	} {
		got, err := ReadText(write(c.name, c.data))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestWriteFidelity(t *testing.T) {
	base := mustParse(t, "f16")
	res := []Fidelity{
		{Recipe: "q8", MeanKLD: 0.002, P99KLD: 0.013, Top1: 0.97, PPL: 4.43, BasePPL: 4.37, Positions: 126, Ratio: 0.666,
			MeanKLDSE: 0.0005, Top1SE: 0.01, DeltaPPLSE: 0.02, Chunks: 2},
		{Recipe: "bad", Error: "no cache"},
	}
	var b bytes.Buffer
	if err := WriteFidelity(&b, FidelityMarkdown, base, res); err != nil {
		t.Fatal(err)
	}
	want := "| recipe                                         |          mean KLD |   p99 KLD |           top-1 |      PPL |              ΔPPL |     KV |\n" +
		"|---|--:|--:|--:|--:|--:|--:|\n" +
		"| q8                                             |  0.00200 ±0.00050 |   0.01300 |  0.9700 ±0.0100 |   4.4300 |   +0.0600 ±0.0200 |  0.666 |\n" +
		"| bad                                            | failed: no cache\n" +
		"\nbase f16: PPL 4.3700 over 126 positions in 2 chunk(s); ± is the standard error across chunks; KV is the mean cache size as a fraction of the full f16 cache\n"
	if b.String() != want {
		t.Errorf("markdown:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	WriteFidelity(&b, FidelityTable, base, res[1:])
	if strings.Contains(b.String(), "|") || strings.Contains(b.String(), "base f16") || !strings.Contains(b.String(), "failed: no cache") {
		t.Errorf("table of failures only:\n%s", b.String())
	}
	b.Reset()
	WriteFidelity(&b, FidelityJSON, base, nil)
	var arr []Fidelity
	if err := json.Unmarshal(b.Bytes(), &arr); err != nil || arr == nil || len(arr) != 0 {
		t.Errorf("json of nothing: %q", b.String())
	}
	if err := WriteFidelity(&b, "xml", base, res); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestWriteReportUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	rep := report.New(testTime)
	rep.Finalize()
	if _, _, err := writeReport(rep, filepath.Join(file, "dir")); err == nil {
		t.Error("a report under a file was written")
	}
}

// TestReportPathsAreAbsolute: the command prints where the report is, and
// a relative -o would print a path that only works from where it ran.
func TestReportPathsAreAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	rep := report.New(time.Now())
	rep.Finalize()
	html, js, err := writeReport(rep, "rel")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(html) || !filepath.IsAbs(js) || filepath.Base(filepath.Dir(html)) != "rel" {
		t.Errorf("report at %s and %s, want absolute paths into rel", html, js)
	}
}
