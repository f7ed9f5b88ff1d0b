package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/synth"
)

func cmdGen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", "--shape NAME --type TYPE -o FILE")
	shape := fs.String("shape", "tiny", "model shape: "+strings.Join(synth.ShapeNames(), ", "))
	typName := fs.String("type", "f16", "weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k")
	out := fs.String("o", "", "output `file`")
	seed := fs.Uint64("seed", 1, "random seed")
	nctx := fs.Int("context", 0, "context length written to the model (0: the shape's own); random weights have no trained length, so a longer context lets a small shape stand for long-context runs (the cold tier's RSS test uses smollm2-135m at 32768)")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *out == "" {
		return usagef("an output file is required (-o FILE)")
	}
	s, err := synth.Lookup(*shape)
	if err != nil {
		return usageError{err.Error()}
	}
	if *nctx < 0 {
		return usagef("invalid value %d for --context (want 0 or more)", *nctx)
	}
	if *nctx > 0 {
		s.Context = *nctx
	}
	typ, err := gguf.ParseTensorType(*typName)
	supported := false
	for _, t := range synth.WeightTypes {
		supported = supported || (err == nil && t == typ)
	}
	if !supported {
		var names []string
		for _, t := range synth.WeightTypes {
			names = append(names, strings.ToLower(t.String()))
		}
		return usagef("unknown weight type %q (valid: %s)", *typName, strings.Join(names, ", "))
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := synth.Generate(f, s, typ, *seed); err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s shape, %s weights, random values (seed %d)\n", *out, s.Name, typ, *seed)
	return nil
}
