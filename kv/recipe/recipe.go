// Package recipe parses KV recipes, the one string form in which the CLI,
// config files and the server name a stack of KV methods:
//
//	name(key=value,...)+name(...)
//
// e.g. "snapkv(budget=0.25)+kivi(bits=2)". A recipe has at most one codec
// (how tokens are stored; f16 when absent) and at most one evictor (which
// tokens are kept; all when absent).
package recipe

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/evict"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// Methods returns every method a recipe may name, codecs first, by name.
func Methods() []kv.Method {
	var ms []kv.Method
	ms = append(ms, kvquant.Methods...)
	ms = append(ms, evict.Methods...)
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Kind != ms[j].Kind {
			return ms[i].Kind < ms[j].Kind
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

// Recipe is a parsed, validated recipe.
type Recipe struct {
	Codec   *Term
	Evictor *Term
}

// Default is the recipe used when none is given: the full F16 cache.
const Default = "f16"

// Parse parses and validates a recipe. An empty string is the default.
func Parse(s string) (*Recipe, error) {
	src := strings.TrimSpace(s)
	if src == "" {
		src = Default
	}
	terms, err := split(src)
	if err != nil {
		return nil, fmt.Errorf("recipe %q: %w", s, err)
	}
	r := &Recipe{}
	for _, t := range terms {
		m, ok := lookup(t.name)
		if !ok {
			return nil, fmt.Errorf("recipe %q: unknown method %q (valid: %s)", s, t.name, strings.Join(Names(), ", "))
		}
		term, err := bind(m, t.args)
		if err != nil {
			return nil, fmt.Errorf("recipe %q: %s: %w", s, m.Name, err)
		}
		slot := &r.Codec
		if m.Kind == kv.EvictorMethod {
			slot = &r.Evictor
		}
		if *slot != nil {
			return nil, fmt.Errorf("recipe %q: %s and %s are both %s methods; a recipe takes at most one of each kind", s, (*slot).Method.Name, m.Name, m.Kind)
		}
		*slot = term
	}
	if r.Codec == nil {
		m, _ := lookup(Default)
		r.Codec, _ = bind(m, nil)
	}
	return r, nil
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
// out (defaults included), so reports say exactly what ran.
func (r *Recipe) String() string {
	var parts []string
	if r.Evictor != nil {
		parts = append(parts, r.Evictor.String())
	}
	parts = append(parts, r.Codec.String())
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

// Config builds fresh codecs and evictor for one cache.
func (r *Recipe) Config() (kv.Config, error) {
	var cfg kv.Config
	var err error
	cfg.K, cfg.V, err = r.Codec.Method.NewCodec(r.Codec.Args)
	if err != nil {
		return cfg, fmt.Errorf("recipe: %s: %w", r.Codec.Method.Name, err)
	}
	if r.Evictor != nil {
		if cfg.Evictor, err = r.Evictor.Method.NewEvictor(r.Evictor.Args); err != nil {
			return cfg, fmt.Errorf("recipe: %s: %w", r.Evictor.Method.Name, err)
		}
	}
	return cfg, nil
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
			return nil, fmt.Errorf("malformed method name %q", name)
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
				return nil, fmt.Errorf("%s: missing ')'", name)
			}
			body := strings.TrimSpace(rest[1:close])
			if strings.ContainsAny(body, "(+") {
				return nil, fmt.Errorf("%s: unexpected '(' or '+' inside parameters", name)
			}
			if body != "" {
				for _, kvs := range strings.Split(body, ",") {
					k, v, ok := strings.Cut(kvs, "=")
					k, v = strings.TrimSpace(k), strings.TrimSpace(v)
					if !ok || k == "" || v == "" {
						return nil, fmt.Errorf("%s: parameter %q is not key=value", name, strings.TrimSpace(kvs))
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
			return nil, fmt.Errorf("expected '+' before %q", rest)
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
				return nil, fmt.Errorf("takes no parameters, got %q", a[0])
			}
			return nil, fmt.Errorf("unknown parameter %q (valid: %s)", a[0], strings.Join(valid, ", "))
		}
		if _, dup := t.Args[p.Name]; dup {
			return nil, fmt.Errorf("parameter %q given twice", p.Name)
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
