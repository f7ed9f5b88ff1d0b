package engine

import "github.com/kvgo/kvgo/tokenizer"

// ContinuationDecoder returns a stream decoder that has already been fed
// prompt (its text discarded), so the tokens generated after the prompt
// decode as they do within the whole sequence: the first piece keeps its
// leading space, which a decoder strips at the start of a text as
// SentencePiece does, and a character split across the prompt's last
// token and the first generated one comes out whole.
func (e *Engine) ContinuationDecoder(prompt []int) *tokenizer.StreamDecoder {
	dec := e.Tok.NewStreamDecoder()
	for _, id := range prompt {
		dec.Next(id)
	}
	return dec
}
