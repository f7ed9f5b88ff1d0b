package tasks

import (
	"reflect"
	"strings"
	"testing"
)

// byteTokens is a stand-in tokenizer: one token per 4 bytes, plus BOS for
// a prompt. Real tokenizers are exercised by the eval package's tests.
type byteTokens struct{}

func (byteTokens) PromptTokens(s string) int { return 1 + (len(s)+3)/4 }
func (byteTokens) AnswerTokens(s string) int { return (len(s) + 3) / 4 }

func TestGenerateEveryTask(t *testing.T) {
	spec := Spec{Seed: 7, Tasks: Names(), Lengths: []int{256, 1024}, Depths: []float64{0, 0.5, 1}, Cases: 2}
	cases, err := Generate(spec, byteTokens{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 5*2*3*2 {
		t.Fatalf("%d cases", len(cases))
	}
	for i, c := range cases {
		tok := byteTokens{}
		if c.Line != i+1 {
			t.Errorf("case %d has line %d", i, c.Line)
		}
		if got := tok.PromptTokens(c.Prompt); got != c.PromptTokens {
			t.Errorf("line %d: prompt_tokens %d, measured %d", c.Line, c.PromptTokens, got)
		}
		if c.PromptTokens+tok.AnswerTokens(" "+c.Answer) > c.ContextTokens {
			t.Errorf("line %d: %d prompt tokens + answer exceed %d", c.Line, c.PromptTokens, c.ContextTokens)
		}
		if c.PromptTokens < c.ContextTokens*8/10 {
			t.Errorf("line %d: only %d of %d tokens used", c.Line, c.PromptTokens, c.ContextTokens)
		}
		if c.Depth == nil || *c.Depth < 0 || *c.Depth > 1 {
			t.Errorf("line %d: depth %v", c.Line, c.Depth)
		}
		for _, a := range c.Targets() {
			if !strings.Contains(c.Prompt, a) {
				t.Errorf("line %d: the answer %q is not in the prompt", c.Line, a)
			}
		}
		if !strings.Contains(c.Prompt, "\nAnswer: ") {
			t.Errorf("line %d: no answer prefix: %q", c.Line, c.Prompt[max(0, len(c.Prompt)-80):])
		}
		if s, _ := Score(&c, " "+c.Answer); s != 1 {
			t.Errorf("line %d: the expected continuation scores %v", c.Line, s)
		}
	}
	// The needle goes where it was asked, to within a haystack unit.
	for _, c := range cases {
		if c.ContextTokens == 1024 && c.Task == "passkey" {
			want := []float64{0, 0.5, 1}[(c.Line-1)/2%3]
			if d := *c.Depth - want; d < -0.1 || d > 0.1 {
				t.Errorf("line %d: depth %v, asked for %v", c.Line, *c.Depth, want)
			}
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	spec := Spec{Seed: 3, Tasks: []string{"passkey", "vt"}, Lengths: []int{256}, Depths: []float64{0.25, 0.75}, Cases: 1}
	a, err := Generate(spec, byteTokens{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(spec, byteTokens{})
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed made different suites")
	}
	// Adding a length leaves the existing cases as they were.
	spec2 := spec
	spec2.Lengths = []int{256, 512}
	c, _ := Generate(spec2, byteTokens{})
	for _, x := range a {
		found := false
		for _, y := range c {
			if y.Prompt == x.Prompt && y.Answer == x.Answer {
				found = true
			}
		}
		if !found {
			t.Errorf("line %d changed when a length was added", x.Line)
		}
	}
	spec3 := spec
	spec3.Seed = 4
	d, _ := Generate(spec3, byteTokens{})
	if d[0].Prompt == a[0].Prompt {
		t.Error("another seed made the same case")
	}
}

func TestGenerateHaystacks(t *testing.T) {
	for _, h := range []string{HaystackNoise, HaystackProse} {
		cs, err := Generate(Spec{Seed: 1, Tasks: []string{"passkey"}, Lengths: []int{512}, Depths: []float64{0.5}, Cases: 1, Haystack: h}, byteTokens{})
		if err != nil {
			t.Fatal(err)
		}
		noise := strings.Count(cs[0].Prompt, "The grass is green.")
		if (h == HaystackNoise) != (noise > 3) {
			t.Errorf("%s haystack has %d noise blocks", h, noise)
		}
	}
}

func TestGenerateRejects(t *testing.T) {
	bad := []struct {
		spec Spec
		want string
	}{
		{Spec{Tasks: []string{"sudoku"}, Lengths: []int{256}, Depths: []float64{0}, Cases: 1}, `unknown task "sudoku"`},
		{Spec{Tasks: []string{"passkey"}, Lengths: []int{8}, Depths: []float64{0}, Cases: 1}, "too short"},
		{Spec{Tasks: []string{"passkey"}, Lengths: []int{256}, Depths: []float64{2}, Cases: 1}, "outside 0..1"},
		{Spec{Tasks: []string{"passkey"}, Lengths: []int{256}, Depths: []float64{0}, Cases: 0}, "at least 1"},
		{Spec{Tasks: []string{"multivalue"}, Lengths: []int{40}, Depths: []float64{0}, Cases: 1}, "use a longer length"},
		{Spec{Tasks: []string{"passkey"}, Lengths: []int{256}, Depths: []float64{0}, Cases: 1, Haystack: "sand"}, "unknown haystack"},
	}
	for _, b := range bad {
		if _, err := Generate(b.spec, byteTokens{}); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want %q", b.spec, err, b.want)
		}
	}
	if _, err := ParseNames("passkey,nope"); err == nil {
		t.Error("ParseNames accepted an unknown task")
	}
	if n, err := ParseNames("all"); err != nil || len(n) != 5 {
		t.Errorf("all: %v %v", n, err)
	}
}
