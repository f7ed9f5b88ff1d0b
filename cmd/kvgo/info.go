package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/units"
	"github.com/kvgo/kvgo/model"
)

func cmdInfo(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("info", "FILE")
	meta := fs.Bool("meta", false, "also print every metadata key")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one GGUF file, got %d arguments", len(pos))
	}
	f, err := gguf.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	w := &tabWriter{w: stdout}
	w.row("file", pos[0])
	w.row("gguf version", fmt.Sprint(f.Version))
	arch, _ := f.String("general.architecture")
	w.row("architecture", arch)
	if name, err := f.String("general.name"); err == nil {
		w.row("name", name)
	}
	cfg, cfgErr := model.ReadConfig(f)
	if cfgErr == nil {
		w.row("layers", fmt.Sprint(cfg.Layers))
		w.row("embedding", fmt.Sprint(cfg.Embd))
		w.row("heads / kv heads", fmt.Sprintf("%d / %d (head dim %d)", cfg.Heads, cfg.KVHeads, cfg.HeadDim))
		w.row("feed-forward", fmt.Sprint(cfg.FFN))
		w.row("vocab", fmt.Sprint(cfg.Vocab))
		w.row("context length", fmt.Sprint(cfg.ContextLen))
		rope := fmt.Sprintf("base %g, %d dims", cfg.RopeBase, cfg.RopeDims)
		if _, ok := f.Tensor("rope_freqs.weight"); ok {
			rope += ", llama3 frequency factors"
		}
		if cfg.RopeScaling == "linear" {
			rope += fmt.Sprintf(", linear scaling x%g", cfg.RopeFactor)
		}
		w.row("rope", rope)
		kvPerTok := 2 * cfg.Layers * cfg.KVHeads * cfg.HeadDim * 2
		w.row("kv cache (f16)", fmt.Sprintf("%s per token, %s at full context", units.Bytes(int64(kvPerTok)), units.Bytes(int64(kvPerTok)*int64(cfg.ContextLen))))
	} else {
		w.row("model", "cannot run: "+cfgErr.Error())
	}
	w.row("parameters", units.Params(model.ParamCount(f)))
	types := map[string]int{}
	for _, t := range f.Tensors {
		types[t.Type.String()]++
	}
	var ts []string
	for t, n := range types {
		ts = append(ts, fmt.Sprintf("%s x%d", t, n))
	}
	sort.Strings(ts)
	w.row("tensors", fmt.Sprintf("%d (%s)", len(f.Tensors), strings.Join(ts, ", ")))
	w.row("file size", units.Bytes(int64(f.Size())))
	tm, _ := f.String("tokenizer.ggml.model")
	pre, _ := f.String("tokenizer.ggml.pre")
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	tokDesc := fmt.Sprintf("%s, %d tokens", tm, len(toks))
	if pre != "" {
		tokDesc += ", pre-tokenizer " + pre
	}
	w.row("tokenizer", tokDesc)
	_, hasTmpl := f.Lookup("tokenizer.chat_template")
	w.row("chat template", map[bool]string{true: "present", false: "absent"}[hasTmpl])
	if *meta {
		fmt.Fprintln(stdout, "\nmetadata:")
		for _, kv := range f.Metadata {
			fmt.Fprintf(stdout, "  %s = %s\n", kv.Key, kv.Value.Format(16))
		}
	}
	return nil
}

type tabWriter struct{ w io.Writer }

func (t *tabWriter) row(k, v string) { fmt.Fprintf(t.w, "%-18s %s\n", k+":", v) }

// bytesString is units.Bytes under the name cmd/kvgo's files used before
// the formatter moved to internal/units (convert.go, being written, still
// spells it so).
func bytesString(n int64) string { return units.Bytes(n) }
