package recipe

import (
	"strings"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

func TestParseValid(t *testing.T) {
	cases := map[string]string{
		"":          "f16",
		"f16":       "f16",
		" f32 ":     "f32",
		"f32()":     "f32",
		"f16 + f32": "", // two codecs: error, checked below
	}
	for in, want := range cases {
		r, err := Parse(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q: no error", in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := r.String(); got != want {
			t.Errorf("%q: canonical form %q, want %q", in, got, want)
		}
		cfg, err := r.Config()
		if err != nil || cfg.K == nil || cfg.V == nil || cfg.Evictor != nil {
			t.Errorf("%q: config %+v, %v", in, cfg, err)
		}
	}
}

func TestParseErrorsListWhatIsValid(t *testing.T) {
	cases := []struct{ in, want string }{
		{"bogus", "unknown method \"bogus\" (valid: "},
		{"f16(bits=2)", "takes no parameters"},
		{"f16(", "missing ')'"},
		{"f16)", "malformed method name"},
		{"f16+", "empty method name"},
		{"+f16", "empty method name"},
		{"f16(x)", "not key=value"},
		{"f16 f32", "malformed method name"},
		{"f16()f32", "expected '+'"},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

// TestBind checks parameter validation on a synthetic method, so it does
// not depend on which methods are registered.
func TestBind(t *testing.T) {
	m := kv.Method{Name: "demo", Params: []kv.Param{
		{Name: "budget", Kind: kv.BudgetParam, Default: "0.5"},
		{Name: "bits", Kind: kv.ChoiceParam, Choices: []string{"2", "4"}, Default: "2"},
		{Name: "window", Kind: kv.IntParam, Min: 1, Max: 64, Default: "32"},
		{Name: "alpha", Kind: kv.FloatParam, Min: 0, Max: 1},
	}}
	good := []struct {
		args [][2]string
		want string
	}{
		{[][2]string{{"alpha", "0.3"}}, "demo(budget=0.5,bits=2,window=32,alpha=0.3)"},
		{[][2]string{{"budget", "512"}, {"bits", "4"}, {"alpha", "1"}}, "demo(budget=512,bits=4,window=32,alpha=1)"},
	}
	for _, g := range good {
		term, err := bind(m, g.args)
		if err != nil {
			t.Fatalf("%v: %v", g.args, err)
		}
		if term.String() != g.want {
			t.Errorf("%v: %s, want %s", g.args, term, g.want)
		}
	}
	bad := []struct {
		args [][2]string
		want string
	}{
		{nil, `parameter "alpha" is required`},
		{[][2]string{{"alpha", "2"}}, "outside [0, 1]"},
		{[][2]string{{"alpha", "nan"}}, "not a number"},
		{[][2]string{{"alpha", "0"}, {"bits", "3"}}, "not one of [2 4]"},
		{[][2]string{{"alpha", "0"}, {"window", "0"}}, "outside [1, 64]"},
		{[][2]string{{"alpha", "0"}, {"window", "x"}}, "not an integer"},
		{[][2]string{{"alpha", "0"}, {"budget", "0"}}, "at least 1 token"},
		{[][2]string{{"alpha", "0"}, {"budget", "1.5"}}, "must be in (0, 1]"},
		{[][2]string{{"alpha", "0"}, {"budget", "-0.5"}}, "must be in (0, 1]"},
		{[][2]string{{"alpha", "0"}, {"frob", "1"}}, "unknown parameter \"frob\" (valid: budget, bits, window, alpha)"},
		{[][2]string{{"alpha", "0"}, {"alpha", "1"}}, "given twice"},
	}
	for _, b := range bad {
		_, err := bind(m, b.args)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: error %v, want %q", b.args, err, b.want)
		}
	}
}

func TestBudgetResolve(t *testing.T) {
	cases := []struct {
		s      string
		prompt int
		want   int
	}{{"512", 100, 512}, {"0.25", 1000, 250}, {"0.125", 512, 64}, {"1", 10, 1}, {"1.0", 10, 10}, {"0.001", 10, 1}}
	for _, c := range cases {
		b, err := kv.ParseBudget(c.s)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Resolve(c.prompt); got != c.want {
			t.Errorf("%s of %d = %d, want %d", c.s, c.prompt, got, c.want)
		}
	}
}

// TestEveryMethodBuildsWithDefaults parses each registered method with its
// defaults (a wrapper around every evictor with theirs) and builds a
// config, so a broken registration fails.
func TestEveryMethodBuildsWithDefaults(t *testing.T) {
	var evictors []string
	for _, m := range Methods() {
		if m.Kind == kv.EvictorMethod {
			evictors = append(evictors, m.Name)
		}
	}
	for _, m := range Methods() {
		srcs := []string{m.Name}
		if m.Kind == kv.WrapperMethod {
			srcs = nil
			for _, e := range evictors {
				srcs = append(srcs, e+"+"+m.Name)
			}
		}
		for _, src := range srcs {
			r, err := Parse(src)
			if err != nil {
				t.Errorf("%s: %v", src, err)
				continue
			}
			cfg, err := r.Config()
			if err != nil {
				t.Errorf("%s: %v", src, err)
				continue
			}
			if (m.Kind == kv.EvictorMethod || m.Kind == kv.WrapperMethod) != (cfg.Evictor != nil) {
				t.Errorf("%s: kind %s but evictor %v", src, m.Kind, cfg.Evictor)
			}
		}
		if m.Summary == "" || m.Paper == "" {
			t.Errorf("%s: missing summary or paper", m.Name)
		}
	}
}

// TestWrapperPrintsOnlyItsOwnParameters: KVCrush wraps the recipe's
// evictor and takes the budget, the window and the scores from it, so its
// canonical term spells only its own parameters, and the evictor's stay
// with the evictor.
func TestWrapperPrintsOnlyItsOwnParameters(t *testing.T) {
	r, err := Parse("snapkv(budget=0.25)+kvcrush")
	if err != nil {
		t.Fatal(err)
	}
	w := r.Term(kv.WrapperMethod)
	e := r.Term(kv.EvictorMethod)
	if w == nil || e == nil || w.Method.Name != "kvcrush" || e.Method.Name != "snapkv" {
		t.Fatalf("terms %v", r)
	}
	ws := w.String()
	for _, p := range e.Method.Params {
		if strings.Contains(ws, p.Name+"=") {
			t.Errorf("kvcrush's term %s spells snapkv's %s", ws, p.Name)
		}
	}
	for _, p := range []string{"base=", "budget=", "window=", "kernel=", "pool=", "recent="} {
		if strings.Contains(ws, p) {
			t.Errorf("kvcrush's term %s spells %s", ws, p)
		}
	}
	want := "snapkv(budget=0.25,window=32,kernel=7,pool=max)+kvcrush(split=0.75,anchor=alternate,scope=head,threshold=median)+f16"
	if got := r.String(); got != want {
		t.Errorf("canonical %s, want %s", got, want)
	}
	cfg, err := r.Config()
	if err != nil {
		t.Fatal(err)
	}
	if bd := cfg.Evictor.Bound(); bd.Budget != (kv.Budget{Fraction: 0.25}) || bd.Steady {
		t.Errorf("bound %+v, want snapkv's (a quarter of the prompt, not steady)", bd)
	}
	if _, err := Parse("kvcrush(budget=0.25,base=snapkv)"); err == nil {
		t.Errorf("kvcrush still takes a budget and a base")
	}
}

// maxErrLen bounds a recipe error: the input is cut at maxQuoted bytes
// wherever an error quotes it, so an error stays a line whatever the input
// (a 10 KB recipe used to come back whole).
const maxErrLen = 1024

// hostile are recipes of issue 14's probes: malformed, extreme, long.
var hostile = []string{
	"snapkv(", "snapkv)", "snapkv(budget)", "snapkv(budget=)", "snapkv(=1)", "snapkv(budget=1,budget=2)",
	"snapkv(budget=0)", "snapkv(budget=-1)", "snapkv(budget=1.5)", "snapkv(budget=NaN)", "snapkv(budget=Inf)",
	"snapkv(budget=9223372036854775808)", "kivi(bits=3)", "kivi(bits=1e309)", "q4+q8", "snapkv+h2o",
	"kvcrush", "+", "++q8", "q8+", "q8 q4", "q8(x=1)", "nosuch", "f16((", "snapkv(budget=0.25)+",
	"\x00", "snapkv(budget=0.25\x00)", "ünïcödé", strings.Repeat("q8+", 1000), strings.Repeat("x", 10000),
	"snapkv(budget=" + strings.Repeat("9", 10000) + ")", "snapkv(" + strings.Repeat("k", 10000) + "=1)",
	"q8)" + strings.Repeat("y", 10000), "snapkv(" + strings.Repeat("budget", 2000) + ")", strings.Repeat("(", 10000),
	"kivi(bits=" + strings.Repeat("1", 10000) + ")", "snapkv(budget=0." + strings.Repeat("0", 10000) + "1)",
}

// Errors quote at most maxQuoted bytes of the input, wherever the fault is.
func TestErrorsStayShort(t *testing.T) {
	for _, s := range hostile {
		_, err := Parse(s)
		if err == nil {
			continue
		}
		if len(err.Error()) > maxErrLen {
			t.Errorf("%d-byte recipe %.40q...: error of %d bytes: %.300s...", len(s), s, len(err.Error()), err)
		}
	}
}

// FuzzParse: Parse never panics, its errors stay short, and a recipe it
// accepts builds and renders to a canonical form that parses to the same
// recipe.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"f16", "snapkv(budget=0.25)+kivi(bits=2)", "a(b=c,d=e)+f", "((", "+)",
		"", "q8", "snapkv(budget=512)+q4", "streaming(budget=64)", "h2o(budget=1.0)", "snapkv(budget=0.25)+kvcrush", "window+q8"} {
		f.Add(s)
	}
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if len(err.Error()) > maxErrLen {
				t.Fatalf("error of %d bytes for a %d-byte recipe: %.200s...", len(err.Error()), len(s), err)
			}
			return
		}
		// A recipe that parses renders to a canonical form that parses to
		// the same recipe.
		r2, err := Parse(r.String())
		if err != nil || r2.String() != r.String() {
			t.Fatalf("canonical form %q of %q does not round-trip: %v", r.String(), s, err)
		}
		if _, err := r.Config(); err != nil {
			t.Fatalf("%q parsed but does not build: %v", s, err)
		}
	})
}
