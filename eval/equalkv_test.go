package eval

import (
	"context"
	"math"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// TestWithBudget checks that the budget is found by its parameter kind
// and that the short name keeps what the recipe was written with.
func TestWithBudget(t *testing.T) {
	for _, tc := range []struct{ in, name, canon string }{
		{"snapkv(budget=0.25)", "snapkv(budget=0.125)", "snapkv(budget=0.125,window=32,kernel=7,pool=max)+f16"},
		{"h2o(recent=0.3)+kivi(bits=4)", "h2o(budget=0.125,recent=0.3)+kivi(bits=4)", "h2o(budget=0.125,recent=0.3)+kivi(bits=4,group=32,residual=128)"},
		{"snapkv+kvcrush", "snapkv(budget=0.125)+kvcrush", "snapkv(budget=0.125,window=32,kernel=7,pool=max)+kvcrush(split=0.75,anchor=alternate,scope=head,threshold=median)+f16"},
	} {
		r, name, err := WithBudget(mustParse(t, tc.in), kv.Budget{Fraction: 0.125})
		if err != nil {
			t.Fatal(err)
		}
		if name != tc.name || r.String() != tc.canon {
			t.Errorf("%s: %s = %s, want %s = %s", tc.in, name, r, tc.name, tc.canon)
		}
	}
	if _, _, err := WithBudget(mustParse(t, "q8"), kv.Budget{Fraction: 0.5}); err == nil {
		t.Error("q8 has no budget, but WithBudget set one")
	}
}

// TestEqualKV searches SnapKV's and StreamingLLM's budgets for a cache of
// 40% of the full one on real prompts and checks what they hold there.
func TestEqualKV(t *testing.T) {
	e := tiny(t)
	cal := &calibration{}
	for _, c := range suite(t, e, []int{256, 512}, []float64{0.5}) {
		cal.prompts = append(cal.prompts, e.Tok.Encode(c.Prompt, true, false))
		cal.maxTok = append(cal.maxTok, 10)
	}
	for _, in := range []string{"snapkv(budget=0.25)", "streaming(budget=0.25)"} {
		r, name, got, err := cal.EqualKV(context.Background(), e, mustParse(t, in), 0.4)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-0.4) > 0.03 {
			t.Errorf("%s: %s holds %.3f of the full cache, want 0.40 ± 0.03", in, name, got)
		}
		if again, _ := cal.kvRatio(context.Background(), e, r); again != got {
			t.Errorf("%s: the ratio of %s is %.4f on a re-run, %.4f in the search", in, name, again, got)
		}
	}
}
