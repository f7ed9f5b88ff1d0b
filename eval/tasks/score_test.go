package tasks

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestScoreHandWritten pins the documented rule (docs/EVAL.md) on
// hand-written continuations: containment anywhere, exact case, the
// fraction of targets for multi-answer tasks, 0 for an empty output.
func TestScoreHandWritten(t *testing.T) {
	passkey := &Case{Task: "passkey", Answer: "17684", Answers: []string{"17684"}}
	answerOnly := &Case{Task: "custom", Answer: "Paris"}
	vt := &Case{Task: "vt", Answer: "FHZTI TZGHU IBNZR", Answers: []string{"FHZTI", "TZGHU", "IBNZR"}}
	mv := &Case{Task: "multivalue", Answer: "151373, 233395, 431892, 318350", Answers: []string{"151373", "233395", "431892", "318350"}}
	cases := []struct {
		name  string
		c     *Case
		out   string
		score float64
		found int
	}{
		{"exact continuation", passkey, " 17684", 1, 1},
		{"contained later", passkey, " is 17684. Remember it.", 1, 1},
		{"no leading space", passkey, "17684", 1, 1},
		{"prefix only", passkey, " 1768", 0, 0},
		{"wrong number", passkey, " 17685", 0, 0},
		{"digits split by a space", passkey, " 176 84", 0, 0},
		{"inside a longer number still counts", passkey, " 9176849", 1, 1},
		{"empty output", passkey, "", 0, 0},
		{"whitespace output", passkey, "   ", 0, 0},
		{"answer without answers list", answerOnly, " Paris, France", 1, 1},
		{"case-sensitive", answerOnly, " paris", 0, 0},
		{"all variables", vt, " FHZTI TZGHU IBNZR", 1, 3},
		{"two of three variables", vt, " FHZTI IBNZR", 2.0 / 3, 2},
		{"variables in another order", vt, " IBNZR, TZGHU and FHZTI", 1, 3},
		{"lower-case variables", vt, " fhzti tzghu ibnzr", 0, 0},
		{"one of four values", mv, " 233395, 999999", 0.25, 1},
		{"three of four values", mv, " 151373, 233395, 431892", 0.75, 3},
		{"all values", mv, " 151373, 233395, 431892, 318350", 1, 4},
		{"multi-answer empty output", mv, "", 0, 0},
	}
	for _, c := range cases {
		score, found := Score(c.c, c.out)
		if score != c.score || found != c.found {
			t.Errorf("%s: Score(%q) = %v, %d; want %v, %d", c.name, c.out, score, found, c.score, c.found)
		}
	}
}

// devSet returns the shared dev set's path or skips.
func devSet(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "eval", "retrieval-dev.jsonl")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared eval set not found at %s (absent in a plain clone): %v", p, err)
	}
	return p
}

// TestScoreDevSet reads ../shared/eval/retrieval-dev.jsonl and checks the
// scoring rule on every case: the expected continuation " "+answer scores
// 1, an empty one 0, and dropping one target of a multi-answer case
// leaves (k-1)/k.
func TestScoreDevSet(t *testing.T) {
	f, err := os.Open(devSet(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cases, bad, err := Read(f, "retrieval-dev.jsonl")
	if err != nil || len(bad) > 0 {
		t.Fatalf("reading the dev set: %v %v", err, bad)
	}
	if len(cases) != 300 {
		t.Fatalf("%d cases, want 300", len(cases))
	}
	perTask := map[string]int{}
	for i := range cases {
		c := &cases[i]
		perTask[c.Task]++
		if s, _ := Score(c, " "+c.Answer); s != 1 {
			t.Errorf("line %d: expected continuation scores %v", c.Line, s)
		}
		if s, _ := Score(c, ""); s != 0 {
			t.Errorf("line %d: empty output scores %v", c.Line, s)
		}
		if k := len(c.Answers); k > 1 {
			partial := strings.Join(c.Answers[1:], " ")
			if s, _ := Score(c, " "+partial); s != float64(k-1)/float64(k) {
				t.Errorf("line %d: %d of %d targets score %v", c.Line, k-1, k, s)
			}
		}
		if c.Depth == nil || c.ContextTokens == 0 {
			t.Errorf("line %d: depth or context_tokens missing", c.Line)
		}
	}
	for _, task := range Names() {
		if perTask[task] != 60 {
			t.Errorf("%s: %d cases, want 60", task, perTask[task])
		}
	}
}

func TestReadReportsEveryBadLine(t *testing.T) {
	good := `{"task":"passkey","context_tokens":256,"depth":0.5,"prompt":"The pass key is 1. What is it?\nAnswer: The pass key is","answer":"1","answers":["1"]}`
	lines := []string{
		good,
		`{"task":"passkey","prompt":"x"`,  // 2: truncated JSON
		``,                                // 3: blank, skipped
		`{"task":"passkey","answer":"1"}`, // 4: no prompt
		`{"task":"kv","prompt":"p","answer":"1","depth":1.5}`,            // 5: depth out of range
		`{"task":"kv","prompt":"p","answers":"1"}`,                       // 6: answers not a list
		`{"task":"kv","prompt":"p","context_tokens":"256","answer":"1"}`, // 7: wrong type
		`{"task":"kv","prompt":"p"}`,                                     // 8: no answer
		`["not","an","object"]`,                                          // 9
		`{"task":"vt","prompt":"p","answers":["A",""]}`,                  // 10: empty target
		good, // 11
	}
	cases, bad, err := Read(strings.NewReader(strings.Join(lines, "\n")), "cases.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[0].Line != 1 || cases[1].Line != 11 {
		t.Fatalf("good cases %+v, want lines 1 and 11", cases)
	}
	want := map[int]string{
		2:  "not a JSON object",
		4:  `missing "prompt"`,
		5:  `"depth" is 1.5`,
		6:  `"answers" must be a list of strings`,
		7:  `"context_tokens" must be a number`,
		8:  "no expected answer",
		9:  "not a JSON object",
		10: `"answers"[1] is empty`,
	}
	if len(bad) != len(want) {
		t.Errorf("%d bad lines, want %d: %v", len(bad), len(want), bad)
	}
	for _, b := range bad {
		w, ok := want[b.Line]
		if !ok {
			t.Errorf("unexpected error on line %d: %v", b.Line, b)
			continue
		}
		msg := b.Error()
		if !strings.HasPrefix(msg, "cases.jsonl:"+strconv.Itoa(b.Line)+": ") || !strings.Contains(msg, w) {
			t.Errorf("line %d: %q, want the file:line prefix and %q", b.Line, msg, w)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	d := 0.25
	in := []Case{
		{Task: "passkey", ContextTokens: 256, PromptTokens: 250, Depth: &d, Prompt: "a \"quoted\" <prompt>\nAnswer:", Answer: "12345", Answers: []string{"12345"}},
		{Task: "custom", Prompt: "no depth", Answer: "x"},
	}
	var b strings.Builder
	if err := Write(&b, in); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `\u003c`) {
		t.Error("HTML escaping in the JSONL output")
	}
	out, bad, err := Read(strings.NewReader(b.String()), "")
	if err != nil || len(bad) > 0 || len(out) != 2 {
		t.Fatalf("%v %v %d", err, bad, len(out))
	}
	if out[0].Prompt != in[0].Prompt || *out[0].Depth != d || out[0].PromptTokens != 250 || out[1].Depth != nil {
		t.Errorf("round trip changed the cases: %+v", out)
	}
}

func TestFilter(t *testing.T) {
	var cs []Case
	for _, task := range []string{"passkey", "kv"} {
		for _, n := range []int{256, 512} {
			for range 3 {
				cs = append(cs, Case{Task: task, ContextTokens: n})
			}
		}
	}
	if got := Filter(cs, nil, nil, 0, 1); len(got) != 12 {
		t.Errorf("no filter: %d", len(got))
	}
	if got := Filter(cs, []string{"kv"}, []int{512}, 0, 1); len(got) != 3 {
		t.Errorf("kv@512: %d", len(got))
	}
	if got := Filter(cs, nil, nil, 2, 1); len(got) != 8 {
		t.Errorf("limit 2 per cell: %d", len(got))
	}
}

// TestSampleStratified checks that a capped sample of a file sorted by
// depth covers every depth range (the first N would keep the shallow
// needles only), keeps file order, and depends on the seed alone.
func TestSampleStratified(t *testing.T) {
	var cs []Case
	for i := range 15 {
		d := float64(i) / 14
		cs = append(cs, Case{Task: "passkey", ContextTokens: 512, Depth: &d, Line: i + 1})
	}
	cs = append(cs, Case{Task: "passkey", ContextTokens: 256, Line: 16})
	got := Sample(cs, 5, 7)
	if len(got) != 6 {
		t.Fatalf("kept %d cases, want 5 + the lone 256-token case", len(got))
	}
	for i, c := range got[:5] {
		if lo, hi := float64(3*i)/14, float64(3*i+2)/14; *c.Depth < lo || *c.Depth > hi {
			t.Errorf("case %d of the sample has depth %.3f, outside its stratum [%.3f, %.3f]", i, *c.Depth, lo, hi)
		}
		if i > 0 && c.Line <= got[i-1].Line {
			t.Errorf("sample out of file order: %d after %d", c.Line, got[i-1].Line)
		}
	}
	same := Sample(cs, 5, 7)
	for i := range got {
		if got[i].Line != same[i].Line {
			t.Fatalf("the same seed drew another sample")
		}
	}
	differs := false
	for seed := uint64(8); seed < 20 && !differs; seed++ {
		other := Sample(cs, 5, seed)
		for i := range got {
			differs = differs || other[i].Line != got[i].Line
		}
	}
	if !differs {
		t.Errorf("no other seed drew another sample")
	}
}
