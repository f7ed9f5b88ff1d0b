package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kvgo/kvgo/bench"
	"github.com/kvgo/kvgo/eval"
)

// cmdEvalRAG runs the RAG chunk-reuse workload ("kvgo eval rag"): every
// repair policy answers the same questions over a Zipf-popular knowledge
// base; accuracy, fidelity against full prefill, TTFT, recompute, hit rate
// and store bytes per policy (eval/rag.go).
func cmdEvalRAG(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval rag", "[-m FILE] [--kv \"R1;R2\"] [--questions N] [--json FILE] [--html FILE]")
	var mf modelFlags
	mf.register(fs)
	var c eval.RAGConfig
	fs.IntVar(&c.Docs, "docs", 24, "documents in the knowledge base")
	fs.IntVar(&c.DocTokens, "doc-tokens", 160, "tokens per document, about")
	fs.IntVar(&c.K, "k", 4, "documents per question")
	fs.IntVar(&c.Questions, "questions", 40, "measured questions per policy")
	fs.IntVar(&c.Warm, "warm", 0, "warm-up questions per policy (default 2 × questions)")
	fs.Float64Var(&c.Zipf, "zipf", 1.2, "Zipf exponent of document popularity (> 1)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the knowledge base and the questions")
	chunkMem := fs.String("chunk-mem", "64MiB", "each policy's chunk store `budget` (a chunk of a wide model's documents takes megabytes: 6 MiB for 512 tokens of qwen2.5-0.5b in F16)")
	kvFlag := fs.String("kv", "", "policies to compare, ';'-separated recipes (default: prefix, naive, epic, cacheblend, cachecraft, cachecraft+kivi; full is always the reference)")
	timeOnly := fs.Bool("time-only", false, "measure time only, no answers (random-weight models)")
	jsonOut := fs.String("json", "", "write the report as JSON to `file`")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured questions (every policy's, full prefill's included; not the warm-up) to `file` (go tool pprof; focus on engine.(*Engine).PrefillChunks for chunk reuse)")
	htmlOut := fs.String("html", "", "write the report as an HTML page to `file`: the table and charts of quality against time to first token")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *kvFlag != "" {
		for _, s := range strings.Split(*kvFlag, ";") {
			if s = strings.TrimSpace(s); s != "" {
				if _, err := parseRecipe(s); err != nil {
					return err
				}
				c.Recipes = append(c.Recipes, s)
			}
		}
	}
	if c.ChunkMem, err = parseSize(*chunkMem); err != nil || c.ChunkMem <= 0 {
		return usagef("invalid value %q for --chunk-mem: must be a positive size such as 256MiB", *chunkMem)
	}
	c.Quality, c.Progress = !*timeOnly, stderr
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	var prof bench.Profiler
	if *cpuprofile != "" {
		c.Measuring = prof.Measuring
	}
	r, err := eval.RAG(ctx, e, c)
	if *cpuprofile != "" {
		if perr := writeFile(*cpuprofile, prof.Write); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return err
	}
	eval.WriteRAGTable(stdout, r, c.Quality)
	fmt.Fprintf(stderr, "rag: %.0f s\n", r.Seconds)
	if *htmlOut != "" {
		var b bytes.Buffer
		if err := eval.WriteRAGHTML(&b, r, c.Quality); err != nil {
			return fmt.Errorf("rag: the HTML report: %w", err)
		}
		if err := os.WriteFile(*htmlOut, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}
