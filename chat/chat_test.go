package chat

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/defaultmodel"
	"github.com/kvgo/kvgo/tokenizer"
)

var conversation = []Message{
	{Role: "system", Content: "You are terse."},
	{Role: "user", Content: "Hi"},
	{Role: "assistant", Content: "Hello."},
	{Role: "user", Content: "What is a KV cache?"},
}

func TestFallback(t *testing.T) {
	tm, err := New("", "<s>", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.Render(conversation, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "You are terse.\n\nUser: Hi\nAssistant: Hello.\nUser: What is a KV cache?\nAssistant:"
	if got != want {
		t.Errorf("fallback:\n got %q\nwant %q", got, want)
	}
	if tm.Name() != Fallback || tm.ParseSpecial() || len(tm.Stops()) != 1 {
		t.Errorf("fallback name %q, parse special %v, stops %q", tm.Name(), tm.ParseSpecial(), tm.Stops())
	}
	if got, _ := tm.Render(conversation[:2], false); strings.HasSuffix(got, "Assistant:") {
		t.Errorf("no generation prompt asked, got %q", got)
	}
}

// The embedded model has no template, so it gets the fallback.
func TestFromGGUFWithoutTemplate(t *testing.T) {
	f, err := gguf.Parse(defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := FromGGUF(f, tok)
	if err != nil {
		t.Fatal(err)
	}
	if tm.Name() != Fallback || tm.BOS() != "<s>" {
		t.Errorf("name %q, bos %q", tm.Name(), tm.BOS())
	}
}

// Templates of real model families, as shipped in their GGUF files.
var templates = map[string]struct {
	src, bos, want string
}{
	"llama3": {
		src: `{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}`,
		bos: "<|begin_of_text|>",
		want: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
			"<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is a KV cache?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
	},
	"chatml": {
		src: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
		want: "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n" +
			"<|im_start|>user\nWhat is a KV cache?<|im_end|>\n<|im_start|>assistant\n",
	},
	"mistral": {
		src:  `{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}`,
		bos:  "<s>",
		want: "<s>[INST] Hi [/INST]Hello.</s>[INST] What is a KV cache? [/INST]",
	},
}

func TestJinjaTemplates(t *testing.T) {
	for name, tc := range templates {
		t.Run(name, func(t *testing.T) {
			tm, err := New(tc.src, tc.bos, "</s>")
			if err != nil {
				t.Fatal(err)
			}
			msgs := conversation
			if name == "mistral" {
				msgs = conversation[1:]
			}
			got, err := tm.Render(msgs, true)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
			if !tm.ParseSpecial() || tm.Stops() != nil || tm.Name() != "jinja" {
				t.Errorf("jinja template: parse special %v, stops %q", tm.ParseSpecial(), tm.Stops())
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	if _, err := New("{% if %}", "", ""); err == nil {
		t.Error("a syntax error compiled")
	}
	tm, err := New(templates["mistral"].src, "<s>", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	// The template raises on a conversation that starts with the assistant.
	_, err = tm.Render([]Message{{Role: "assistant", Content: "x"}}, true)
	if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), "alternate") {
		t.Errorf("raise_exception: %v", err)
	}
}

// Phi-3's vocabulary file in ../shared carries a real chat template.
func TestSharedVocabTemplate(t *testing.T) {
	path := "../../shared/vocab/ggml-vocab-phi-3.gguf"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not available: %v", path, err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := FromGGUF(f, tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.Render(conversation[1:], true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<|user|>", "Hi", "<|assistant|>", "Hello.", "What is a KV cache?"} {
		if !strings.Contains(got, want) {
			t.Errorf("phi-3 rendering %q lacks %q", got, want)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(got), "<|assistant|>") {
		t.Errorf("phi-3 rendering %q does not end with the generation prompt", got)
	}
	ids := tok.Encode(got, false, tm.ParseSpecial())
	if len(ids) == 0 {
		t.Fatal("no tokens")
	}
}
