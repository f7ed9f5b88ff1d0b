package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/kvgo/kvgo/kv/recipe"
)

// cmdKV groups commands about KV methods; today "kvgo kv list".
func cmdKV(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kv", "list")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "list" {
		return usagef("want the subcommand list (kvgo kv list)")
	}
	fmt.Fprintf(stdout, "KV recipes: name(key=value,...)+name(...), at most one method of each kind, e.g. snapkv(budget=0.25)+kivi(bits=4).\n")
	fmt.Fprintf(stdout, "Kinds, in the order they act: repair (reuses the caches of a prompt's chunks, RAG documents, and recomputes\n")
	fmt.Fprintf(stdout, "some of their tokens; see docs/RAG.md), evict (which tokens stay), wrap (changes the evictor's choice; needs one),\n")
	fmt.Fprintf(stdout, "select (which pages a decode step reads; deletes nothing), codec (how tokens are stored; f16 when absent).\n")
	fmt.Fprintf(stdout, "Budgets are tokens per (layer, KV head) (a whole number: 1, 512) or a fraction of the prompt (with a point: 0.25, 1.0).\n")
	fmt.Fprintf(stdout, "No --kv means the full F16 cache.\n")
	for _, m := range recipe.Methods() {
		fmt.Fprintf(stdout, "\n%s [%s]  %s\n  paper: %s\n", m.Name, m.Kind, m.Summary, m.Paper)
		for _, p := range m.Params {
			def := p.Default
			if def == "" {
				def = "required"
			}
			fmt.Fprintf(stdout, "  %-10s default %-8s %s", p.Name, def, p.Describe())
			if p.Help != "" {
				fmt.Fprintf(stdout, "  %s", strings.TrimSpace(p.Help))
			}
			fmt.Fprintln(stdout)
		}
	}
	return nil
}
