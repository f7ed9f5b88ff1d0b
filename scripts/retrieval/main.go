// Command retrieval measures what a selector (kv/retrieve) reads at each
// decode step, for scripts/retrieval.sh and docs/RETRIEVAL.md: for every
// recipe and context length, the cases of a JSONL case file are prefilled
// and decoded greedily for -steps tokens, and the selector's counters give
// the tokens one stream reads per step and their share of the tokens it
// holds. `kvgo eval` reports accuracy and `kvgo bench` speed; neither sees
// inside a recipe's selector.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/kvgo/kvgo/internal/dist"
	"os"
	"strconv"
	"strings"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval/tasks"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/kv/retrieve"
)

func main() {
	model := flag.String("m", "", "GGUF model (default: the embedded kvgo-tiny)")
	file := flag.String("tasks", "", "case file (JSONL)")
	lengths := flag.String("lengths", "1024,2048", "context lengths to keep")
	only := flag.String("suite", "passkey", "tasks to keep, comma-separated")
	recipes := flag.String("kv", "", "recipes with a selector, separated by ';'")
	steps := flag.Int("steps", 16, "decode steps per case")
	flag.Parse()
	if err := run(*model, *file, *lengths, *only, *recipes, *steps); err != nil {
		fmt.Fprintln(os.Stderr, "retrieval:", err)
		os.Exit(1)
	}
}

func run(model, file, lengthList, only, recipeList string, steps int) error {
	e, err := engine.Load(model, 0)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	cases, bad, err := tasks.Read(f, file)
	f.Close()
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return bad[0]
	}
	var lens []int
	for _, s := range strings.Split(lengthList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("length %q: %w", s, err)
		}
		lens = append(lens, n)
	}
	fmt.Println("| recipe | context | cases | tokens read per stream and step | of the tokens held |")
	fmt.Println("|---|---|---|---|---|")
	for _, rs := range strings.Split(recipeList, ";") {
		r, err := recipe.Parse(rs)
		if err != nil {
			return err
		}
		for _, n := range lens {
			sel := tasks.Filter(cases, strings.Split(only, ","), []int{n}, 0, 1)
			var tot retrieve.ReadStats
			for _, c := range sel {
				ids := e.Tok.Encode(c.Prompt, true, false)
				sess, err := e.NewSession(r, len(ids)+steps+1, len(ids))
				if err != nil {
					return err
				}
				logits, err := sess.Prefill(context.Background(), ids)
				if err != nil {
					return err
				}
				for i := 0; i < steps; i++ {
					if logits, err = sess.Step(dist.Argmax(logits), len(ids)+i); err != nil {
						return err
					}
				}
				st, ok := retrieve.Reads(sess.Cache.Config().Selector)
				if !ok {
					return fmt.Errorf("%s has no selector that counts its reads", r)
				}
				tot.Calls += st.Calls
				tot.Read += st.Read
				tot.Held += st.Held
				sess.Cache.Release()
			}
			if tot.Calls == 0 {
				continue
			}
			fmt.Printf("| `%s` | %d | %d | %.0f | %.1f%% |\n", rs, n, len(sel),
				float64(tot.Read)/float64(tot.Calls), 100*float64(tot.Read)/float64(tot.Held))
		}
	}
	return nil
}
