package eval

import (
	"bytes"
	"context"
	"html"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/engine"
)

// TestRAGWorkload runs the RAG workload small: every policy answers, the
// reference agrees with itself, naive reuses every chunk it finds and
// recomputes none, cacheblend(ratio=1) matches full prefill's answers.
func TestRAGWorkload(t *testing.T) {
	e, err := engine.Load("", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, err := RAG(context.Background(), e, RAGConfig{Docs: 8, DocTokens: 128, Questions: 4, Warm: 8, MaxTokens: 4, Quality: true,
		Recipes: []string{"naive", "cacheblend(ratio=1)", "cachecraft"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 4 || r.DocTokens < 128 {
		t.Fatalf("%+v", r)
	}
	full, naive, blend := r.Rows[0], r.Rows[1], r.Rows[2]
	if full.KLD != 0 || full.Top1 != 1 {
		t.Errorf("full against itself: %+v", full)
	}
	if naive.HitRate == 0 || naive.Recomputed != 0 || naive.KLD == 0 {
		t.Errorf("naive: %+v", naive)
	}
	if r.Rows[3].Correct == 0 && full.Correct > 0 && r.Rows[3].KLD < 1e-3 {
		t.Errorf("cachecraft: %d correct with KLD %g, full %d", r.Rows[3].Correct, r.Rows[3].KLD, full.Correct)
	}
	if blend.KLD > 1e-6 || blend.Correct != full.Correct || blend.Recomputed != 1 {
		t.Errorf("cacheblend(ratio=1): %+v", blend)
	}
	checkRAGHTML(t, r, true)
	checkRAGHTML(t, r, false)
}

// checkRAGHTML: the page has the table (every policy) and its charts
// (two with quality: KLD and accuracy against TTFT; one without).
func checkRAGHTML(t *testing.T, r *RAGReport, quality bool) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteRAGHTML(&b, r, quality); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(b.String())
	want := 1
	if quality {
		want = 2
	}
	if n := strings.Count(page, "<svg"); n != want {
		t.Errorf("quality %v: %d charts, want %d", quality, n, want)
	}
	for _, x := range r.Rows {
		if !strings.Contains(page, "<td>"+x.Recipe+"</td>") {
			t.Errorf("the page's table has no row %q", x.Recipe)
		}
	}
	if quality && !strings.Contains(page, "Answer KL divergence vs TTFT speedup") {
		t.Error("no KLD chart")
	}
}
