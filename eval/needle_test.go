package eval

import (
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
