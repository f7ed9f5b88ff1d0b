// Package chat turns a conversation into the prompt text a model was
// trained on. A GGUF file carries its chat template as Jinja source under
// tokenizer.chat_template (the Hugging Face convention); it is rendered
// with github.com/ardanlabs/jinja, a pure-Go Jinja engine written for these
// templates. Models without a template (base models such as kvgo-tiny and
// stories260K) get the plain transcript format of Fallback.
package chat

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/tokenizer"
)

// TemplateKey is the GGUF metadata key of the chat template.
const TemplateKey = "tokenizer.chat_template"

// Message is one turn of a conversation.
type Message struct {
	Role    string
	Content string
}

// Template renders conversations for one model. It is safe for concurrent
// use.
type Template struct {
	src      string // Jinja source; "" for the fallback format
	tmpl     *jinja.Template
	bos, eos string
}

// Fallback is the format used when a model has no chat template: a system
// message as a paragraph of its own, then one line per turn, and the
// generation prompt "Assistant:".
//
//	{system}
//
//	User: {content}
//	Assistant: {content}
//	User: {content}
//	Assistant:
//
// A base model continues such a transcript with the next turns, so the
// fallback comes with the stop string "\nUser:" (see Stops).
const Fallback = "fallback"

// New compiles a Jinja chat template; source "" selects the fallback
// format. bos and eos are the texts of the model's BOS and EOS tokens,
// which templates refer to as bos_token and eos_token.
func New(source, bos, eos string) (*Template, error) {
	t := &Template{src: source, bos: bos, eos: eos}
	if source == "" {
		return t, nil
	}
	tm, err := jinja.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("chat: compiling the chat template: %w", err)
	}
	t.tmpl = tm
	return t, nil
}

// FromGGUF compiles the template of a model file, or the fallback when the
// file has none.
func FromGGUF(f *gguf.File, tok *tokenizer.Tokenizer) (*Template, error) {
	var src string
	if f.Has(TemplateKey) {
		s, err := f.String(TemplateKey)
		if err != nil {
			return nil, fmt.Errorf("chat: %w", err)
		}
		src = s
	}
	return New(src, tokenText(tok, tok.BOS()), tokenText(tok, tok.EOS()))
}

func tokenText(tok *tokenizer.Tokenizer, id int) string {
	if id < 0 || id >= tok.VocabSize() {
		return ""
	}
	return tok.TokenText(id)
}

// Name says which format the template uses: "jinja" or Fallback.
func (t *Template) Name() string {
	if t.tmpl == nil {
		return Fallback
	}
	return "jinja"
}

// Source is the Jinja source ("" for the fallback).
func (t *Template) Source() string { return t.src }

// BOS is the text of the BOS token. A rendered prompt that starts with it
// must not get another BOS when tokenized.
func (t *Template) BOS() string { return t.bos }

// Stops are stop strings the format needs in addition to the model's
// end-of-generation tokens.
func (t *Template) Stops() []string {
	if t.tmpl == nil {
		return []string{"\nUser:"}
	}
	return nil
}

// ParseSpecial says whether the rendered prompt should be tokenized with
// special-token parsing: a Jinja template writes special tokens such as
// <|im_start|> as text; the fallback has none, so user text that looks
// like a special token stays text.
func (t *Template) ParseSpecial() bool { return t.tmpl != nil }

// ErrTemplate marks a rendering failure that the conversation caused
// (e.g. a template's raise_exception on roles that do not alternate).
var ErrTemplate = errors.New("chat template")

// Render formats messages; with addGenerationPrompt the text ends where
// the assistant's reply begins.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (out string, err error) {
	if t.tmpl == nil {
		return renderFallback(msgs, addGenerationPrompt), nil
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	defer func() {
		// A third-party engine on user-controlled input: a panic in it is
		// a failed render, not a failed server.
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("%w: rendering panicked: %v", ErrTemplate, r)
		}
	}()
	out, err = t.tmpl.Render(map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             t.bos,
		"eos_token":             t.eos,
	})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrTemplate, err)
	}
	return out, nil
}

func renderFallback(msgs []Message, addGenerationPrompt bool) string {
	var b strings.Builder
	for _, m := range msgs {
		switch m.Role {
		case "system", "developer":
			b.WriteString(m.Content)
			b.WriteString("\n\n")
		case "user":
			b.WriteString("User: ")
			b.WriteString(m.Content)
			b.WriteString("\n")
		case "assistant":
			b.WriteString("Assistant: ")
			b.WriteString(m.Content)
			b.WriteString("\n")
		default:
			b.WriteString(capitalize(m.Role))
			b.WriteString(": ")
			b.WriteString(m.Content)
			b.WriteString("\n")
		}
	}
	if addGenerationPrompt {
		b.WriteString("Assistant:")
	}
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
