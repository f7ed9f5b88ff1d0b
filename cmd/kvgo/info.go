package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/units"
	"github.com/kvgo/kvgo/model"
)

func cmdInfo(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("info", "FILE | -m FILE")
	meta := fs.Bool("meta", false, "also print every metadata key")
	file := fs.String("m", "", "GGUF model `file` (as the other commands take it)")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if *file != "" {
		pos = append(pos, *file)
	}
	if len(pos) != 1 {
		return usagef("want exactly one GGUF file, got %d", len(pos))
	}
	f, err := gguf.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	d := model.Describe(f)
	w := &tabWriter{w: stdout}
	w.row("file", pos[0])
	w.row("gguf version", fmt.Sprint(d.Version))
	w.row("architecture", d.Arch)
	if d.HasName {
		w.row("name", d.Name)
	}
	if cfg := d.Config; d.ConfigErr == nil {
		w.row("layers", fmt.Sprint(cfg.Layers))
		w.row("embedding", fmt.Sprint(cfg.Embd))
		w.row("heads / kv heads", fmt.Sprintf("%d / %d (head dim %d)", cfg.Heads, cfg.KVHeads, cfg.HeadDim))
		w.row("feed-forward", fmt.Sprint(cfg.FFN))
		w.row("vocab", fmt.Sprint(cfg.Vocab))
		w.row("context length", fmt.Sprint(cfg.ContextLen))
		rope := fmt.Sprintf("base %g, %d dims", cfg.RopeBase, cfg.RopeDims)
		if d.RopeFreqFactors {
			rope += ", llama3 frequency factors"
		}
		if cfg.RopeScaling == "linear" {
			rope += fmt.Sprintf(", linear scaling x%g", cfg.RopeFactor)
		}
		w.row("rope", rope)
		perTok := d.KVBytesPerToken + d.PositionBytesPerToken
		w.row("kv cache (f16)", fmt.Sprintf("%s per token (%s of keys and values, %s of positions), %s at full context",
			units.Bytes(perTok), units.Bytes(d.KVBytesPerToken), units.Bytes(d.PositionBytesPerToken), units.Bytes(perTok*int64(cfg.ContextLen))))
		convertedRows(w, f, d)
	} else {
		w.row("model", "cannot run: "+d.ConfigErr.Error())
	}
	w.row("parameters", units.Params(d.Params))
	var ts []string
	for _, tc := range d.TensorTypes {
		ts = append(ts, fmt.Sprintf("%s x%d", tc.Type, tc.Count))
	}
	w.row("tensors", fmt.Sprintf("%d (%s)", d.Tensors, strings.Join(ts, ", ")))
	w.row("file size", units.Bytes(d.FileSize))
	tokDesc := fmt.Sprintf("%s, %d tokens", d.Tokenizer, d.Tokens)
	if d.PreTokenizer != "" {
		tokDesc += ", pre-tokenizer " + d.PreTokenizer
	}
	w.row("tokenizer", tokDesc)
	w.row("chat template", map[bool]string{true: "present", false: "absent"}[d.ChatTemplate])
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
