package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// preTokenize returns the words of text under a preset (for tests).
func preTokenize(p *bpePreset, text string) []string {
	st := &splitText{cpts: decodeCpts(text, nil)}
	for _, r := range st.cpts {
		st.flags = append(st.flags, flagsOf(r))
	}
	var words []string
	for _, s := range p.split(st, new([2][]span)) {
		words = append(words, string(st.cpts[s.start:s.end]))
	}
	return words
}

func mustPreset(tb testing.TB, name string) *bpePreset {
	tb.Helper()
	p, err := lookupPreset(name)
	if err != nil {
		tb.Fatal(err)
	}
	return &p
}

// TestPreTokenizeReference compares every pre-tokenizer with
// testdata/pretokenize.json, produced by emulating llama.cpp's regex
// splitting with Python's backtracking regex engine (gen_pretokenize.py).
func TestPreTokenizeReference(t *testing.T) {
	data, err := os.ReadFile("testdata/pretokenize.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Texts   []string           `json:"texts"`
		Presets map[string][][]int `json:"presets"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Presets) < 10 {
		t.Fatalf("only %d presets in the reference", len(ref.Presets))
	}
	for name, want := range ref.Presets {
		t.Run(name, func(t *testing.T) {
			p := mustPreset(t, name)
			fails := 0
			for i, text := range ref.Texts {
				words := preTokenize(p, text)
				got := make([]int, len(words))
				for j, w := range words {
					got[j] = len([]rune(w))
				}
				if !slices.Equal(got, want[i]) {
					if fails++; fails <= 5 {
						t.Errorf("%q:\n got %q\nwant %q", text, words, splitLens(text, want[i]))
					}
				}
			}
			if fails > 0 {
				t.Errorf("%d/%d texts differ", fails, len(ref.Texts))
			}
		})
	}
}

func splitLens(text string, lens []int) []string {
	r := []rune(text)
	var out []string
	for _, n := range lens {
		out = append(out, string(r[:n]))
		r = r[n:]
	}
	return out
}

// TestPreTokenizeCases pins behaviour worth knowing, including places where
// llama.cpp's hand-written splitters are not what the regex would do.
func TestPreTokenizeCases(t *testing.T) {
	cases := []struct {
		pre  string
		text string
		want []string
	}{
		{"gpt-2", "Hello world", []string{"Hello", " world"}},
		{"gpt-2", "I've  been", []string{"I", "'ve", " ", " been"}},
		{"gpt-2", "x   ", []string{"x", "   "}},
		{"gpt-2", "a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"llama-bpe", "I'VE 12345 x", []string{"I", "'VE", " ", "123", "45", " x"}},
		{"llama-bpe", "a.\n\nb", []string{"a", ".\n\n", "b"}},
		{"llama-bpe", "  \n  x", []string{"  \n", " ", " x"}},
		{"qwen2", "12345", []string{"1", "2", "3", "4", "5"}},
		{"qwen2", "'Re ok", []string{"'Re", " ok"}},
		{"deepseek-coder", "foo(12)\n", []string{"foo", "(", "1", "2", ")", "\n"}},
		{"deepseek-llm", "ab 12  \n", []string{"ab", " ", "12", "  ", "\n"}},
		{"falcon", "1234567 !?", []string{"123", "456", "7", " ", "!?"}},
		{"starcoder", "x12", []string{"x", "1", "2"}},
		{"default", "abc, 123456", []string{"abc", ",", " ", "123", "456"}},
		{"bloom", "Hello, world!", []string{"Hello", ",", " world", "!"}},
		// A lone trailing space becomes its own word.
		{"llama-bpe", "a ", []string{"a", " "}},
		// Non-ASCII whitespace counts as \s (llama.cpp maps it to \v).
		{"deepseek-llm", "x\u3000!", []string{"x", "\u3000!"}},
		// DeepSeek's "CJK" class starts at U+0800 and takes CJK punctuation.
		{"deepseek-llm", "x\u3000。", []string{"x", "\u3000", "。"}},
	}
	for _, c := range cases {
		got := preTokenize(mustPreset(t, c.pre), c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %q: got %q want %q", c.pre, c.text, got, c.want)
		}
	}
}

func TestUnknownPre(t *testing.T) {
	_, err := lookupPreset("no-such-pre")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"no-such-pre", "llama-bpe", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexString(s, sub) >= 0 }
