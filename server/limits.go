package server

import (
	"fmt"
	"unicode/utf8"
)

// Limits on what a request may cost before it is refused, and on what an
// error may quote of it.

// maxQuoted bounds how much of a client's string an error quotes (a model
// name, a role, a content part's type), as kv/recipe and gguf do.
const maxQuoted = 80

// maxMessage bounds an error message whatever it quotes (a template's
// error, a wrapped scheduler error).
const maxMessage = 1024

// quote quotes s for an error message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q... (%d bytes)", s[:maxQuoted], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// clip cuts an error message to maxMessage bytes, at a character boundary.
func clip(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}

// checkLength refuses a text that cannot fit the context before it is
// tokenized: no token stands for more bytes than the vocabulary's
// longest, so the byte length bounds the token count from below
// (tokenizer.MinTokens). Tokenizing a 4 MB prompt only to refuse it cost
// about 180 MB and 5 s.
func (s *Server) checkLength(param, text string) *apiError {
	ctx := s.sch.Context()
	if n := s.eng.Tok.MinTokens(text); n >= ctx {
		return invalid(param, "context_length_exceeded",
			"this model's maximum context length is %d tokens; the %s has at least %d tokens (%d bytes)", ctx, param, n, len(text))
	}
	return nil
}

// checkTokens refuses token ids outside the vocabulary.
func (s *Server) checkTokens(param string, ids []int) *apiError {
	vocab := s.eng.Model.Vocab
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return invalid(param, "invalid_value", "%s[%d]: token %d is outside the vocabulary [0, %d)", param, i, id, vocab)
		}
	}
	return nil
}

// maxTokens resolves a request's max_tokens against a prompt of n tokens
// in a context of ctx: the default when absent (capped by the room left),
// else the value, which must fit. No sum is formed, so no value wraps.
func (s *Server) maxTokens(param string, v *int, n int) (int, *apiError) {
	ctx := s.sch.Context()
	room := ctx - n // n < ctx: checked before
	if v == nil {
		return min(s.cfg.DefaultMaxTokens, room), nil
	}
	switch m := *v; {
	case m < 1:
		return 0, invalid(param, "invalid_value", "%s %d must be at least 1", param, m)
	case m > room:
		return 0, invalid(param, "context_length_exceeded",
			"this model's maximum context length is %d tokens; the prompt has %d tokens, which leaves %d for the completion, not %d", ctx, n, room, m)
	default:
		return m, nil
	}
}

// maxStopBytes bounds a stop string: the text that could still become one
// is held back and searched at every token, so a 100 KB stop string cost
// quadratic time in the length of the reply.
const maxStopBytes = 512

func checkStops(stops []string) ([]string, *apiError) {
	for i, s := range stops {
		if len(s) > maxStopBytes {
			return nil, invalid("stop", "invalid_value", "stop[%d]: %d bytes; a stop sequence may have at most %d", i, len(s), maxStopBytes)
		}
	}
	return stops, nil
}
