package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/eval/tasks"
)

func readReport(t *testing.T, dir string) *report.Report {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatalf("report.json: %v", err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !bytes.Contains(html, []byte("<svg")) {
		t.Fatalf("report.html: %v", err)
	}
	return r
}

// TestEvalBadLineAndRecipe: a malformed JSONL line and a broken recipe are
// named (file:line and reason; the recipe and reason) and the command
// fails, but the rest runs and the report holds it.
func TestEvalBadLineAndRecipe(t *testing.T) {
	dir := t.TempDir()
	suite := filepath.Join(dir, "suite.jsonl")
	code, _, errOut := kvgo(t, "eval", "gen", "--suite", "passkey", "--lengths", "128", "--depths", "0,1", "-o", suite)
	if code != 0 {
		t.Fatalf("eval gen: exit %d: %s", code, errOut)
	}
	data, err := os.ReadFile(suite)
	if err != nil {
		t.Fatal(err)
	}
	cases, bad, err := tasks.Read(bytes.NewReader(data), suite)
	if err != nil || len(bad) > 0 || len(cases) != 2 {
		t.Fatalf("eval gen wrote %d cases, %v %v", len(cases), bad, err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	withBad := filepath.Join(dir, "cases.jsonl")
	os.WriteFile(withBad, []byte(lines[0]+`{"task": "passkey", "answer": "1"}`+"\n"+lines[1]), 0o644)

	out := filepath.Join(dir, "report")
	code, stdout, errOut := kvgo(t, "eval", "--tasks", withBad, "--kv", "f16;bogus", "-o", out, "--fidelity-chunks", "0", "--quiet")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	for _, want := range []string{withBad + `:2: missing "prompt"`, `unknown method "bogus"`, "everything else ran", filepath.Join(out, "report.html")} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(stdout, "passkey@128") {
		t.Errorf("no table on stdout:\n%s", stdout)
	}
	r := readReport(t, out)
	if len(r.Cases) != 2 || r.Cases[0].Line != 1 || r.Cases[1].Line != 3 || r.Complete {
		t.Errorf("report: %d cases, complete %v", len(r.Cases), r.Complete)
	}
	stages := map[string]int{}
	for _, e := range r.Errors {
		stages[e.Stage] = e.Line
	}
	if stages["tasks"] != 2 || len(r.Errors) != 2 {
		t.Errorf("errors %+v", r.Errors)
	}
}

// TestEvalInterrupted: Ctrl-C (a cancelled context) still writes a valid,
// partial report and exits 1.
func TestEvalInterrupted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var so, se bytes.Buffer
	code := runMain(ctx, []string{"eval", "--lengths", "128", "--depths", "0", "--kv", "q8", "-o", out, "--quiet"}, &so, &se)
	if code != 1 || !strings.Contains(se.String(), "partial report written") {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	r := readReport(t, out)
	if r.Complete || r.Stopped != "interrupted" || len(r.Recipes) != 2 || r.Recipes[0].Name != "f16" {
		t.Errorf("complete %v, stopped %q, recipes %+v", r.Complete, r.Stopped, r.Recipes)
	}
}

func TestEvalUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--format", "xml"}, "invalid value"},
		{[]string{"eval", "--lengths", "12a"}, "--lengths"},
		{[]string{"eval", "--depths", "2"}, "--depths"},
		{[]string{"eval", "--suite", "chess"}, `unknown task "chess"`},
		{[]string{"eval", "--kv", "bogus;nope"}, `unknown method "bogus"`},
		{[]string{"eval", "--base", "zzz"}, "--base"},
		{[]string{"eval", "gen", "--lengths", "16"}, "too short"},
		{[]string{"eval", "extra"}, "unexpected arguments"},
	} {
		code, _, errOut := kvgo(t, c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errOut, c.want)
		}
	}
}
