package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv/recipe"
)

// fixedReport is a report of made-up numbers that exercise every column:
// a recipe name wider than its column, sizes in KiB and MiB, bounds. The
// golden tables in testdata were printed by kvgo bench's own code before
// it moved here, from these numbers.
func fixedReport(interleaved bool) *Report {
	r := &Report{
		Schema: Schema, Model: "models/qwen2.5-0.5b-q8_0.gguf", Arch: "qwen2", Params: 494032768, Threads: 2, GOARCH: "amd64",
		PeakRSSBytes: 1162952704, WeightBytesPerToken: 525120000,
		Results: []Result{
			{Recipe: "f16", Test: "pp512", Depth: 0, TokPerSec: 812.345, StdDev: 3.21, VsFirst: 1, KVBytes: 6 << 20, Ratio: 1},
			{Recipe: "snapkv(budget=0.25,window=32)+kivi(bits=4,group=32,residual=128)", Test: "pp512", Depth: 0, TokPerSec: 790.5, StdDev: 12.25, VsFirst: 0.973, VsFirstStdDev: 0.0123, KVBytes: 1536 << 10, Ratio: 0.25},
			{Recipe: "f16", Test: "tg128", Depth: 8192, TokPerSec: 33.1, StdDev: 0.7, VsFirst: 1, KVBytes: 102632448, Ratio: 1, BoundTokPerSec: 38.8},
			{Recipe: "q4(group=32,mode=sym)", Test: "tg128", Depth: 8192, TokPerSec: 41.25, StdDev: 0.05, VsFirst: 1.246, VsFirstStdDev: 0.031, KVBytes: 29 << 20, Ratio: 0.296, BoundTokPerSec: 44.125},
		},
	}
	if interleaved {
		r.MemBW = 2.43e10
	} else {
		for i := range r.Results {
			r.Results[i].VsFirst, r.Results[i].VsFirstStdDev = 0, 0
		}
	}
	return r
}

func TestWriteTable(t *testing.T) {
	for _, c := range []struct {
		golden      string
		interleaved bool
	}{{"testdata/table.txt", false}, {"testdata/table-interleaved.txt", true}} {
		want, err := os.ReadFile(c.golden)
		if err != nil {
			t.Fatal(err)
		}
		rep := fixedReport(c.interleaved)
		var whole bytes.Buffer
		if err := rep.WriteTable(&whole); err != nil {
			t.Fatal(err)
		}
		if whole.String() != string(want) {
			t.Errorf("WriteTable differs from %s:\n%s", c.golden, whole.String())
		}
		// kvgo bench prints the heading before the run and each row as it
		// is measured: the same bytes.
		var streamed bytes.Buffer
		tab := NewTable(&streamed, &Report{Model: rep.Model, Arch: rep.Arch, Params: rep.Params, Threads: rep.Threads, WeightBytesPerToken: rep.WeightBytesPerToken}, c.interleaved)
		for _, r := range rep.Results {
			tab.Row(r)
		}
		tab.Summary(rep)
		if streamed.String() != string(want) {
			t.Errorf("a Table fed row by row differs from %s:\n%s", c.golden, streamed.String())
		}
	}
}

type failWriter struct{ writes int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, errors.New("disk full")
}

func TestWriteTableError(t *testing.T) {
	var w failWriter
	if err := fixedReport(true).WriteTable(&w); err == nil || w.writes != 1 {
		t.Errorf("WriteTable to a failing writer: %v after %d writes, want the error after 1", err, w.writes)
	}
}

// TestReportJSON: the JSON has exactly the keys docs/PERFORMANCE.md
// documents for kvgo-bench/1, and a run without results writes [].
func TestReportJSON(t *testing.T) {
	rep := fixedReport(true)
	rep.Results = rep.Results[3:] // every omitempty field set
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), "}\n") || !strings.HasPrefix(b.String(), "{\n  \"schema\": \"kvgo-bench/1\",\n") {
		t.Errorf("not indented JSON with a newline:\n%s", b.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	got := keys(doc)
	for _, r := range doc["results"].([]any) {
		got = append(got, keys(r.(map[string]any))...)
	}
	md, err := os.ReadFile("../docs/PERFORMANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)schema `kvgo-bench/1`.*?```json\n(.*?)```").FindSubmatch(md)
	if block == nil {
		t.Fatal("docs/PERFORMANCE.md has no kvgo-bench/1 example")
	}
	var want []string
	for _, m := range regexp.MustCompile(`"(\w+)":`).FindAllSubmatch(block[1], -1) {
		want = append(want, string(m[1]))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("JSON keys\n %v\ndocumented\n %v", got, want)
	}

	b.Reset()
	if err := (&Report{Schema: Schema}).WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"results": []`) {
		t.Errorf("a report without results: %v\n%s", err, b.String())
	}
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	return k
}

func tinyEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestNewReport(t *testing.T) {
	e := tinyEngine(t)
	r := NewReport(e)
	if r.Schema != "kvgo-bench/1" || r.Model != e.Source || r.Arch != "llama" || r.Params != e.Params() || r.Params == 0 ||
		r.Threads != 2 || r.GOARCH != runtime.GOARCH || r.WeightBytesPerToken != e.WeightBytesPerToken() || r.Results != nil {
		t.Errorf("NewReport: %+v", r)
	}
}

// TestProfiler: the timed tests of a run, each a profile of its own, are
// written as one profile pprof reads; without any test, Write fails.
func TestProfiler(t *testing.T) {
	var empty Profiler
	if err := empty.Write(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no test ran") {
		t.Errorf("Write without sections: %v", err)
	}
	e := tinyEngine(t)
	f16, err := recipe.Parse("f16")
	if err != nil {
		t.Fatal(err)
	}
	var p Profiler
	sections := 0
	measuring := func(on bool) {
		if on {
			sections++
		}
		p.Measuring(on)
	}
	if _, err := Run(context.Background(), e, Config{Prompt: 8, Gen: 4, Depths: []int{0, 16}, Reps: 1, Recipes: []*recipe.Recipe{f16}, Measuring: measuring}); err != nil {
		t.Fatal(err)
	}
	if sections != 4 || len(p.parts) != sections {
		t.Errorf("%d sections measured, %d profiles kept", sections, len(p.parts))
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	prof, err := profile.Parse(&b)
	if err != nil {
		t.Fatalf("merged profile does not parse: %v", err)
	}
	if n := len(prof.SampleType); n == 0 || prof.SampleType[n-1].Unit != "nanoseconds" {
		t.Errorf("sample types %v, want CPU time", prof.SampleType)
	}
}

func TestPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("PeakRSS is checked on Linux and macOS")
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	if rss := PeakRSS(); rss < int64(len(buf)) {
		t.Errorf("PeakRSS() = %d after touching %d bytes", rss, len(buf))
	}
	runtime.KeepAlive(buf)
}
