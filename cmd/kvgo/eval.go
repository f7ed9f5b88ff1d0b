package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/kvgo/kvgo/eval"
	"github.com/kvgo/kvgo/kv/recipe"
)

// cmdEval groups the measurement commands; today "kvgo eval fidelity".
func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "fidelity" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stderr, "Usage: kvgo eval fidelity [flags]   (kvgo eval fidelity --help for flags)")
			return nil
		}
		return usagef("want a subcommand: fidelity")
	}
	return cmdFidelity(ctx, args[1:], stdout, stderr)
}

func cmdFidelity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval fidelity", "[-m FILE] -f TEXT|CASES.jsonl --ctx N --kv \"R1;R2\"")
	var mf modelFlags
	mf.register(fs)
	file := fs.String("f", "", "text `file`; a .jsonl file contributes the \"prompt\" field of each line")
	nctx := fs.Int("ctx", 512, "tokens per chunk: the first half is the compressed context, the rest is decoded and compared")
	kvFlag := fs.String("kv", "", "KV `recipes` to compare with the full cache, separated by ';'")
	baseFlag := fs.String("base", recipe.Default, "the full-cache `recipe` everything is compared with")
	chunks := fs.Int("chunks", 0, "use at most this many chunks (0 = all)")
	format := fs.String("format", "table", "output: table, markdown or json")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *file == "" || *kvFlag == "" {
		return usagef("-f FILE and --kv RECIPES are required")
	}
	if err := oneOf("format", *format, "table", "markdown", "json"); err != nil {
		return err
	}
	base, err := parseRecipe(*baseFlag)
	if err != nil {
		return err
	}
	var recipes []*recipe.Recipe
	for _, s := range strings.Split(*kvFlag, ";") {
		r, err := parseRecipe(s)
		if err != nil {
			return err
		}
		recipes = append(recipes, r)
	}
	text, err := readEvalText(*file)
	if err != nil {
		return err
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	ids := e.Tok.Encode(text, true, false)
	res, err := eval.CompareFidelity(ctx, e, ids, *nctx, base, recipes, *chunks)
	switch *format {
	case "json":
		if res == nil {
			res = []eval.Fidelity{}
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
	default:
		sep := " "
		if *format == "markdown" {
			sep = "|"
		}
		fmt.Fprintf(stdout, "%s %-46s %s %9s %s %9s %s %6s %s %8s %s %8s %s %6s %s\n", sep, "recipe", sep, "mean KLD", sep, "p99 KLD", sep, "top-1", sep, "PPL", sep, "ΔPPL", sep, "KV", sep)
		if *format == "markdown" {
			fmt.Fprintln(stdout, "|---|--:|--:|--:|--:|--:|--:|")
		}
		for _, f := range res {
			fmt.Fprintf(stdout, "%s %-46s %s %9.5f %s %9.5f %s %6.4f %s %8.4f %s %+8.4f %s %6.3f %s\n", sep, f.Recipe, sep, f.MeanKLD, sep, f.P99KLD, sep, f.Top1, sep, f.PPL, sep, f.PPL-f.BasePPL, sep, f.Ratio, sep)
		}
		if len(res) > 0 {
			fmt.Fprintf(stdout, "\nbase %s: PPL %.4f over %d positions; KV is the mean cache size as a fraction of the full f16 cache\n", base, res[0].BasePPL, res[0].Positions)
		}
	}
	return err
}

// readEvalText reads a text file, or joins the "prompt" fields of a JSONL
// file into one text (paragraphs separated by blank lines).
func readEvalText(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(path, ".jsonl") {
		if !utf8.Valid(data) {
			return "", fmt.Errorf("%s is not valid UTF-8", path)
		}
		return strings.TrimSuffix(string(data), "\n"), nil
	}
	var parts []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c struct {
			Prompt *string `json:"prompt"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return "", fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if c.Prompt == nil {
			return "", fmt.Errorf("%s:%d: no \"prompt\" field", path, line)
		}
		parts = append(parts, *c.Prompt)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return strings.Join(parts, "\n\n"), nil
}
