package recipe

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// paramValues are spellings worth round-tripping for a parameter: its
// default, its bounds and a middle value; for budgets both a count and a
// fraction that print alike in a careless formatter ("1" and "1.0").
func paramValues(p kv.Param) []string {
	switch p.Kind {
	case kv.IntParam:
		return []string{p.Default, fmt.Sprint(int(p.Min)), fmt.Sprint(int(p.Max)), fmt.Sprint(int(p.Min+p.Max) / 2)}
	case kv.FloatParam:
		return []string{p.Default, fmt.Sprint(p.Min), fmt.Sprint(p.Max), fmt.Sprint((p.Min + p.Max) / 3)}
	case kv.BudgetParam:
		return []string{p.Default, "1", "1.0", "1.", "0.25", "512", "2.5e-1", "1e-3"}
	case kv.ChoiceParam:
		return p.Choices
	}
	return nil
}

// host is a recipe a term of kind k can stand in: a wrapper needs an
// evictor to wrap.
func host(m kv.Method, term string) string {
	if m.Kind == kv.WrapperMethod {
		return "h2o(budget=0.25)+" + term
	}
	return term
}

// TestCanonicalRoundTrip: for every method and every parameter value,
// parsing the canonical string of a recipe gives the same arguments (and
// so the same behaviour) and prints the same string again. The old budget
// printer wrote both "budget=1" (one token) and "budget=1.0" (the whole
// prompt) as "budget=1", so a client echoing the server's canonical recipe
// got another cache.
func TestCanonicalRoundTrip(t *testing.T) {
	n := 0
	for _, m := range Methods() {
		for _, p := range m.Params {
			for _, v := range paramValues(p) {
				src := host(m, fmt.Sprintf("%s(%s=%s)", m.Name, p.Name, v))
				r, err := Parse(src)
				if err != nil {
					// A value the method refuses in combination (an even
					// kernel) is no round-trip case.
					continue
				}
				if _, err := r.Config(); err != nil {
					continue
				}
				canon := r.String()
				r2, err := Parse(canon)
				if err != nil {
					t.Fatalf("%s: canonical %q does not parse: %v", src, canon, err)
				}
				if r2.String() != canon {
					t.Fatalf("%s: canonical %q prints %q after a round trip", src, canon, r2.String())
				}
				for i := range r.Terms {
					if !reflect.DeepEqual(r.Terms[i].Args, r2.Terms[i].Args) {
						t.Fatalf("%s: arguments %v become %v through %q", src, r.Terms[i].Args, r2.Terms[i].Args, canon)
					}
				}
				b1, err1 := r.Bound()
				b2, err2 := r2.Bound()
				if err1 != nil || err2 != nil || b1 != b2 {
					t.Fatalf("%s: bound %+v (%v) becomes %+v (%v)", src, b1, err1, b2, err2)
				}
				n++
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d round trips ran", n)
	}
	one, _ := Parse("h2o(budget=1)")
	whole, _ := Parse("h2o(budget=1.0)")
	if one.String() == whole.String() {
		t.Fatalf("one token and the whole prompt print alike: %s", one)
	}
	if !strings.Contains(whole.String(), "budget=1.0") {
		t.Fatalf("a whole-prompt budget prints as %s", whole)
	}
}

// TestKindsStackByRule: one term per kind, in the order kinds act,
// whatever order they are written in; a wrapper needs an evictor.
func TestKindsStackByRule(t *testing.T) {
	a, err := Parse("kivi(bits=4)+window(pages=4)+h2o(budget=0.5)")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []kv.MethodKind
	for _, tm := range a.Terms {
		kinds = append(kinds, tm.Method.Kind)
	}
	if !reflect.DeepEqual(kinds, []kv.MethodKind{kv.EvictorMethod, kv.SelectorMethod, kv.CodecMethod}) {
		t.Fatalf("terms in order %v", kinds)
	}
	if a.Family() != "h2o+window+kivi" {
		t.Fatalf("family %q", a.Family())
	}
	if _, err := Parse("window+window(pages=2)"); err == nil || !strings.Contains(err.Error(), "at most one of each kind") {
		t.Fatalf("two selectors: %v", err)
	}
	for _, m := range Methods() {
		if m.Kind != kv.WrapperMethod {
			continue
		}
		if _, err := Parse(m.Name); err == nil || !strings.Contains(err.Error(), "evictor") {
			t.Fatalf("%s alone: %v", m.Name, err)
		}
	}
	long := strings.Repeat("x", 10000)
	if _, err := Parse(long); err == nil || len(err.Error()) > 2000 {
		t.Fatalf("a 10 KB recipe's error is %d bytes", len(err.Error()))
	}
}
