// Package recipe parses KV recipes, the one string form in which the CLI,
// config files and the server name a stack of KV methods:
//
//	name(key=value,...)+name(...)
//
// e.g. "snapkv(budget=0.25)+kivi(bits=2)". It is also the registry: the one
// place besides each method's own file that knows the methods by name, and
// the one place that knows which kinds stack. A recipe is a list of terms,
// at most one of each kind (kv.MethodKind), kept in the order the kinds act;
// no codec means f16, no evictor keeps everything, a wrapper needs an
// evictor to wrap.
package recipe

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/evict"
	kvquant "github.com/kvgo/kvgo/kv/quant"
	"github.com/kvgo/kvgo/kv/retrieve"
	"github.com/kvgo/kvgo/kv/reuse/repair"
)

// registry lists every method package; adding a package of methods is one
// line here, adding a method to a package is one entry in its Methods.
func registry() [][]kv.Method {
	return [][]kv.Method{kvquant.Methods, evict.Methods, retrieve.Methods, repair.Methods}
}

// Methods returns every method a recipe may name, codecs first, then by
// kind in the order kinds act, each kind by name.
func Methods() []kv.Method {
	var ms []kv.Method
	for _, p := range registry() {
		ms = append(ms, p...)
	}
	rank := func(k kv.MethodKind) int {
		if k == kv.CodecMethod {
			return -1
		}
		return int(k)
	}
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Kind != ms[j].Kind {
			return rank(ms[i].Kind) < rank(ms[j].Kind)
		}
		return ms[i].Name < ms[j].Name
	})
	return ms
}

func lookup(name string) (kv.Method, bool) {
	for _, m := range Methods() {
		if m.Name == name {
			return m, true
		}
	}
	return kv.Method{}, false
}

// Term is one method of a recipe with its arguments.
type Term struct {
	Method kv.Method
	Args   kv.Args
	// Given are the parameters written in the recipe, in order.
	Given []string
}

// Recipe is a parsed, validated recipe: its terms in the order their kinds
// act (kv.MethodKind), one per kind, always with a codec.
type Recipe struct {
	Terms []*Term
}

// Default is the recipe used when none is given: the full F16 cache.
const Default = "f16"

// Parse parses and validates a recipe. An empty string is the default.
func Parse(s string) (*Recipe, error) {
	src := strings.TrimSpace(s)
	if src == "" {
		src = Default
	}
	quoted := quote(s)
	terms, err := split(src)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", quoted, err)
	}
	r := &Recipe{}
	for _, t := range terms {
		m, ok := lookup(t.name)
		if !ok {
			return nil, fmt.Errorf("recipe %s: unknown method %s (valid: %s)", quoted, quote(t.name), strings.Join(Names(), ", "))
		}
		term, err := bind(m, t.args)
		if err != nil {
			return nil, fmt.Errorf("recipe %s: %s: %w", quoted, m.Name, err)
		}
		if prev := r.Term(m.Kind); prev != nil {
			return nil, fmt.Errorf("recipe %s: %s and %s are both %s methods; a recipe takes at most one of each kind", quoted, prev.Method.Name, m.Name, m.Kind)
		}
		r.Terms = append(r.Terms, term)
	}
	if r.Term(kv.CodecMethod) == nil {
		m, _ := lookup(Default)
		t, _ := bind(m, nil)
		r.Terms = append(r.Terms, t)
	}
	if w := r.Term(kv.WrapperMethod); w != nil && r.Term(kv.EvictorMethod) == nil {
		return nil, fmt.Errorf("recipe %s: %s modifies an evictor; add one, e.g. \"snapkv(budget=0.25)+%s\"", quoted, w.Method.Name, w.Method.Name)
	}
	if p := r.Term(kv.RepairMethod); p != nil && r.Evicts() {
		return nil, fmt.Errorf("recipe %s: %s reuses whole chunks and an evictor would delete their tokens; use one or the other", quoted, p.Method.Name)
	}
	sort.SliceStable(r.Terms, func(i, j int) bool { return r.Terms[i].Method.Kind < r.Terms[j].Method.Kind })
	return r, nil
}

// maxQuoted bounds how much of a user's string an error quotes, so that a
// hostile 10 KB recipe does not come back whole in every error line.
const maxQuoted = 80

// quote quotes s for an error message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q... (%d bytes)", s[:maxQuoted], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// cut shortens s to maxQuoted bytes for an error message that names it
// unquoted.
func cut(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "..."
	}
	return s
}

// Term returns the recipe's term of the given kind, or nil.
func (r *Recipe) Term(k kv.MethodKind) *Term {
	for _, t := range r.Terms {
		if t.Method.Kind == k {
			return t
		}
	}
	return nil
}

// Codec is the recipe's codec term (every recipe has one).
func (r *Recipe) Codec() *Term { return r.Term(kv.CodecMethod) }

// Repair builds the recipe's chunk-repair policy, or returns nil when the
// recipe has none.
func (r *Recipe) Repair() (kv.Repair, error) {
	t := r.Term(kv.RepairMethod)
	if t == nil {
		return nil, nil
	}
	p, err := t.Method.NewRepair(t.Args)
	if err != nil {
		return nil, fmt.Errorf("recipe: %s: %w", t.Method.Name, err)
	}
	return p, nil
}

// Evicts reports whether the recipe deletes tokens.
func (r *Recipe) Evicts() bool { return r.Term(kv.EvictorMethod) != nil }

// Family is the recipe's methods without parameters, joined by '+' in
// canonical order ("snapkv+kivi", "q8", "f16"), leaving out the default
// codec when another kind is present: recipes of one family differ only in
// parameters (eval draws them as one line).
func (r *Recipe) Family() string {
	var names []string
	for _, t := range r.Terms {
		if t.Method.Kind == kv.CodecMethod && t.Method.Name == Default && len(r.Terms) > 1 {
			continue
		}
		names = append(names, t.Method.Name)
	}
	return strings.Join(names, "+")
}

// Names lists every method name.
func Names() []string {
	var n []string
	for _, m := range Methods() {
		n = append(n, m.Name)
	}
	return n
}

// String renders the recipe canonically, with every parameter written
// out (defaults included), so reports say exactly what ran. Parsing it
// gives a recipe that behaves the same (TestCanonicalRoundTrip).
func (r *Recipe) String() string {
	parts := make([]string, len(r.Terms))
	for i, t := range r.Terms {
		parts[i] = t.String()
	}
	return strings.Join(parts, "+")
}

// String renders the term with all its parameters.
func (t *Term) String() string {
	if len(t.Method.Params) == 0 {
		return t.Method.Name
	}
	var kvs []string
	for _, p := range t.Method.Params {
		kvs = append(kvs, fmt.Sprintf("%s=%v", p.Name, t.Args[p.Name]))
	}
	return fmt.Sprintf("%s(%s)", t.Method.Name, strings.Join(kvs, ","))
}

// Config builds fresh codecs, evictor and selector for one cache, each term
// by its kind.
func (r *Recipe) Config() (kv.Config, error) {
	var cfg kv.Config
	for _, t := range r.Terms {
		var err error
		m := t.Method
		switch m.Kind {
		case kv.CodecMethod:
			cfg.K, cfg.V, err = m.NewCodec(t.Args)
		case kv.EvictorMethod:
			cfg.Evictor, err = m.NewEvictor(t.Args)
		case kv.WrapperMethod:
			cfg.Evictor, err = m.Wrap(t.Args, cfg.Evictor)
		case kv.SelectorMethod:
			cfg.Selector, err = m.NewSelector(t.Args)
		case kv.RepairMethod:
			// The engine runs the repair policy (Recipe.Repair); the cache
			// never sees it.
		default:
			err = fmt.Errorf("kind %s is not built by this version", m.Kind)
		}
		if err != nil {
			return cfg, fmt.Errorf("recipe: %s: %w", m.Name, err)
		}
	}
	return cfg, nil
}

// Bound is what the recipe's evictor promises about stream sizes (the zero
// Bound without one).
func (r *Recipe) Bound() (kv.Bound, error) {
	if !r.Evicts() {
		return kv.Bound{}, nil
	}
	cfg, err := r.Config()
	if err != nil {
		return kv.Bound{}, err
	}
	return cfg.Evictor.Bound(), nil
}

// Showcase is the comparison `kvgo eval` runs with no --kv: the full cache,
// a quantizer, an evictor and the two stacked. The registry chooses it so
// that no caller has to spell a method's name.
func Showcase() []string {
	return []string{Default, "q8", "snapkv(budget=0.25)", "snapkv(budget=0.25)+kivi(bits=4)"}
}

// Suggested is what the server's recipe list (/v1/kv/recipes) offers
// besides its default: the showcase, a rolling evictor and the smallest
// per-token codec.
func Suggested() []string {
	return append(Showcase(), "streaming(budget=0.25)", "q4")
}

// FullPrefill is the repair policy that reuses nothing: every RAG
// comparison's reference.
const FullPrefill = "full"

// RAGShowcase is the comparison `kvgo eval rag` runs with no --kv: prefix
// caching, then each chunk-repair policy, and Cache-Craft over KIVI-4 chunk
// caches (FullPrefill is always measured first besides these).
func RAGShowcase() []string {
	return []string{"prefix", "naive", "epic(k=16)", "cacheblend(ratio=0.15)", "cachecraft", "cachecraft+kivi(bits=4)"}
}

type rawTerm struct {
	name string
	args [][2]string
}

// split tokenizes "a(k=v,k2=v2)+b" into terms.
func split(s string) ([]rawTerm, error) {
	var terms []rawTerm
	rest := s
	for {
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return nil, errors.New("empty method name (a '+' with nothing after it?)")
		}
		end := strings.IndexAny(rest, "(+")
		name := rest
		if end >= 0 {
			name = rest[:end]
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, errors.New("empty method name (a '+' with nothing before or after it?)")
		}
		if strings.ContainsAny(name, ")=, ") {
			return nil, fmt.Errorf("malformed method name %s", quote(name))
		}
		t := rawTerm{name: name}
		if end < 0 {
			terms = append(terms, t)
			return terms, nil
		}
		rest = rest[end:]
		if rest[0] == '(' {
			close := strings.IndexByte(rest, ')')
			if close < 0 {
				return nil, fmt.Errorf("%s: missing ')'", cut(name))
			}
			body := strings.TrimSpace(rest[1:close])
			if strings.ContainsAny(body, "(+") {
				return nil, fmt.Errorf("%s: unexpected '(' or '+' inside parameters", cut(name))
			}
			if body != "" {
				for _, kvs := range strings.Split(body, ",") {
					k, v, ok := strings.Cut(kvs, "=")
					k, v = strings.TrimSpace(k), strings.TrimSpace(v)
					if !ok || k == "" || v == "" {
						return nil, fmt.Errorf("%s: parameter %s is not key=value", cut(name), quote(strings.TrimSpace(kvs)))
					}
					t.args = append(t.args, [2]string{k, v})
				}
			}
			rest = strings.TrimSpace(rest[close+1:])
		}
		terms = append(terms, t)
		if rest == "" {
			return terms, nil
		}
		if rest[0] != '+' {
			return nil, fmt.Errorf("expected '+' before %s", quote(rest))
		}
		rest = rest[1:]
	}
}

// bind validates raw arguments against a method's parameters and fills in
// defaults.
func bind(m kv.Method, raw [][2]string) (*Term, error) {
	t := &Term{Method: m, Args: kv.Args{}}
	byName := map[string]kv.Param{}
	var valid []string
	for _, p := range m.Params {
		byName[p.Name] = p
		valid = append(valid, p.Name)
	}
	for _, a := range raw {
		p, ok := byName[a[0]]
		if !ok {
			if len(valid) == 0 {
				return nil, fmt.Errorf("takes no parameters, got %s", quote(a[0]))
			}
			return nil, fmt.Errorf("unknown parameter %s (valid: %s)", quote(a[0]), strings.Join(valid, ", "))
		}
		if _, dup := t.Args[p.Name]; dup {
			return nil, fmt.Errorf("parameter %q given twice", p.Name)
		}
		if len(a[1]) > maxQuoted {
			// No valid value is this long; parse errors quote the value whole.
			return nil, fmt.Errorf("%s=%s is not a valid value", p.Name, quote(a[1]))
		}
		v, err := p.Parse(a[1])
		if err != nil {
			return nil, err
		}
		t.Args[p.Name] = v
		t.Given = append(t.Given, p.Name)
	}
	for _, p := range m.Params {
		if _, ok := t.Args[p.Name]; ok {
			continue
		}
		if p.Default == "" {
			return nil, fmt.Errorf("parameter %q is required", p.Name)
		}
		v, err := p.Parse(p.Default)
		if err != nil {
			return nil, fmt.Errorf("bad default: %w", err)
		}
		t.Args[p.Name] = v
	}
	return t, nil
}
