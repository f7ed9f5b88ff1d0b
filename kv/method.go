package kv

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Method describes one KV method that a recipe can name: what kind of
// method it is, its parameters, where it comes from, and how to build it.
// Each method package exports its Methods; kv/recipe registers them and
// parses recipe strings against them. A method declares everything its
// callers need (kind, memory behaviour through what it builds), so that no
// package outside its own and the registry spells its name.
type Method struct {
	Name    string
	Kind    MethodKind
	Summary string
	// Paper cites the source ("KIVI, Liu et al. 2024, arXiv:2402.02750").
	Paper  string
	Params []Param
	// NewCodec builds the key and value codecs (Kind == CodecMethod).
	NewCodec func(a Args) (k, v Codec, err error)
	// NewEvictor builds the evictor (Kind == EvictorMethod).
	NewEvictor func(a Args) (Evictor, error)
	// Wrap builds an evictor that changes how the recipe's evictor inner
	// selects (Kind == WrapperMethod): kvpress's wrapper presses, KVCrush.
	Wrap func(a Args, inner Evictor) (Evictor, error)
	// NewSelector builds the page selector (Kind == SelectorMethod).
	NewSelector func(a Args) (Selector, error)
	// NewRepair builds the chunk-repair policy (Kind == RepairMethod).
	NewRepair func(a Args) (Repair, error)
}

// MethodKind says what a method does to the cache. The order of the kinds
// is the order in which they act on a token, and the order of the terms of
// a canonical recipe: a repair policy decides whether a prompt token's keys
// and values are computed or taken from a chunk cache, the evictor decides
// whether a token stays, a wrapper changes that decision, a selector decides
// whether a decode step reads the page that holds it, and the codec decides
// how it is stored. Later kinds (projections such as TransMLA, merging) are
// added here with their place in that order.
type MethodKind int

// Kinds of methods.
const (
	// RepairMethod reuses the chunk caches of a prompt's chunks and
	// chooses which of their tokens to compute again (Cache-Craft,
	// CacheBlend, EPIC); the engine runs it, the cache never sees it.
	RepairMethod MethodKind = iota
	// EvictorMethod chooses which tokens to keep, and deletes the others.
	EvictorMethod
	// WrapperMethod modifies the recipe's evictor (it needs one).
	WrapperMethod
	// SelectorMethod chooses, at each decode step, the pages attention
	// reads per layer and KV head; it deletes nothing.
	SelectorMethod
	// CodecMethod stores every token in some encoding.
	CodecMethod
)

func (k MethodKind) String() string {
	switch k {
	case RepairMethod:
		return "repair"
	case EvictorMethod:
		return "evict"
	case WrapperMethod:
		return "wrap"
	case SelectorMethod:
		return "select"
	case CodecMethod:
		return "codec"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParamKind is the type of a method parameter.
type ParamKind int

// Parameter types.
const (
	IntParam    ParamKind = iota
	FloatParam            // a number in [Min, Max]
	BudgetParam           // a token count (>= 1) or a fraction of the prompt in (0, 1]
	ChoiceParam           // one of Choices
)

// Param describes one parameter of a method.
type Param struct {
	Name     string
	Kind     ParamKind
	Default  string
	Min, Max float64 // for IntParam and FloatParam
	Choices  []string
	Help     string
}

// Budget is how many tokens a (layer, KV head) keeps: a count, or a fraction
// of the prompt.
type Budget struct {
	Tokens   int
	Fraction float64
}

// ParseBudget reads "512" as 512 tokens and "0.25" as a quarter of the
// prompt. A fraction must lie in (0, 1]; a count must be at least 1.
func ParseBudget(s string) (Budget, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 {
			return Budget{}, fmt.Errorf("budget %d must be at least 1 token", n)
		}
		return Budget{Tokens: n}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return Budget{}, fmt.Errorf("budget %q is neither a token count nor a fraction", s)
	}
	if f <= 0 || f > 1 {
		return Budget{}, fmt.Errorf("budget fraction %g must be in (0, 1]; use a whole number for a token count", f)
	}
	return Budget{Fraction: f}, nil
}

// Resolve turns the budget into a token count for a prompt of n tokens
// (never less than 1).
func (b Budget) Resolve(prompt int) int {
	if b.Tokens > 0 {
		return b.Tokens
	}
	return max(1, int(math.Round(b.Fraction*float64(prompt))))
}

// String is the budget's canonical spelling, which ParseBudget reads back
// as the same budget: a count is a whole number ("512", "1") and a fraction
// always has a point or an exponent ("0.25", "1.0"), so that "budget=1" (one
// token) and "budget=1.0" (the whole prompt) stay different recipes after a
// round trip through a report or the server's echo.
func (b Budget) String() string {
	if b.Tokens > 0 {
		return strconv.Itoa(b.Tokens)
	}
	s := strconv.FormatFloat(b.Fraction, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// IsZero reports whether no budget is set.
func (b Budget) IsZero() bool { return b.Tokens == 0 && b.Fraction == 0 }

// Args are a method's validated parameter values, defaults filled in.
type Args map[string]any

// Int returns an IntParam.
func (a Args) Int(name string) int { return a[name].(int) }

// Float returns a FloatParam.
func (a Args) Float(name string) float64 { return a[name].(float64) }

// Budget returns a BudgetParam.
func (a Args) Budget(name string) Budget { return a[name].(Budget) }

// Choice returns a ChoiceParam.
func (a Args) Choice(name string) string { return a[name].(string) }

// Parse validates one parameter value.
func (p Param) Parse(s string) (any, error) {
	switch p.Kind {
	case IntParam:
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s=%s is not an integer", p.Name, s)
		}
		if float64(n) < p.Min || float64(n) > p.Max {
			return nil, fmt.Errorf("%s=%d is outside [%g, %g]", p.Name, n, p.Min, p.Max)
		}
		return n, nil
	case FloatParam:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) {
			return nil, fmt.Errorf("%s=%s is not a number", p.Name, s)
		}
		if f < p.Min || f > p.Max {
			return nil, fmt.Errorf("%s=%g is outside [%g, %g]", p.Name, f, p.Min, p.Max)
		}
		return f, nil
	case BudgetParam:
		b, err := ParseBudget(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		return b, nil
	case ChoiceParam:
		for _, c := range p.Choices {
			if s == c {
				return s, nil
			}
		}
		return nil, fmt.Errorf("%s=%s is not one of %v", p.Name, s, p.Choices)
	}
	return nil, fmt.Errorf("%s: unknown parameter kind", p.Name)
}

// Describe renders the parameter's type and range for help output.
func (p Param) Describe() string {
	switch p.Kind {
	case IntParam:
		return fmt.Sprintf("int %g..%g", p.Min, p.Max)
	case FloatParam:
		return fmt.Sprintf("float %g..%g", p.Min, p.Max)
	case BudgetParam:
		return "tokens (N) or fraction of prompt (0<f<=1)"
	case ChoiceParam:
		return fmt.Sprintf("one of %v", p.Choices)
	}
	return "?"
}
