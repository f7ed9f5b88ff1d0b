package eval

import (
	"context"
	"strings"
	"testing"
)

// TestNeedleSpans checks that the passkey's two occurrences in its needle
// are found as the tokens that spell it, and that the always-kept window
// of each evictor holds a needle at the end of the prompt and not one at
// the start.
func TestNeedleSpans(t *testing.T) {
	e := tiny(t)
	cs := suite(t, e, []int{256}, []float64{0, 1})
	for _, c := range cs {
		ids := e.Tok.Encode(c.Prompt, true, false)
		sp := needleSpans(e, ids, c.Targets())
		if len(sp) != 1 || len(sp[0]) != 2 {
			t.Fatalf("depth %.2f: spans %v, want two occurrences of %q", *c.Depth, sp, c.Answer)
		}
		for _, s := range sp[0] {
			got := strings.TrimSpace(e.Tok.Decode(ids[s.lo:s.hi], true))
			if got != c.Answer {
				t.Errorf("depth %.2f: tokens %d..%d decode to %q, want %q", *c.Depth, s.lo, s.hi, got, c.Answer)
			}
		}
		deep := *c.Depth > 0.5
		for _, tc := range []struct {
			recipe string
			in, ok bool
		}{
			{"f16", false, false},
			{"q8", false, false},
			{"streaming(budget=0.5)", deep, true},
			{"h2o(budget=0.5)", deep, true},
			{"snapkv(budget=0.25)", deep, true},
			{"tova(budget=0.25)", false, true},
			{"snapkv(budget=1.0)", true, true}, // the whole prompt fits
		} {
			p, evicts := protector(mustParse(t, tc.recipe))
			in, ok := inWindow(p, evicts, len(ids), sp)
			if in != tc.in || ok != tc.ok {
				t.Errorf("depth %.2f, %s: in window %v (known %v), want %v (%v)", *c.Depth, tc.recipe, in, ok, tc.in, tc.ok)
			}
		}
	}
}

// TestTraceNeedle checks the trace's shape and two cases whose answer is
// known: a budget of the whole prompt keeps every needle token in every
// stream, and a recipe that keeps everything has no trace.
func TestTraceNeedle(t *testing.T) {
	e := tiny(t)
	c := suite(t, e, []int{256}, []float64{0.25})[0]
	ids := e.Tok.Encode(c.Prompt, true, false)
	sp := needleSpans(e, ids, c.Targets())
	if tr, err := traceNeedle(context.Background(), e, mustParse(t, "q8"), ids, 6, sp); tr != nil || err != nil {
		t.Errorf("q8 keeps every token, but has a trace %v (%v)", tr, err)
	}
	for _, tc := range []struct {
		recipe string
		all    bool
	}{{"snapkv(budget=1.0)", true}, {"streaming(budget=16)", false}} {
		tr, err := traceNeedle(context.Background(), e, mustParse(t, tc.recipe), ids, 6, sp)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Positions) != 10 || len(tr.AfterPrompt) != e.Model.Config.Layers || len(tr.AtEnd) != e.Model.Config.Layers {
			t.Fatalf("%s: trace of %d positions, %d and %d layers", tc.recipe, len(tr.Positions), len(tr.AfterPrompt), len(tr.AtEnd))
		}
		want := strings.Repeat("0", 10)
		if tc.all {
			want = strings.Repeat("1", 10)
		}
		for l, heads := range tr.AfterPrompt {
			if len(heads) != e.Model.KVHeads {
				t.Fatalf("%s: layer %d has %d heads", tc.recipe, l, len(heads))
			}
			for h, k := range heads {
				if k != want {
					t.Errorf("%s: layer %d head %d kept %s, want %s", tc.recipe, l, h, k, want)
				}
			}
		}
		if len(tr.Generated) == 0 {
			t.Errorf("%s: the traced run generated nothing", tc.recipe)
		}
	}
}
