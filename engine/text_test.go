package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/internal/golden"
)

// The text a continuation decoder gives for generated tokens is the text
// they add to the whole sequence, leading space included, piece by piece.
func TestContinuationDecoder(t *testing.T) {
	e, err := Load(golden.Path(t, "models/stories260K.gguf"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	prompt := e.Tok.Encode("Once upon a time, there was", true, false)
	dec := e.ContinuationDecoder(prompt)
	var ids []int
	var text strings.Builder
	_, err = e.Generate(context.Background(), Request{Prompt: prompt, MaxTokens: 24, OnToken: func(id int) error {
		ids = append(ids, id)
		text.WriteString(dec.Next(id))
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	text.WriteString(dec.Flush())
	whole := e.Tok.Decode(append(append([]int(nil), prompt...), ids...), true)
	before := e.Tok.Decode(prompt, true)
	if !strings.HasPrefix(whole, before) || text.String() != whole[len(before):] {
		t.Errorf("continuation %q, want %q (the whole sequence %q after the prompt %q)", text.String(), strings.TrimPrefix(whole, before), whole, before)
	}
	if !strings.HasPrefix(text.String(), " ") {
		t.Errorf("continuation %q lost its leading space", text.String())
	}
}
