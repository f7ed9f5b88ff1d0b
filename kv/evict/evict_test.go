package evict

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

func tokens(n int) kv.Budget { return kv.Budget{Tokens: n} }

// --- StreamingLLM ---

func TestStreamingKeepsSinksAndRecent(t *testing.T) {
	r := newRig(t, 2, 2, 2, NewStreaming(tokens(16), 4), noisePattern)
	r.prefill(64)
	want := union(rangeInts(0, 4), rangeInts(52, 64))
	for l, p := range r.checkAligned() {
		if !slices.Equal(p, want) {
			t.Fatalf("after prefill layer %d keeps %v, want %v", l, p, want)
		}
	}
	for i := 0; i < 10; i++ {
		r.step()
		want := union(rangeInts(0, 4), rangeInts(r.next-12, r.next))
		for l, p := range r.checkAligned() {
			if !slices.Equal(p, want) {
				t.Fatalf("step %d layer %d keeps %v, want %v", i, l, p, want)
			}
		}
	}
}

func TestStreamingFractionAndTinyBudgets(t *testing.T) {
	// A quarter of a 64-token prompt is 16 tokens.
	r := newRig(t, 1, 1, 1, NewStreaming(kv.Budget{Fraction: 0.25}, 4), noisePattern)
	r.prefill(64)
	if n := r.c.Stream(0, 0).Len(); n != 16 {
		t.Fatalf("budget 0.25 of 64 keeps %d tokens, want 16", n)
	}
	// Sinks >= budget: the sinks shrink so the newest token stays.
	r = newRig(t, 1, 1, 1, NewStreaming(tokens(3), 4), noisePattern)
	r.prefill(20)
	if p := r.positions(0, 0); !slices.Equal(p, []int{0, 1, 19}) {
		t.Fatalf("budget 3 with 4 sinks keeps %v, want [0 1 19]", p)
	}
	r = newRig(t, 1, 1, 1, NewStreaming(tokens(1), 4), noisePattern)
	r.prefill(20)
	r.step()
	if p := r.positions(0, 0); !slices.Equal(p, []int{20}) {
		t.Fatalf("budget 1 keeps %v, want the newest token [20]", p)
	}
}

// TestMemoryFallsWithEviction checks that eviction frees memory, not just
// a count: the cache's bytes fall by about the budget ratio after prefill
// and stay flat while decoding, where a full cache keeps growing.
func TestMemoryFallsWithEviction(t *testing.T) {
	const n, budget = 512, 64
	full := newRig(t, 2, 2, 1, nil, noisePattern)
	full.prefill(n)
	r := newRig(t, 2, 2, 1, NewH2O(tokens(budget), 0.5), noisePattern)
	r.stage(n)
	staged := r.c.Bytes()
	r.c.EndPrefill()
	after := r.c.Bytes()
	if staged < full.c.Bytes() {
		t.Fatalf("staged prompt holds %d bytes, less than the full cache's %d", staged, full.c.Bytes())
	}
	// Kept tokens' keys and values are budget*2*dim*4 bytes per stream;
	// allow page rounding (one page of 32 tokens), the positions and the
	// evictor's per-token statistics (12 bytes a token).
	per := int64(budget+32) * (2*dim*4 + 12)
	if after > 4*per || after*4 > full.c.Bytes() {
		t.Fatalf("after eviction %d bytes (full cache %d, staged %d); want about %d", after, full.c.Bytes(), staged, 4*int64(budget)*2*dim*4)
	}
	fullBefore := full.c.Bytes()
	for i := 0; i < 200; i++ {
		r.step()
		full.step()
	}
	// Decoding deletes from sealed pages; the core re-encodes them once
	// they are sparse, so memory stays within a small factor of the kept
	// tokens while the full cache grows with every token.
	if b := r.c.Bytes(); b > 3*after || b*4 > full.c.Bytes() {
		t.Fatalf("after 200 decode steps the evicting cache holds %d bytes (%d after prefill, full cache %d)", b, after, full.c.Bytes())
	}
	if grew := full.c.Bytes() - fullBefore; grew < 4*200*2*dim*4 {
		t.Fatalf("full cache grew by %d bytes over 200 tokens", grew)
	}
	if got := r.c.Tokens(); got != 4*budget {
		t.Fatalf("cache holds %d entries, want %d", got, 4*budget)
	}
}

// --- H2O ---

// h2oPattern: every query points at axis 1; head h's heavy hitters are
// 0, 20+5h and 40+5h, whose keys lie on axis 1.
func h2oHeavy(h int) []int { return []int{0, 20 + 5*h, 40 + 5*h} }

var h2oPattern = pattern{
	key: func(l, h, p int) []float32 {
		if slices.Contains(h2oHeavy(h), p) {
			return spike(seed(l, h, p), 1, 6)
		}
		return noise(seed(l, h, p), 1)
	},
	query: func(l, h, p int) []float32 { return spike(seed(l, h, p)+1<<50, 1, 4) },
}

func TestH2OKeepsHeavyHittersAndRecent(t *testing.T) {
	e := NewH2O(tokens(6), 0.5)
	r := newRig(t, 1, 2, 2, e, h2oPattern)
	r.stage(64)
	// Window -1: every prompt query's attention is collected.
	obs := slices.Clone(r.c.Stream(0, 0).Observed())
	r.c.EndPrefill()
	for h := 0; h < 2; h++ {
		want := union(h2oHeavy(h), rangeInts(61, 64))
		if p := r.positions(0, h); !slices.Equal(p, want) {
			t.Fatalf("head %d keeps %v, want %v", h, p, want)
		}
	}
	// The accumulated scores are the attention summed over all prompt
	// queries and the group's heads, kept aligned with the tokens.
	want := make([]float64, 64)
	for q := 0; q < 64; q++ {
		for i, p := range r.probs(0, 0, q, rangeInts(0, q+1)) {
			want[i] += p
		}
	}
	for i := range obs {
		if math.Abs(float64(obs[i])-want[i]) > 1e-3*max(1, want[i]) {
			t.Fatalf("observed[%d] = %g, naive %g", i, obs[i], want[i])
		}
	}
	s := r.c.Stream(0, 0)
	for i, p := range s.Positions() {
		if math.Abs(float64(s.Acc()[i])-want[p]) > 1e-3*max(1, want[p]) {
			t.Fatalf("acc of position %d = %g, want %g", p, s.Acc()[i], want[p])
		}
	}
	// Decode: each step adds its probabilities and evicts the lowest
	// outside the recent window.
	for i := 0; i < 8; i++ {
		before := r.positions(0, 0)
		acc := slices.Clone(s.Acc())
		r.step()
		add := r.probs(0, 0, r.next-1, append(before, r.next-1))
		for h := 0; h < 2; h++ {
			want := union(h2oHeavy(h), rangeInts(r.next-3, r.next))
			if p := r.positions(0, h); !slices.Equal(p, want) {
				t.Fatalf("step %d head %d keeps %v, want %v", i, h, p, want)
			}
		}
		for j, p := range s.Positions() {
			old := 0.0
			if k := slices.Index(before, int(p)); k >= 0 {
				old = float64(acc[k])
			}
			w := old + add[slices.Index(append(before, r.next-1), int(p))]
			if math.Abs(float64(s.Acc()[j])-w) > 1e-3*max(1, w) {
				t.Fatalf("step %d: acc of %d = %g, want %g", i, p, s.Acc()[j], w)
			}
		}
	}
}

// TestH2OEvictsLowestEachStep predicts, per stream, which token a decode
// step evicts (the lowest accumulated score outside the recent window,
// this step's probabilities included) and checks the cache evicted it.
func TestH2OEvictsLowestEachStep(t *testing.T) {
	e := NewH2O(tokens(10), 0.3)
	r := newRig(t, 1, 2, 1, e, noisePattern)
	r.prefill(40)
	for i := 0; i < 20; i++ {
		var want [2][]int
		var margin [2]float64
		for h := 0; h < 2; h++ {
			s := r.c.Stream(0, h)
			all := append(r.positions(0, h), r.next)
			add := r.probs(0, h, r.next, all)
			score := make([]float64, len(all))
			for j := range all {
				score[j] = add[j]
				if j < s.Len() {
					score[j] += float64(s.Acc()[j])
				}
			}
			lo := 0
			for j := 1; j < len(all)-3; j++ {
				if score[j] < score[lo] {
					lo = j
				}
			}
			margin[h] = math.Inf(1)
			for j := 0; j < len(all)-3; j++ {
				if j != lo {
					margin[h] = min(margin[h], score[j]-score[lo])
				}
			}
			want[h] = slices.Delete(all, lo, lo+1)
		}
		r.step()
		for h := 0; h < 2; h++ {
			if p := r.positions(0, h); !slices.Equal(p, want[h]) && margin[h] > 1e-5 {
				t.Fatalf("step %d head %d keeps %v, want %v", i, h, p, want[h])
			}
			if n := r.c.Stream(0, h).Len(); n != 10 {
				t.Fatalf("step %d head %d holds %d tokens, want 10", i, h, n)
			}
		}
	}
}

// --- Methods ---

// defaults parses every parameter's default with kv.Param.Parse.
func defaults(t *testing.T, m kv.Method) kv.Args {
	args := kv.Args{}
	for _, p := range m.Params {
		if p.Help == "" || p.Default == "" {
			t.Errorf("%s.%s: missing help or default", m.Name, p.Name)
		}
		v, err := p.Parse(p.Default)
		if err != nil {
			t.Errorf("%s.%s: default %q: %v", m.Name, p.Name, p.Default, err)
			continue
		}
		args[p.Name] = v
	}
	return args
}

// TestMethodsDefaultsBuild builds each evictor from its defaults, and the
// wrapper around each evictor built from its defaults.
func TestMethodsDefaultsBuild(t *testing.T) {
	want := []string{"streaming", "h2o", "tova", "snapkv", "pyramidkv", "knorm", "kvcrush"}
	var got []string
	var evictors, wrappers []kv.Method
	for _, m := range Methods {
		got = append(got, m.Name)
		if m.Summary == "" || !strings.Contains(m.Paper, "arXiv:") {
			t.Errorf("%s: summary %q, paper %q (want an arXiv id)", m.Name, m.Summary, m.Paper)
		}
		switch {
		case m.Kind == kv.EvictorMethod && m.NewEvictor != nil && m.Wrap == nil && m.NewCodec == nil:
			evictors = append(evictors, m)
		case m.Kind == kv.WrapperMethod && m.Wrap != nil && m.NewEvictor == nil && m.NewCodec == nil:
			wrappers = append(wrappers, m)
		default:
			t.Errorf("%s: kind %s does not match its constructors", m.Name, m.Kind)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("methods %v, want %v", got, want)
	}
	// Every default configuration runs on a real cache and keeps half of
	// the prompt.
	run := func(name string, e kv.Evictor) {
		r := newRig(t, 2, 2, 2, e, noisePattern)
		r.prefill(96)
		for l := 0; l < 2; l++ {
			total := 0
			for h := 0; h < 2; h++ {
				total += r.c.Stream(l, h).Len()
			}
			if !strings.HasPrefix(name, "pyramidkv") && total != 2*48 {
				t.Errorf("%s: layer %d keeps %d entries, want %d", name, l, total, 2*48)
			}
		}
		if n := r.c.Tokens(); n != 4*48 {
			t.Errorf("%s: cache keeps %d entries, want %d", name, n, 4*48)
		}
	}
	for _, m := range evictors {
		e, err := m.NewEvictor(defaults(t, m))
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		if e.Name() != m.Name {
			t.Errorf("%s: evictor named %q", m.Name, e.Name())
		}
		run(m.Name, e)
		for _, w := range wrappers {
			inner, _ := m.NewEvictor(defaults(t, m))
			e, err := w.Wrap(defaults(t, w), inner)
			if err != nil {
				t.Errorf("%s+%s: %v", m.Name, w.Name, err)
				continue
			}
			if want := m.Name + "+" + w.Name; e.Name() != want {
				t.Errorf("%s: wrapped evictor named %q", want, e.Name())
			}
			want := inner.Bound()
			want.Rolling = false // a wrapper selects from the whole prompt
			if e.Bound() != want {
				t.Errorf("%s+%s: bound %+v, want %+v", m.Name, w.Name, e.Bound(), want)
			}
			run(m.Name+"+"+w.Name, e)
		}
	}
}

// TestWrapNeedsARankingEvictor: KVCrush wraps only the evictors of this
// package, which rank tokens, and says so for anything else.
func TestWrapNeedsARankingEvictor(t *testing.T) {
	for _, inner := range []kv.Evictor{nil, nopEvictor{}, (*Ranked)(nil), crush(t, NewH2O(tokens(8), 0.5), 0.75, "head")} {
		_, err := NewKVCrush(inner, 0.75, "alternate", "head", "median")
		if err == nil || err.Error() != "kvcrush needs an evictor that ranks tokens" {
			t.Errorf("%T: error %v", inner, err)
		}
	}
	i := slices.IndexFunc(Methods, func(m kv.Method) bool { return m.Kind == kv.WrapperMethod })
	w := Methods[i]
	if e, err := w.Wrap(defaults(t, w), nopEvictor{}); err == nil || e != nil {
		t.Errorf("%s.Wrap of a non-ranking evictor: %v, %v", w.Name, e, err)
	}
}

func TestMethodsRejectEvenKernel(t *testing.T) {
	for _, m := range Methods {
		args := kv.Args{}
		has := false
		for _, p := range m.Params {
			v, _ := p.Parse(p.Default)
			args[p.Name] = v
			has = has || p.Name == "kernel"
		}
		if !has {
			continue
		}
		args["kernel"] = 6
		if _, err := m.NewEvictor(args); err == nil || !strings.Contains(err.Error(), "odd") {
			t.Errorf("%s: kernel=6 gives %v, want an error about odd kernels", m.Name, err)
		}
	}
}

// TestFractionNeedsAPrompt: without BeginPrefill a fractional budget has
// nothing to refer to and nothing is evicted; a token budget applies.
func TestFractionNeedsAPrompt(t *testing.T) {
	r := newRig(t, 1, 1, 1, NewStreaming(kv.Budget{Fraction: 0.5}, 1), noisePattern)
	for i := 0; i < 10; i++ {
		r.step()
	}
	if n := r.c.Stream(0, 0).Len(); n != 10 {
		t.Fatalf("fractional budget without a prompt keeps %d of 10", n)
	}
	r = newRig(t, 1, 1, 1, NewStreaming(tokens(4), 1), noisePattern)
	for i := 0; i < 10; i++ {
		r.step()
	}
	if p := r.positions(0, 0); !slices.Equal(p, []int{0, 7, 8, 9}) {
		t.Fatalf("token budget without a prompt keeps %v", p)
	}
}

// --- selection ---

func TestSelectTopMatchesSort(t *testing.T) {
	for trial := 0; trial < 200; trial++ {
		n := 1 + int(mix(uint64(trial))%300)
		s := make([]float32, n)
		for i := range s {
			// Few distinct values, so ties are common.
			s[i] = float32(mix(uint64(trial*1000+i)) % uint64(1+trial%7))
		}
		k := int(mix(uint64(trial)+99) % uint64(n+1))
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(i)
		}
		selectTop(idx, s, k)
		ref := make([]int32, n)
		for i := range ref {
			ref[i] = int32(i)
		}
		slices.SortFunc(ref, func(a, b int32) int {
			if better(s, a, b) {
				return -1
			}
			return 1
		})
		got := slices.Clone(idx[:k])
		slices.Sort(got)
		want := slices.Clone(ref[:k])
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d n=%d k=%d: top %v, want %v", trial, n, k, got, want)
		}
		if k > 0 && k < n && idx[k-1] != ref[k-1] {
			t.Fatalf("trial %d: k-th best %d, want %d", trial, idx[k-1], ref[k-1])
		}
		var sc scratch
		mask := make([]bool, n)
		sc.keepTop(mask, s, n, k)
		for i := range mask {
			if mask[i] != slices.Contains(want, int32(i)) {
				t.Fatalf("trial %d: keepTop mask differs at %d", trial, i)
			}
		}
	}
}

// TestStreamingRollsThroughThePrompt: StreamingLLM needs no statistics of
// the prompt, so it evicts after every batch of it and never holds more
// than its budget plus one batch, where a staging evictor holds the whole
// prompt until it chooses.
func TestStreamingRollsThroughThePrompt(t *testing.T) {
	const budget, batch, batches = 64, 128, 6
	r := newRig(t, 2, 2, 1, NewStreaming(tokens(budget), 4), noisePattern)
	if !r.c.Config().Evictor.Bound().Rolling {
		t.Fatal("streaming does not declare itself rolling")
	}
	r.c.BeginPrefill(batch * batches)
	for i := 0; i < batches; i++ {
		r.batch(batch)
		if got := r.c.Tokens(); got != 4*budget {
			t.Fatalf("after prompt batch %d the cache holds %d entries, want %d", i, got, 4*budget)
		}
	}
	if r.c.Prefilling() {
		t.Fatal("a rolling evictor's prompt is staged")
	}
	// The peak is the budget plus one batch, per stream.
	full := newRig(t, 2, 2, 1, nil, noisePattern)
	full.prefill(budget + batch)
	if p := r.c.PeakBytes(); p > full.c.Bytes()+full.c.Bytes()/8 {
		t.Fatalf("peak %d bytes, over a cache of the budget plus one batch (%d)", p, full.c.Bytes())
	}
	pos := r.c.Stream(0, 0).Positions()
	if pos[0] != 0 || pos[3] != 3 || pos[len(pos)-1] != batch*batches-1 {
		t.Fatalf("kept positions %v..., want the sinks and the most recent tokens", pos[:6])
	}
}
