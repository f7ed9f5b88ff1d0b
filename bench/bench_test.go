package bench

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv/recipe"
)

// TestInterleave runs the same recipes one after the other and
// interleaved on the embedded model: the caches must end up the same
// (bytes are deterministic), the paired ratio must be what the samples
// say, and profiling hooks must bracket every test.
func TestInterleave(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var recipes []*recipe.Recipe
	for _, s := range []string{"f16", "kivi(bits=4)", "snapkv(budget=0.5)"} {
		r, err := recipe.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		recipes = append(recipes, r)
	}
	cfg := Config{Prompt: 16, Gen: 8, Depths: []int{0, 40}, Reps: 3, Batch: 16, Recipes: recipes}
	separate, err := Run(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Interleave = true
	open, brackets := false, 0
	cfg.Measuring = func(on bool) {
		if on == open {
			t.Errorf("Measuring(%v) while already %v", on, open)
		}
		open = on
		if on {
			brackets++
		}
	}
	paired, err := Run(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if open || brackets != 2*len(cfg.Depths) {
		t.Errorf("Measuring: %d tests bracketed (want %d), still open %v", brackets, 2*len(cfg.Depths), open)
	}
	if len(paired) != len(separate) {
		t.Fatalf("%d interleaved results, %d separate", len(paired), len(separate))
	}
	bytes := map[[3]any]int64{}
	for _, r := range separate {
		if r.VsFirst != 0 {
			t.Errorf("%s %s: VsFirst %g without interleaving", r.Recipe, r.Test, r.VsFirst)
		}
		bytes[[3]any{r.Recipe, r.Test, r.Depth}] = r.KVBytes
	}
	first := map[[2]any]Result{}
	for _, r := range paired {
		key := [3]any{r.Recipe, r.Test, r.Depth}
		if b, ok := bytes[key]; !ok || b != r.KVBytes {
			t.Errorf("%v: %d KV bytes interleaved, %d separate", key, r.KVBytes, b)
		}
		if len(r.Samples) != cfg.Reps {
			t.Fatalf("%v: %d samples", key, len(r.Samples))
		}
		f, ok := first[[2]any{r.Test, r.Depth}]
		if !ok {
			first[[2]any{r.Test, r.Depth}] = r
			if r.VsFirst != 1 {
				t.Errorf("%v: first recipe VsFirst = %g, want 1", key, r.VsFirst)
			}
			continue
		}
		var want float64
		for k := range r.Samples {
			want += r.Samples[k] / f.Samples[k]
		}
		want /= float64(len(r.Samples))
		if math.Abs(r.VsFirst-want) > 1e-12*want || r.VsFirst <= 0 {
			t.Errorf("%v: VsFirst %g, want %g from the samples", key, r.VsFirst, want)
		}
	}
}

// TestParallel runs batched decode on the embedded model: one result per
// (depth, sequence count), every sequence's tokens counted, each cache
// holding depth + Gen tokens, and the timed repetitions bracketed for the
// profiler.
func TestParallel(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, err := recipe.Parse("f16")
	if err != nil {
		t.Fatal(err)
	}
	brackets := 0
	cfg := Config{Prompt: 8, Gen: 4, Depths: []int{0, 12}, Reps: 2, Batch: 16, Recipes: []*recipe.Recipe{r},
		Parallel: []int{1, 3}, Measuring: func(on bool) {
			if on {
				brackets++
			}
		}}
	res, err := Run(context.Background(), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range res {
		got = append(got, fmt.Sprintf("%s/%d", x.Test, x.Depth))
		if x.Seqs == 0 {
			continue
		}
		if x.Tokens != cfg.Gen*x.Seqs || len(x.Samples) != cfg.Reps {
			t.Errorf("%s depth %d: %d tokens, %d samples", x.Test, x.Depth, x.Tokens, len(x.Samples))
		}
		if math.Abs(x.PerSeqTokPerSec*float64(x.Seqs)-x.TokPerSec) > 1e-9*x.TokPerSec {
			t.Errorf("%s: per sequence %g × %d != %g", x.Test, x.PerSeqTokPerSec, x.Seqs, x.TokPerSec)
		}
		if want := int64(x.Seqs) * e.FullCacheBytes(x.Depth+cfg.Gen); x.FullKVBytes != want {
			t.Errorf("%s depth %d: full KV %d bytes, want %d", x.Test, x.Depth, x.FullKVBytes, want)
		}
	}
	want := []string{"pp8/0", "pp8/12", "tg4x1/0", "tg4x3/0", "tg4x1/12", "tg4x3/12"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tests %v, want %v", got, want)
	}
	if brackets != len(want) {
		t.Errorf("%d tests bracketed, want %d", brackets, len(want))
	}
	cfg.Interleave = true
	if _, err := Run(context.Background(), e, cfg); err == nil {
		t.Error("parallel with interleave: no error")
	}
}

// TestRunRefusesBeforeMeasuring: a depth the model's context cannot hold,
// and a recipe that refuses a test's context (a read budget larger than
// it), are refused before any test runs, naming the depth and the recipe,
// whatever their place in the lists.
func TestRunRefusesBeforeMeasuring(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	parse := func(s string) *recipe.Recipe {
		r, err := recipe.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{"depth beyond the context", Config{Prompt: 16, Gen: 8, Depths: []int{0, e.Model.ContextLen - 8}, Recipes: []*recipe.Recipe{parse("f16")}},
			[]string{fmt.Sprintf("depth %d + 16 tokens exceeds the model's context of %d", e.Model.ContextLen-8, e.Model.ContextLen)}},
		{"budget beyond a depth's context", Config{Prompt: 16, Gen: 8, Depths: []int{64, 0}, Recipes: []*recipe.Recipe{parse("f16"), parse("quest(budget=64)")}},
			[]string{"quest(", "at depth 0 (16 tokens)", "read budget of 64 tokens exceeds the context of 16 tokens"}},
		{"budget beyond the batched decode's context", Config{Prompt: 64, Gen: 8, Depths: []int{0}, Parallel: []int{2}, Recipes: []*recipe.Recipe{parse("quest(budget=32)")}},
			[]string{"at depth 0 (8 tokens)", "read budget of 32 tokens exceeds the context of 8 tokens"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Reps, cfg.Batch = 1, 16
			cfg.Progress = func(r Result) { t.Errorf("measured %s at depth %d before refusing", r.Test, r.Depth) }
			res, err := Run(context.Background(), e, cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if len(res) != 0 {
				t.Errorf("%d results before the refusal", len(res))
			}
		})
	}
}
