package eval

import (
	"context"
	"errors"
	"github.com/kvgo/kvgo/internal/dist"
	"strings"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/eval/tasks"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/sample"
)

// tiny loads the embedded kvgo-tiny model (no ../shared needed).
func tiny(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

type tok struct{ e *engine.Engine }

func (t tok) PromptTokens(s string) int { return len(t.e.Tok.Encode(s, true, false)) }
func (t tok) AnswerTokens(s string) int { return len(t.e.Tok.Encode(s, false, false)) }

func mustParse(t *testing.T, s string) *recipe.Recipe {
	t.Helper()
	r, err := recipe.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// suite generates small passkey cases in kvgo-tiny's tokens.
func suite(t *testing.T, e *engine.Engine, lengths []int, depths []float64) []tasks.Case {
	t.Helper()
	cs, err := tasks.Generate(tasks.Spec{Seed: 1, Tasks: []string{"passkey"}, Lengths: lengths, Depths: depths, Cases: 1}, tok{e})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestFullCacheAgainstItselfIsExact is the acceptance check of fidelity:
// the full cache compared with itself has KL divergence exactly 0, top-1
// agreement exactly 1 and the same perplexity, bit for bit.
func TestFullCacheAgainstItselfIsExact(t *testing.T) {
	e := tiny(t)
	var text []string
	for _, c := range suite(t, e, []int{128}, []float64{0, 1}) {
		text = append(text, c.Prompt)
	}
	ids := e.Tok.Encode(strings.Join(text, "\n\n"), true, false)
	f16 := mustParse(t, "f16")
	res, err := CompareFidelity(context.Background(), e, ids, 64, f16, []*recipe.Recipe{mustParse(t, "f16"), mustParse(t, "q4")}, 2)
	if err != nil {
		t.Fatal(err)
	}
	self, q4 := res[0], res[1]
	if self.MeanKLD != 0 || self.P99KLD != 0 || self.Top1 != 1 || self.PPL != self.BasePPL || self.Ratio != 1 {
		t.Errorf("full cache against itself: %+v", self)
	}
	if self.Positions != 2*31 {
		t.Errorf("%d positions compared, want 62", self.Positions)
	}
	if q4.MeanKLD <= 0 || q4.Top1 > 1 || q4.Ratio >= 1 || q4.BasePPL != self.BasePPL {
		t.Errorf("q4 against the full cache: %+v", q4)
	}
}

// TestEvalLogitsAreGenerates checks the other half of "one code path":
// decoding greedily from the logits fidelity compares reproduces, token
// for token, what engine.Generate (and so `kvgo run`) generates, for a
// full, a quantized and an evicting cache.
func TestEvalLogitsAreGenerates(t *testing.T) {
	e := tiny(t)
	prompt := e.Tok.Encode(suite(t, e, []int{128}, []float64{0.5})[0].Prompt, true, false)
	for _, rs := range []string{"f16", "q8", "snapkv(budget=0.5)"} {
		r := mustParse(t, rs)
		var want []int
		_, err := e.Generate(context.Background(), engine.Request{
			Prompt: prompt, MaxTokens: 8, KV: r, Sampling: sample.Params{Temperature: 0},
			OnToken: func(id int) error { want = append(want, id); return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.NewSession(r, e.Model.ContextLen, len(prompt))
		if err != nil {
			t.Fatal(err)
		}
		logits, err := s.Prefill(context.Background(), prompt)
		if err != nil {
			t.Fatal(err)
		}
		lp := make([]float64, e.Model.Vocab)
		for i, id := range want {
			dist.LogSoftmax(logits, lp)
			if got := dist.Argmax(lp); got != id {
				t.Fatalf("%s: token %d: eval's logits pick %d, Generate picked %d", rs, i, got, id)
			}
			if logits, err = s.Step(id, len(prompt)+i); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// cancelAfter cancels a context after n progress steps.
type cancelAfter struct {
	n      int
	cancel func()
}

func (c *cancelAfter) Grow(float64) {}
func (c *cancelAfter) Add(float64, string) {
	if c.n--; c.n == 0 {
		c.cancel()
	}
}

func TestRun(t *testing.T) {
	e := tiny(t)
	cases := suite(t, e, []int{128}, []float64{0, 1})
	// A prompt longer than the model's context fails alone.
	long := tasks.Case{Task: "passkey", ContextTokens: 4096, Prompt: strings.Repeat("The sky is blue. ", 450), Answer: "1", Line: 99}
	cases = []tasks.Case{cases[0], long, cases[1]}
	rep := report.New(time.Now())
	err := Run(context.Background(), e, Config{
		Cases: cases, Recipes: ParseRecipes("f16;bogus(x=1);snapkv(budget=0.5)"),
		Base: mustParse(t, "f16"), FidelityTokens: e.Tok.Encode(cases[0].Prompt+"\n\n"+cases[1].Prompt, true, false),
		FidelityCtx: 64, FidelityChunks: 1,
	}, rep)
	if err != nil {
		t.Fatal(err)
	}
	rep.Finalize()
	if err := rep.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Recipes) != 3 || rep.Recipes[1].Error == "" || !strings.Contains(rep.Recipes[1].Error, `unknown method "bogus"`) {
		t.Fatalf("recipes %+v", rep.Recipes)
	}
	if len(rep.Cases) != 2*2 {
		t.Errorf("%d case results, want 4", len(rep.Cases))
	}
	var caseErrs int
	for _, er := range rep.Errors {
		if er.Stage == "case" {
			caseErrs++
			if er.Line != 99 || !strings.Contains(er.Message, "context length exceeded") {
				t.Errorf("case error %+v", er)
			}
		}
	}
	if caseErrs != 2 || rep.Complete {
		t.Errorf("%d case errors (want one per live recipe), complete %v", caseErrs, rep.Complete)
	}
	f16 := rep.Recipe("f16")
	if f16.Fidelity == nil || f16.Fidelity.MeanKLD != 0 || f16.Fidelity.Top1 != 1 {
		t.Errorf("f16 fidelity %+v", f16.Fidelity)
	}
	snap := rep.Recipe("snapkv(budget=0.5)")
	if snap.Fidelity == nil || snap.Fidelity.Top1 > 1 || snap.Cost.PeakRatio <= snap.Cost.Ratio {
		t.Errorf("snapkv: fidelity %+v, cost %+v (want the peak above the end size)", snap.Fidelity, snap.Cost)
	}
	if f16.Cost.Ratio != 1 || f16.Cost.PrefillTokPerSec <= 0 || f16.Cost.TTFTMsMean <= 0 {
		t.Errorf("f16 cost %+v", f16.Cost)
	}
	for _, c := range rep.Cases {
		if c.Recipe == "f16" && c.Score != 1 {
			t.Errorf("kvgo-tiny missed a 128-token passkey with the full cache: %+v", c)
		}
	}
}

// TestRunInterrupted: cancelling leaves a valid partial report holding
// what finished.
func TestRunInterrupted(t *testing.T) {
	e := tiny(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := report.New(time.Now())
	err := Run(ctx, e, Config{
		Cases: suite(t, e, []int{128}, []float64{0, 0.5, 1}), Recipes: ParseRecipes("f16;q8"),
		Progress: &cancelAfter{n: 3, cancel: cancel},
	}, rep)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	rep.Finalize()
	if err := rep.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) != 3 || rep.Stopped != "interrupted" || rep.Complete {
		t.Errorf("%d cases, stopped %q, complete %v", len(rep.Cases), rep.Stopped, rep.Complete)
	}
}

func TestDefaultRecipes(t *testing.T) {
	rs := DefaultRecipes()
	if len(rs) == 0 || rs[0] != recipe.Default {
		t.Fatalf("%v", rs)
	}
	methods := map[string]bool{}
	for _, s := range rs {
		methods[Method(mustParse(t, s))] = true
	}
	// Today's registry offers all four kinds of comparison.
	for _, want := range []string{"f16", "q8", "snapkv", "snapkv+kivi"} {
		if !methods[want] {
			t.Errorf("default recipes %v lack a %s recipe", rs, want)
		}
	}
}

func TestParseRecipes(t *testing.T) {
	specs := ParseRecipes(" f16 ; q8;;q8; nope ")
	if len(specs) != 3 || specs[0].Name != "f16" || specs[2].Err == nil || !strings.Contains(specs[2].Err.Error(), "--kv recipe 5") {
		t.Errorf("%+v", specs)
	}
}
