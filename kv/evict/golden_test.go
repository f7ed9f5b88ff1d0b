package evict

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// update rewrites testdata/golden.json from the evictors as they are.
var update = flag.Bool("update", false, "rewrite testdata/golden.json from the current evictors")

const goldenFile = "testdata/golden.json"

// goldenRig is one deterministic scenario: a cache shape, a pattern of
// keys and queries, and what happens to the cache (prompts, decode steps,
// batches of several tokens, a rollback, a second prompt). After every
// event it records which positions each (layer, KV head) holds.
type goldenRig struct {
	name                 string
	layers, heads, group int
	pat                  pattern
	run                  func(r *rig, snap func())
}

// steps decodes n tokens one by one, recording after each.
func steps(r *rig, snap func(), n int) {
	for i := 0; i < n; i++ {
		r.step()
		snap()
	}
}

func prefillThen(prompt, n int) func(r *rig, snap func()) {
	return func(r *rig, snap func()) {
		r.prefill(prompt)
		snap()
		steps(r, snap, n)
	}
}

// spreadPattern: keys and queries of a larger amplitude than noisePattern,
// so that attention differs clearly between tokens, heads and steps.
var spreadPattern = pattern{
	key:   func(l, h, p int) []float32 { return noise(seed(l, h, p), 10) },
	query: func(l, h, p int) []float32 { return noise(seed(l, h, p)+1<<50, 20) },
}

var goldenRigs = []goldenRig{
	{"noise", 3, 3, 2, noisePattern, prefillThen(80, 10)},
	{"spread", 3, 4, 2, spreadPattern, prefillThen(96, 10)},
	{"h2o", 2, 2, 2, h2oPattern, prefillThen(64, 10)},
	{"needle", 4, 2, 2, needlePattern, prefillThen(128, 6)},
	{"tova", 2, 2, 2, tovaPattern, prefillThen(64, 10)},
	{"crush", 2, 4, 1, crushPattern, prefillThen(128, 8)},
	// A prompt that fits most token budgets: the first steps over budget
	// evict.
	{"short", 2, 3, 1, noisePattern, prefillThen(10, 24)},
	// Decode batches of three tokens (several evictions per hook).
	{"batches", 2, 2, 2, noisePattern, func(r *rig, snap func()) {
		r.prefill(48)
		snap()
		for i := 0; i < 6; i++ {
			r.batch(3)
			snap()
		}
	}},
	// A rollback into the kept tokens, then decoding on.
	{"rollback", 2, 2, 2, h2oPattern, func(r *rig, snap func()) {
		r.prefill(64)
		snap()
		steps(r, snap, 4)
		r.c.Truncate(50)
		r.next = 50
		snap()
		steps(r, snap, 8)
	}},
	// A second prompt (a chat turn) after some decoding.
	{"turns", 2, 2, 2, noisePattern, func(r *rig, snap func()) {
		r.prefill(64)
		snap()
		steps(r, snap, 4)
		r.prefill(32)
		snap()
		steps(r, snap, 4)
	}},
	// No prompt announced: fractional budgets cannot resolve.
	{"noprompt", 2, 2, 1, noisePattern, func(r *rig, snap func()) { steps(r, snap, 30) }},
}

// goldenCase is one evictor configuration: key names it in the golden
// file, recipe is what builds it (the same string, except where a method
// changed its spelling and the key keeps the old one).
type goldenCase struct{ key, recipe string }

func spell(name string, kvs ...string) string {
	if len(kvs) == 0 {
		return name
	}
	return name + "(" + strings.Join(kvs, ",") + ")"
}

// crushCase is a KVCrush configuration. Its key keeps the spelling it had
// when KVCrush was an evictor with a base parameter; it is built as the
// base evictor wrapped by KVCrush.
type crushCase struct {
	budget, base, split, anchor, scope, threshold string
	window, kernel, pool, recent                  string
}

// old is the key: kvcrush with its base's parameters.
func (c crushCase) old() string {
	kvs := []string{"budget=" + c.budget, "base=" + c.base, "split=" + c.split, "anchor=" + c.anchor, "scope=" + c.scope, "threshold=" + c.threshold}
	if c.base == "snapkv" {
		kvs = append(kvs, "window="+c.window, "kernel="+c.kernel, "pool="+c.pool)
	} else {
		kvs = append(kvs, "recent="+c.recent)
	}
	return spell("kvcrush", kvs...)
}

// recipe is the same configuration as an evictor and the KVCrush wrapper.
func (c crushCase) recipe() string {
	var base string
	if c.base == "snapkv" {
		base = spell("snapkv", "budget="+c.budget, "window="+c.window, "kernel="+c.kernel, "pool="+c.pool)
	} else {
		base = spell("h2o", "budget="+c.budget, "recent="+c.recent)
	}
	return base + "+" + spell("kvcrush", "split="+c.split, "anchor="+c.anchor, "scope="+c.scope, "threshold="+c.threshold)
}

func goldenCases() []goldenCase {
	var cs []goldenCase
	add := func(r string) { cs = append(cs, goldenCase{r, r}) }
	for _, b := range []string{"1", "3", "12", "24", "0.125", "0.5", "1.0"} {
		for _, s := range []string{"0", "4", "30"} {
			add(spell("streaming", "budget="+b, "sinks="+s))
		}
	}
	for _, b := range []string{"1", "6", "12", "0.25", "0.5"} {
		for _, r := range []string{"0", "0.3", "0.5", "1"} {
			add(spell("h2o", "budget="+b, "recent="+r))
		}
	}
	for _, b := range []string{"1", "5", "8", "12", "0.25", "0.5", "1.0"} {
		add(spell("tova", "budget="+b))
	}
	for _, b := range []string{"6", "15", "24", "0.25"} {
		for _, w := range []string{"1", "8", "32"} {
			for _, k := range []string{"1", "7"} {
				for _, p := range []string{"max", "avg"} {
					add(spell("snapkv", "budget="+b, "window="+w, "kernel="+k, "pool="+p))
				}
			}
		}
	}
	for _, b := range []string{"6", "24", "0.25", "0.5"} {
		for _, w := range []string{"8", "32"} {
			for _, beta := range []string{"1", "5", "20"} {
				add(spell("pyramidkv", "budget="+b, "window="+w, "kernel=7", "pool=max", "beta="+beta))
			}
		}
		for _, kp := range [][2]string{{"1", "max"}, {"3", "avg"}, {"7", "avg"}} {
			add(spell("pyramidkv", "budget="+b, "window=8", "kernel="+kp[0], "pool="+kp[1], "beta=20"))
		}
	}
	for _, c := range crushCases() {
		cs = append(cs, goldenCase{c.old(), c.recipe()})
	}
	return cs
}

func crushCases() []crushCase {
	var cs []crushCase
	for _, base := range []string{"snapkv", "h2o"} {
		for _, scope := range []string{"head", "layer"} {
			d := crushCase{budget: "24", base: base, split: "0.75", anchor: "alternate", scope: scope, threshold: "median",
				window: "8", kernel: "7", pool: "max", recent: "0.5"}
			vary := func(f func(c *crushCase)) {
				c := d
				f(&c)
				cs = append(cs, c)
			}
			for _, b := range []string{"6", "12", "24", "32", "0.25"} {
				vary(func(c *crushCase) { c.budget = b })
			}
			for _, s := range []string{"0", "0.5", "1"} {
				vary(func(c *crushCase) { c.split = s })
			}
			for _, a := range []string{"ones", "zeros", "mean"} {
				vary(func(c *crushCase) { c.anchor = a })
			}
			vary(func(c *crushCase) { c.threshold = "mean" })
			vary(func(c *crushCase) { c.split, c.anchor, c.threshold, c.budget = "0.5", "mean", "mean", "0.5" })
			if base == "snapkv" {
				vary(func(c *crushCase) { c.window = "4" })
				vary(func(c *crushCase) { c.window = "32" })
				vary(func(c *crushCase) { c.kernel = "1" })
				vary(func(c *crushCase) { c.kernel, c.pool = "3", "avg" })
			} else {
				for _, r := range []string{"0", "0.25", "1"} {
					vary(func(c *crushCase) { c.recent = r })
				}
			}
		}
	}
	return cs
}

// build makes the evictor of a recipe of this package's methods
// ("name(k=v,...)+name(...)"), as kv/recipe does (which this package
// cannot import): parameters parsed by kv.Param, defaults filled in, an
// evictor term built first and a wrapper term around it.
func build(recipe string) (kv.Evictor, error) {
	var ev kv.Evictor
	for _, term := range strings.Split(recipe, "+") {
		name, body, _ := strings.Cut(term, "(")
		body = strings.TrimSuffix(body, ")")
		i := slices.IndexFunc(Methods, func(m kv.Method) bool { return m.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown method %s", name)
		}
		m := Methods[i]
		args := kv.Args{}
		given := map[string]string{}
		if body != "" {
			for _, a := range strings.Split(body, ",") {
				k, v, _ := strings.Cut(a, "=")
				given[k] = v
			}
		}
		for _, p := range m.Params {
			s, ok := given[p.Name]
			if !ok {
				s = p.Default
			}
			delete(given, p.Name)
			v, err := p.Parse(s)
			if err != nil {
				return nil, err
			}
			args[p.Name] = v
		}
		if len(given) > 0 {
			return nil, fmt.Errorf("%s: unknown parameters %v", name, given)
		}
		var err error
		switch m.Kind {
		case kv.EvictorMethod:
			ev, err = m.NewEvictor(args)
		case kv.WrapperMethod:
			ev, err = m.Wrap(args, ev)
		default:
			err = fmt.Errorf("%s is not an evictor", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// ranges writes sorted positions as "0-3,7,9-12".
func ranges(p []int) string {
	var b strings.Builder
	for i := 0; i < len(p); {
		j := i
		for j+1 < len(p) && p[j+1] == p[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(p[j]))
		}
		i = j + 1
	}
	return b.String()
}

// delta writes how a stream's positions changed since the last record:
// "+added -removed", "=" for no change.
func delta(prev, cur []int) string {
	var add, del []int
	for _, p := range cur {
		if _, ok := slices.BinarySearch(prev, p); !ok {
			add = append(add, p)
		}
	}
	for _, p := range prev {
		if _, ok := slices.BinarySearch(cur, p); !ok {
			del = append(del, p)
		}
	}
	var parts []string
	if len(add) > 0 {
		parts = append(parts, "+"+ranges(add))
	}
	if len(del) > 0 {
		parts = append(parts, "-"+ranges(del))
	}
	if len(parts) == 0 {
		return "="
	}
	return strings.Join(parts, " ")
}

// record runs one case on one rig: per event a line with every stream's
// change of positions, streams in (layer, head) order, separated by '|',
// or "all " and the change when every stream changed alike.
func record(t *testing.T, g goldenRig, recipe string) []string {
	ev, err := build(recipe)
	if err != nil {
		t.Fatalf("%s: %v", recipe, err)
	}
	r := newRig(t, g.layers, g.heads, g.group, ev, g.pat)
	prev := make([][]int, g.layers*g.heads)
	var out []string
	snap := func() {
		var line []string
		for l := 0; l < g.layers; l++ {
			for h := 0; h < g.heads; h++ {
				cur := r.positions(l, h)
				line = append(line, delta(prev[l*g.heads+h], cur))
				prev[l*g.heads+h] = cur
			}
		}
		if slices.Equal(line[1:], line[:len(line)-1]) {
			out = append(out, "all "+line[0])
			return
		}
		out = append(out, strings.Join(line, " | "))
	}
	g.run(r, snap)
	return out
}

// TestGolden runs every evictor over a range of parameters on the golden
// rigs and compares the positions each stream keeps, after the prompt and
// after every later event, with testdata/golden.json, recorded from the
// evictors before they shared one selection (go test -run TestGolden
// -update rewrites it). Selections are exact (no tolerance): a changed
// position is a changed method.
func TestGolden(t *testing.T) {
	cases := goldenCases()
	got := map[string][]string{}
	var mu sync.Mutex
	// The group returns once its parallel rigs are done.
	t.Run("rigs", func(t *testing.T) {
		for _, g := range goldenRigs {
			t.Run(g.name, func(t *testing.T) {
				t.Parallel()
				for _, c := range cases {
					rec := record(t, g, c.recipe)
					mu.Lock()
					got[g.name+" "+c.key] = rec
					mu.Unlock()
				}
			})
		}
	})
	compareGolden(t, got)
}

func compareGolden(t *testing.T, got map[string][]string) {
	if t.Failed() {
		return
	}
	if *update {
		b, err := json.MarshalIndent(got, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d records to %s", len(got), goldenFile)
		return
	}
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (run with -update to record it)", err)
	}
	var want map[string][]string
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bad := 0
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: recorded but not run", k)
			bad++
			continue
		}
		w := want[k]
		for i := 0; i < max(len(w), len(g)); i++ {
			var wi, gi string
			if i < len(w) {
				wi = w[i]
			}
			if i < len(g) {
				gi = g[i]
			}
			if wi != gi {
				t.Errorf("%s: event %d keeps\n\t%s\nwant\n\t%s", k, i, gi, wi)
				bad++
				break
			}
		}
		if bad >= 20 {
			t.Fatalf("stopping after %d differing records", bad)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: run but not recorded (run with -update to record new cases)", k)
		}
	}
}
