package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kvgo/kvgo/convert/mla"
	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval"
	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/units"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/model"
)

const convertSynopsis = `--mla -m IN -o OUT --rank R --rope-dims D [--calib FILE] [--calib-tokens N] [--type f32|f16|same] [--freqfold F]
       kvgo convert --lowrank -m IN -o OUT --rank R [--calib FILE] [--calib-tokens N] [--type f32|f16|same]
       kvgo convert compare -m SOURCE --with "FILE1;FILE2" [--kv "R1;R2"] -f TEXT [--ctx N] [--chunks K]
       kvgo convert speed -m SOURCE --with "FILE1;FILE2" [-d 0,2048,8192] [-n 32] [-r 5]`

func cmdConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return cmdConvertCompare(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "speed" {
		return cmdConvertSpeed(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("convert", convertSynopsis)
	toMLA := fs.Bool("mla", false, "convert GQA attention to Multi-head Latent Attention (TransMLA), written in llama.cpp's deepseek2 layout")
	lowRank := fs.Bool("lowrank", false, "write the plain low-rank baseline instead (PCA of keys and of values, no RoRoPE)")
	var mf modelFlags
	mf.register(fs)
	out := fs.String("o", "", "output `file`")
	rank := fs.Int("rank", 0, "latent width r per token and layer (--lowrank: keys and values together)")
	ropeDims := fs.Int("rope-dims", 0, "dimensions of the shared rope key d_R (--mla)")
	calib := fs.String("calib", "", "calibration text `file` (.txt, or .jsonl prompts; default: built-in prose)")
	calibTokens := fs.Int("calib-tokens", 2048, "calibration tokens")
	typ := fs.String("type", "same", "type of the rewritten matrices: f32, f16, same (the source's)")
	freqFold := fs.Int("freqfold", 0, "RoPE frequencies per RoRoPE fold (0: search as TransMLA does)")
	noBKV := fs.Bool("no-bkv", false, "skip BKV, the key/value norm balancing before the joint PCA (ablation)")
	noRoRoPE := fs.Bool("no-rorope", false, "keep each frequency's highest-energy KV-head pairs rotary instead of RoRoPE's rotation (ablation; needs --freqfold 1)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected arguments %q", pos)
	case *toMLA == *lowRank:
		return usagef("say what to convert to: --mla or --lowrank")
	case *out == "":
		return usagef("an output file is required (-o FILE)")
	case *rank <= 0:
		return usagef("--rank must be positive")
	case *toMLA && *ropeDims <= 0:
		return usagef("--rope-dims must be positive")
	}
	if err := oneOf("type", *typ, "f32", "f16", "same"); err != nil {
		return err
	}
	text := ""
	if *calib != "" {
		if text, err = eval.ReadText(*calib); err != nil {
			return err
		}
	}
	src, err := mf.load()
	if err != nil {
		return err
	}
	defer src.Close()
	var prog *report.Progress
	if !*quiet {
		prog = report.NewProgress(stderr, 0, isTerminal(stderr))
	}
	var buf strings.Builder
	// Write to a temporary file and rename, so a failed conversion leaves
	// no half-written model behind.
	f, err := os.CreateTemp(dirOf(*out), ".kvgo-convert-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	var summary string
	if *toMLA {
		opt := mla.Options{Rank: *rank, RopeDims: *ropeDims, FreqFold: *freqFold, NoBKV: *noBKV, NoRoRoPE: *noRoRoPE,
			CalibText: text, CalibTokens: *calibTokens, Type: *typ, Log: &buf}
		if prog != nil {
			opt.Progress = prog
		}
		res, err := mla.Convert(src, opt, f)
		if err != nil {
			f.Close()
			return err
		}
		summary = mlaSummary(res, *rank, *ropeDims)
	} else {
		opt := mla.LowRankOptions{Rank: *rank, CalibText: text, CalibTokens: *calibTokens, Type: *typ}
		if prog != nil {
			opt.Progress = prog
		}
		rk, rv, err := mla.LowRank(src, opt, f)
		if err != nil {
			f.Close()
			return err
		}
		c := src.Model.Config
		summary = fmt.Sprintf("low rank: keys %d, values %d of %d each; a latent cache of %s per token (f16) against %s",
			rk, rv, c.KVHeads*c.HeadDim, units.Bytes(int64(c.Layers*(rk+rv)*2)), units.Bytes(int64(2*c.Layers*c.KVHeads*c.HeadDim*2)))
	}
	if prog != nil {
		prog.Done("converted", true)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), *out); err != nil {
		return err
	}
	fmt.Fprint(stderr, buf.String())
	fmt.Fprintf(stdout, "wrote %s: %s\n", *out, summary)
	return nil
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}

func mlaSummary(r mla.Result, rank, ropeDims int) string {
	var ratios []string
	for _, a := range r.Ratios {
		ratios = append(ratios, fmt.Sprintf("%.3g", a))
	}
	return fmt.Sprintf("MLA r=%d d_R=%d, freqfold %d, BKV ratios [%s], %d calibration tokens; KV cache (f16) %s per token, was %s (%.3fx)",
		rank, ropeDims, r.FreqFold, strings.Join(ratios, " "), r.CalibTokens,
		units.Bytes(r.LatentKV), units.Bytes(r.SourceKV), float64(r.LatentKV)/float64(r.SourceKV))
}

func cmdConvertCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert compare", `-m SOURCE --with "FILE1;FILE2" [--kv "R1;R2"] -f TEXT [--ctx N] [--chunks K]`)
	var mf modelFlags
	mf.register(fs)
	with := fs.String("with", "", "converted model `files` to compare with the source, separated by ;")
	kvFlag := fs.String("kv", "f16", "KV `recipes` for the converted models, separated by ;")
	file := fs.String("f", "", "text `file` (.txt, or .jsonl prompts)")
	nctx := ctxFlag(fs, 512, "tokens per chunk: the first half+1 is prefilled, the rest decoded and compared")
	chunks := fs.Int("chunks", 0, "at most this many chunks (0: all)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *with == "" || *file == "" {
		return usagef("--with FILES and -f TEXT are required")
	}
	var recipes []*recipe.Recipe
	for _, s := range strings.Split(*kvFlag, ";") {
		r, err := parseRecipe(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		recipes = append(recipes, r)
	}
	text, err := eval.ReadText(*file)
	if err != nil {
		return err
	}
	src, err := mf.load()
	if err != nil {
		return err
	}
	defer src.Close()
	var cands []mla.Candidate
	for _, path := range strings.Split(*with, ";") {
		path = strings.TrimSpace(path)
		e, err := engine.Load(path, mf.threads)
		if err != nil {
			return err
		}
		defer e.Close()
		latent := int64(0)
		if rk, err := e.File.Uint(mla.KeyLowRankK); err == nil {
			rv, _ := e.File.Uint(mla.KeyLowRankV)
			// A latent cache would hold the latents in f16 and, like the
			// MLA cache, 4 bytes of position per token in one stream per layer.
			latent = int64(e.Model.Config.Layers) * (int64(rk+rv)*2 + 4)
		}
		for _, r := range recipes {
			cands = append(cands, mla.Candidate{Label: path, Engine: e, Recipe: r, LatentKV: latent})
		}
	}
	var prog *report.Progress
	var p mla.Progress
	if !*quiet {
		prog = report.NewProgress(stderr, 0, isTerminal(stderr))
		p = prog
	}
	rows, err := mla.Compare(ctx, src, cands, src.Tok.Encode(text, true, false), *nctx, *chunks, p)
	if prog != nil {
		prog.Done("compared", err == nil)
	}
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return errors.New("nothing compared")
	}
	fmt.Fprintf(stdout, "source %s: PPL %.4f over %d positions, KV %.0f B/token (f16, measured)\n\n", src.Source, rows[0].SourcePPL, rows[0].Positions, rows[0].SourceKVPerToken)
	fmt.Fprintln(stdout, "| model | recipe | PPL | ΔPPL | mean KLD | p99 KLD | top-1 | KV B/token | KV/source |")
	fmt.Fprintln(stdout, "|---|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		kvs := fmt.Sprintf("%.0f", r.KVPerToken)
		if r.Computed {
			kvs += " (latent, computed)"
		}
		fmt.Fprintf(stdout, "| %s | %s | %.4f | %+.2f%% | %.5f | %.4f | %.4f | %s | %.3f |\n",
			r.Label, r.Recipe, r.PPL, 100*(r.PPL/r.SourcePPL-1), r.MeanKLD, r.P99KLD, r.Top1, kvs, r.KVPerToken/r.SourceKVPerToken)
	}
	return nil
}

// convertedRows adds kvgo info's rows for latent attention and for files
// kvgo convert wrote: the MLA fields, and the KV bytes per token of the
// source beside the converted model's.
func convertedRows(w *tabWriter, f *gguf.File, d model.Description) {
	c := d.Config
	if c.IsMLA() {
		q := "one attn_q"
		if c.QLoraRank > 0 {
			q = fmt.Sprintf("q-LoRA rank %d", c.QLoraRank)
		}
		w.row("attention", fmt.Sprintf("MLA: latent %d + rope key %d cached per token and layer; per head q/k %d (%d position-free + %d rope), v %d; %s, kv_a norm %v, biases %v",
			c.KVLoraRank, c.RopeDims, c.HeadDim, c.NopeDim, c.RopeDims, c.ValueHeadDim, q, c.KVANorm, c.MLABias))
	}
	var srcKV int64
	var from string
	if arch, err := f.String(mla.KeySourceArch); err == nil {
		heads, _ := f.Uint(mla.KeySourceKVHeads)
		dim, _ := f.Uint(mla.KeySourceHeadDim)
		ff, _ := f.Uint(mla.KeyFreqFold)
		n, _ := f.Uint(mla.KeyCalibTokens)
		srcKV = int64(2 * c.Layers * int(heads) * int(dim) * 2)
		from = fmt.Sprintf("%s, %d KV heads x %d (TransMLA, freqfold %d, %d calibration tokens)", arch, heads, dim, ff, n)
	}
	if rk, err := f.Uint(mla.KeyLowRankK); err == nil {
		rv, _ := f.Uint(mla.KeyLowRankV)
		srcKV = d.KVBytesPerToken
		lat := int64(c.Layers) * int64(rk+rv) * 2
		from = fmt.Sprintf("low-rank keys %d + values %d per layer: a latent cache would hold %s per token (%.3fx); this file runs with the reconstructed full-width cache", rk, rv, units.Bytes(lat), float64(lat)/float64(srcKV))
	}
	if from == "" {
		return
	}
	w.row("converted from", from)
	if c.IsMLA() && srcKV > 0 {
		w.row("kv before/after", fmt.Sprintf("%s per token before, %s after (%.3fx)", units.Bytes(srcKV), units.Bytes(d.KVBytesPerToken), float64(d.KVBytesPerToken)/float64(srcKV)))
	}
}

func cmdConvertSpeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert speed", `-m SOURCE --with "FILE1;FILE2" [-d 0,2048,8192] [-n 32] [-r 5]`)
	var mf modelFlags
	mf.register(fs)
	with := fs.String("with", "", "converted model `files`, separated by ;")
	depthFlag := fs.String("d", "0,2048,8192", "comma-separated context `depths`")
	n := fs.Int("n", 32, "decoded tokens per model and repetition")
	reps := fs.Int("r", 5, "repetitions (after one untimed)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *with == "" || *n < 1 || *reps < 1 {
		return usagef("--with FILES is required; -n and -r must be positive")
	}
	var depths []int
	for _, f := range strings.Split(*depthFlag, ",") {
		var d int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &d); err != nil || d < 0 {
			return usagef("-d: %q is not a depth", f)
		}
		depths = append(depths, d)
	}
	src, err := mf.load()
	if err != nil {
		return err
	}
	defer src.Close()
	engines, labels := []*engine.Engine{src}, []string{src.Source}
	for _, path := range strings.Split(*with, ";") {
		e, err := engine.Load(strings.TrimSpace(path), mf.threads)
		if err != nil {
			return err
		}
		defer e.Close()
		engines, labels = append(engines, e), append(labels, strings.TrimSpace(path))
	}
	var prog *report.Progress
	var p mla.Progress
	if !*quiet {
		prog = report.NewProgress(stderr, 0, isTerminal(stderr))
		p = prog
	}
	rows, err := mla.Speed(ctx, engines, labels, depths, *n, *reps, p)
	if prog != nil {
		prog.Done("measured", err == nil)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "| model | depth | tok/s | vs source | weights read/token | KV read/token | attention MAC/token |")
	fmt.Fprintln(stdout, "|---|--:|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		fmt.Fprintf(stdout, "| %s | %d | %.2f | %.3f | %s | %s | %.1fM |\n", r.Label, r.Depth, r.TokPerSec, r.VsFirst,
			units.Bytes(r.WeightBytes), units.Bytes(r.KVBytes), float64(r.AttnMACs)/1e6)
	}
	return nil
}
