package ragkb

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func words(s string) int { return len(strings.Fields(s)) }

// TestKB: a seed fixes the knowledge base; every document holds its fact
// and reaches the length asked; keys are distinct.
func TestKB(t *testing.T) {
	c := Config{Docs: 10, DocTokens: 60}
	a, err := KB(c, rand.New(rand.NewPCG(1, 2)), words)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := KB(c, rand.New(rand.NewPCG(1, 2)), words)
	if !slices.Equal(a, b) || len(a) != 10 {
		t.Fatal("the same seed gave another knowledge base")
	}
	keys := map[string]bool{}
	for _, d := range a {
		if words(d.Text) < 60 || !strings.Contains(d.Text, "The special magic number for "+d.Key+" is: "+d.Value+".") {
			t.Errorf("document %q", d.Text)
		}
		keys[d.Key] = true
	}
	if len(keys) != 10 {
		t.Errorf("%d distinct keys in 10 documents", len(keys))
	}
	if _, err := KB(Config{Docs: 1 << 20}, rand.New(rand.NewPCG(1, 2)), words); err == nil {
		t.Error("more documents than key words")
	}
}

// TestQuestions: K distinct documents, the target among them, popular
// documents more often, and the stream equal to the slice.
func TestQuestions(t *testing.T) {
	c := Config{Docs: 12, K: 4}
	qs := Questions(c, rand.New(rand.NewPCG(5, 6)), 400)
	g := NewGenerator(c, rand.New(rand.NewPCG(5, 6)))
	seen := make([]int, 12)
	for i, q := range qs {
		if n := g.Next(); !slices.Equal(n.Docs, q.Docs) || n.Target != q.Target {
			t.Fatalf("question %d: generator %v, slice %v", i, n, q)
		}
		s := slices.Clone(q.Docs)
		slices.Sort(s)
		if len(slices.Compact(s)) != 4 || !slices.Contains(q.Docs, q.Target) {
			t.Fatalf("question %v", q)
		}
		for _, d := range q.Docs {
			seen[d]++
		}
	}
	if seen[0] <= seen[11] {
		t.Errorf("document 0 drawn %d times, document 11 %d: want Zipf popularity", seen[0], seen[11])
	}
}
