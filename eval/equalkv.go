package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/sample"
)

// budgetParam finds the term and parameter that set a recipe's budget:
// the first parameter of kind kv.BudgetParam, read from the methods'
// declarations, not their names. ok is false for a recipe without one
// (a codec alone keeps every token at a fixed size).
func budgetParam(r *recipe.Recipe) (t *recipe.Term, name string, ok bool) {
	for _, t := range r.Terms {
		for _, p := range t.Method.Params {
			if p.Kind == kv.BudgetParam {
				return t, p.Name, true
			}
		}
	}
	return nil, "", false
}

// WithBudget returns r with its budget parameter set to b, and a short
// name: the parameters the recipe was written with, the budget included.
func WithBudget(r *recipe.Recipe, b kv.Budget) (*recipe.Recipe, string, error) {
	bt, param, ok := budgetParam(r)
	if !ok {
		return nil, "", errors.New("the recipe has no budget parameter")
	}
	var canon, short []string
	for _, t := range r.Terms {
		args := kv.Args{}
		for k, v := range t.Args {
			args[k] = v
		}
		given := t.Given
		if t == bt {
			args[param] = b
			if !containsString(given, param) {
				given = append([]string{param}, given...)
			}
		}
		cp := &recipe.Term{Method: t.Method, Args: args, Given: given}
		canon = append(canon, cp.String())
		if t.Method.Kind == kv.CodecMethod && t.Method.Name == recipe.Default && len(t.Given) == 0 {
			continue // the default codec, as the user left it out
		}
		var kvs []string
		for _, g := range given {
			kvs = append(kvs, fmt.Sprintf("%s=%v", g, args[g]))
		}
		if len(kvs) == 0 {
			short = append(short, t.Method.Name)
		} else {
			short = append(short, fmt.Sprintf("%s(%s)", t.Method.Name, strings.Join(kvs, ",")))
		}
	}
	nr, err := recipe.Parse(strings.Join(canon, "+"))
	if err != nil {
		return nil, "", err
	}
	return nr, strings.Join(short, "+"), nil
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// calibration is what the equal-memory search measures a budget on: the
// prompts and answer lengths of a few cases, one per context length.
type calibration struct {
	prompts [][]int
	maxTok  []int
}

// kvRatio runs every calibration prompt through engine.Generate with r, as
// the task runs do, and returns Σ KV bytes / Σ full f16 bytes at the end.
func (c *calibration) kvRatio(ctx context.Context, e *engine.Engine, r *recipe.Recipe) (float64, error) {
	var kvb, full float64
	for i, p := range c.prompts {
		st, err := e.Generate(ctx, engine.Request{Prompt: p, MaxTokens: c.maxTok[i], Sampling: sample.Params{}, KV: r, StopAtEOG: true})
		if err != nil {
			return 0, err
		}
		kvb += float64(st.KVBytes)
		full += float64(st.FullKVBytes)
	}
	if full == 0 {
		return 0, errors.New("no calibration prompt")
	}
	return kvb / full, nil
}

// equalKVSteps bounds the bisection over the budget fraction: 2^-9 of the
// prompt is under one token at the default lengths.
const equalKVSteps = 9

// EqualKV finds the budget fraction of r at which its cache holds target
// of the full f16 cache on the calibration prompts (Σ bytes at the end of
// each case over Σ full f16 bytes, the report's kv_ratio), by bisection on
// the fraction in (0, 1]: a larger budget never holds fewer bytes. It
// returns the recipe at that budget, its short name and the ratio it
// reached, which differs from target when the recipe cannot reach it
// (its window and generated tokens alone exceed it, or the whole prompt
// is below it).
func (c *calibration) EqualKV(ctx context.Context, e *engine.Engine, r *recipe.Recipe, target float64) (*recipe.Recipe, string, float64, error) {
	at := func(f float64) (*recipe.Recipe, string, float64, error) {
		nr, name, err := WithBudget(r, kv.Budget{Fraction: f})
		if err != nil {
			return nil, "", 0, err
		}
		ratio, err := c.kvRatio(ctx, e, nr)
		return nr, name, ratio, err
	}
	lo, hi := 0.0, 1.0
	best, bestName, bestRatio, err := at(hi)
	if err != nil || bestRatio <= target {
		return best, bestName, bestRatio, err
	}
	for i := 0; i < equalKVSteps; i++ {
		mid := round3((lo + hi) / 2)
		if mid <= lo || mid >= hi {
			break
		}
		nr, name, ratio, err := at(mid)
		if err != nil {
			return nil, "", 0, err
		}
		if ratio > target {
			hi = mid
		} else {
			lo = mid
		}
		if math.Abs(ratio-target) < math.Abs(bestRatio-target) {
			best, bestName, bestRatio = nr, name, ratio
		}
	}
	return best, bestName, bestRatio, nil
}

// round3 rounds a fraction to three decimals, so the recipes' names stay
// short (a thousandth of a 2048-token prompt is two tokens).
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
