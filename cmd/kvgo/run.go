package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval"
	"github.com/kvgo/kvgo/internal/units"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/sample"
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	path    string
	threads int
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.path, "m", "", "GGUF model `file` (default: the embedded kvgo-tiny model)")
	fs.IntVar(&m.threads, "t", 0, "worker `threads` (default: all cores)")
}

func (m *modelFlags) load() (*engine.Engine, error) {
	if m.threads < 0 {
		return nil, usagef("invalid value %d for -t: must be >= 0", m.threads)
	}
	return engine.Load(m.path, m.threads)
}

// ctxFlag registers --ctx and llama.cpp's spelling of it, -c, for one
// value.
func ctxFlag(fs *flag.FlagSet, def int, usage string) *int {
	n := fs.Int("ctx", def, usage)
	fs.IntVar(n, "c", def, "same as --ctx (llama.cpp's spelling)")
	return n
}

// f64 widens a float32 default to the float64 a flag shows, keeping its
// shortest decimal form (0.8, not 0.800000011920929).
func f64(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}

// parseRecipe parses --kv, turning recipe errors into usage errors.
func parseRecipe(s string) (*recipe.Recipe, error) {
	r, err := recipe.Parse(s)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return r, nil
}

func checkPrompt(p string) error {
	if !utf8.ValidString(p) {
		return usagef("the prompt is not valid UTF-8")
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "[-m FILE] -p PROMPT [-n N] [sampling flags]")
	var mf modelFlags
	mf.register(fs)
	prompt := fs.String("p", "", "prompt `text`")
	promptFile := fs.String("f", "", "read the prompt from `file`")
	n := fs.Int("n", 128, "tokens to generate (-1: until the context is full)")
	nctx := ctxFlag(fs, 0, "context size in tokens (default: the model's)")
	kvFlag := fs.String("kv", recipe.Default, "KV cache `recipe`, e.g. \"snapkv(budget=0.25)+kivi(bits=4)\" (see kvgo kv list)")
	d := sample.DefaultParams()
	temp := fs.Float64("temp", f64(d.Temperature), "sampling temperature (0 = greedy)")
	topK := fs.Int("top-k", d.TopK, "top-k sampling (0 = off)")
	topP := fs.Float64("top-p", f64(d.TopP), "top-p (nucleus) sampling (1 = off)")
	minP := fs.Float64("min-p", f64(d.MinP), "min-p sampling (0 = off)")
	rep := fs.Float64("repeat-penalty", f64(d.RepeatPenalty), "repetition penalty (1 = off)")
	repN := fs.Int("repeat-last-n", d.RepeatLastN, "tokens the repetition penalty looks back at")
	seed := fs.Uint64("seed", d.Seed, "random seed")
	ignoreEOS := fs.Bool("ignore-eos", false, "keep generating after an end-of-generation token")
	var chunkTexts textList
	fs.Var(&chunkTexts, "chunk", "a reusable chunk `text` (a RAG document) placed before the prompt; repeat for several")
	cf := addChunkFlags(fs, "64MiB")
	var of offloadFlags
	of.register(fs)
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q (the prompt goes after -p)", pos)
	}
	if *promptFile != "" {
		if *prompt != "" {
			return usagef("give the prompt with -p or -f, not both")
		}
		data, err := os.ReadFile(*promptFile)
		if err != nil {
			return err
		}
		*prompt = string(data)
	}
	if *prompt == "" {
		return usagef("a prompt is required (-p TEXT or -f FILE)")
	}
	if err := checkPrompt(*prompt); err != nil {
		return err
	}
	if *n < -1 {
		return usagef("invalid value %d for -n (want -1 or more)", *n)
	}
	rcp, err := parseRecipe(*kvFlag)
	if err != nil {
		return err
	}
	params := sample.Params{
		Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
		RepeatPenalty: float32(*rep), RepeatLastN: *repN, Seed: *seed,
	}
	if err := params.Validate(); err != nil {
		return usageError{err.Error()}
	}
	opts, err := of.options()
	if err != nil {
		return err
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	if opts != nil {
		// Without a writable directory, the cache may stay in memory
		// only if it fits the heap budget given to its pages.
		n, err := e.ContextFor(*nctx)
		if err != nil {
			return err
		}
		if err := of.apply(e, e.FullCacheBytes(n), opts.HotBytes, stderr); err != nil {
			return err
		}
	}
	// Refuse what cannot fit before tokenizing it (a 16 MB file cost
	// 1.25 GB): no token stands for more bytes than the longest.
	if n, err := e.ContextFor(*nctx); err == nil {
		if m := e.Tok.MinTokens(*prompt); m >= n {
			return fmt.Errorf("%w: the prompt has at least %d tokens (%d bytes), the context holds %d", engine.ErrContext, m, len(*prompt), n)
		}
	}
	ids, req, done, err := runChunks(e, rcp, chunkTexts, *prompt, cf)
	if err != nil {
		return err
	}
	defer done()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	dec := e.ContinuationDecoder(ids)
	st, err := e.Generate(ctx, engine.Request{
		Prompt: ids, MaxTokens: *n, Sampling: params, KV: rcp, Context: *nctx, Chunks: req.Chunks, Reuse: req.Reuse,
		StopAtEOG: !*ignoreEOS,
		OnToken: func(id int) error {
			out.WriteString(dec.Next(id))
			return out.Flush()
		},
	})
	out.WriteString(dec.Flush())
	out.WriteString("\n")
	out.Flush()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "prompt: %d tokens, %.1f tok/s | generated: %d tokens, %.1f tok/s | KV: %s = %.3fx of a full f16 cache (%s), peak %s | recipe %s\n",
		st.PromptTokens, rate(st.PromptTokens, st.PromptTime.Seconds()),
		st.GeneratedTokens, rate(st.GeneratedTokens, st.GenerateTime.Seconds()),
		units.Bytes(st.KVBytes), float64(st.KVBytes)/float64(max(st.FullKVBytes, 1)), units.Bytes(st.FullKVBytes),
		units.Bytes(st.PeakKVBytes), rcp)
	if e.Offload != nil {
		fmt.Fprintf(stderr, "KV cold tier: %s of pages in %s, %s of KV on the heap\n", units.Bytes(st.ColdKVBytes), e.Offload.Dir, units.Bytes(st.KVBytes))
	}
	if req.Reuse != nil {
		printReuse(stderr, st.Reuse)
	}
	return nil
}

func rate(n int, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

func cmdTokenize(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tokenize", "[-m FILE] TEXT")
	var mf modelFlags
	mf.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON array of ids")
	noBOS := fs.Bool("no-bos", false, "do not add BOS/EOS even if the model adds them")
	special := fs.Bool("parse-special", false, "match special-token text such as <s> in the input")
	pieces := fs.Bool("pieces", false, "print each id with its token text")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one TEXT argument, got %d", len(pos))
	}
	if err := checkPrompt(pos[0]); err != nil {
		return err
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	ids := e.Tok.Encode(pos[0], !*noBOS, *special)
	switch {
	case *asJSON:
		if ids == nil {
			ids = []int{}
		}
		b, _ := json.Marshal(ids)
		fmt.Fprintln(stdout, string(b))
	case *pieces:
		for _, id := range ids {
			fmt.Fprintf(stdout, "%6d %q\n", id, e.Tok.TokenText(id))
		}
	default:
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = fmt.Sprint(id)
		}
		fmt.Fprintln(stdout, strings.Join(s, " "))
	}
	return nil
}

func cmdPerplexity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("perplexity", "[-m FILE] -f TEXT_FILE [--ctx N]")
	var mf modelFlags
	mf.register(fs)
	file := fs.String("f", "", "text `file` to score")
	nctx := ctxFlag(fs, 512, "tokens per chunk")
	kvFlag := fs.String("kv", recipe.Default, "KV cache `recipe`, e.g. \"snapkv(budget=0.25)+kivi(bits=4)\" (see kvgo kv list)")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *file == "" {
		return usagef("a text file is required (-f FILE)")
	}
	rcp, err := parseRecipe(*kvFlag)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	text := strings.TrimSuffix(string(data), "\n") // llama-perplexity drops one trailing newline
	if !utf8.ValidString(text) {
		return fmt.Errorf("%s is not valid UTF-8", *file)
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	ids := e.Tok.Encode(text, true, false)
	fmt.Fprintf(stderr, "%d tokens, %d chunks of %d\n", len(ids), len(ids)/max(*nctx, 1), *nctx)
	r, err := eval.Perplexity(ctx, e, ids, *nctx, rcp, func(c int, ppl float64) {
		fmt.Fprintf(stderr, "[%d]%.4f,", c+1, ppl)
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Final estimate: PPL = %.4f +/- %.5f\n", r.PPL, r.StdErr)
	return nil
}
