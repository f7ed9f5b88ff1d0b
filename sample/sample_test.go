package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

var (
	inf  = float32(math.Inf(1))
	ninf = float32(math.Inf(-1))
	nan  = float32(math.NaN())
)

func mustNew(t testing.TB, p Params) *Sampler {
	t.Helper()
	s, err := New(p)
	if err != nil {
		t.Fatalf("New(%+v): %v", p, err)
	}
	return s
}

// logitsOf turns probabilities into logits (log p); the softmax of the result
// is exactly the given distribution, which keeps hand-made cases readable.
func logitsOf(probs ...float64) []float32 {
	out := make([]float32, len(probs))
	for i, p := range probs {
		out[i] = float32(math.Log(p))
	}
	return out
}

func randomLogits(r *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * scale)
	}
	return out
}

// ids returns the candidate ids in ascending order.
func ids(c []cand) []int {
	out := make([]int, len(c))
	for i, x := range c {
		out[i] = int(x.id)
	}
	slices.Sort(out)
	return out
}

func TestGreedyFirstMax(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
		want   int
	}{
		{"single", []float32{3}, 0},
		{"plain", []float32{1, 5, 2}, 1},
		{"tie first wins", []float32{1, 7, 3, 7, 7}, 1},
		{"tie at start", []float32{9, 9}, 0},
		{"negative", []float32{-3, -1, -2}, 1},
		{"masked", []float32{ninf, -100, ninf}, 1},
		{"nan ignored", []float32{nan, 1, nan, 2}, 3},
		{"plus inf wins", []float32{1e30, inf, 3}, 1},
		{"all masked", []float32{ninf, ninf, ninf}, 0},
		{"all nan", []float32{nan, nan}, 0},
		{"empty", nil, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, Params{}) // zero value is greedy
			if got := s.Sample(tc.logits); got != tc.want {
				t.Fatalf("Sample(%v) = %d, want %d", tc.logits, got, tc.want)
			}
		})
	}
}

func TestTopK1EqualsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, temp := range []float32{0.05, 0.8, 1, 3, 100} {
		t.Run(fmt.Sprint(temp), func(t *testing.T) {
			s := mustNew(t, Params{Temperature: temp, TopK: 1, Seed: 7})
			g := mustNew(t, Params{})
			for trial := range 200 {
				l := randomLogits(r, 500, 2)
				if trial%3 == 0 { // force ties for the maximum
					l[10], l[400] = 50, 50
				}
				if got, want := s.Sample(l), g.Sample(l); got != want {
					t.Fatalf("trial %d: top-k=1 gave %d, greedy %d", trial, got, want)
				}
			}
		})
	}
}

func TestTopP(t *testing.T) {
	// Ids are deliberately not in probability order.
	dist := logitsOf(0.15, 0.05, 0.5, 0.3) // sorted: 2 (.5), 3 (.3), 0 (.15), 1 (.05)
	tests := []struct {
		name string
		p    Params
		want []int
	}{
		{"mass below first", Params{TopP: 0.4}, []int{2}},
		{"two tokens", Params{TopP: 0.75}, []int{2, 3}},
		{"three tokens", Params{TopP: 0.81}, []int{0, 2, 3}},
		{"needs all", Params{TopP: 0.99}, []int{0, 1, 2, 3}},
		{"disabled", Params{TopP: 1}, []int{0, 1, 2, 3}},
		{"after top-k", Params{TopK: 3, TopP: 0.99}, []int{0, 2, 3}},
		// Top-p measures mass on the set top-k left: .5/.95 ≈ .526 >= .52.
		{"renormalised after top-k", Params{TopK: 3, TopP: 0.52}, []int{2}},
		{"with min-p prefilter", Params{TopP: 0.99, MinP: 0.2}, []int{0, 2, 3}},
		{"top-p tighter than min-p", Params{TopP: 0.75, MinP: 0.2}, []int{2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Temperature = 1
			s := mustNew(t, tc.p)
			got := ids(s.filter(s.prepare(dist)))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("kept %v, want %v", got, tc.want)
			}
			// The public path must never produce a token outside the set.
			for range 2000 {
				if id := s.Sample(dist); !slices.Contains(tc.want, id) {
					t.Fatalf("Sample returned %d outside kept set %v", id, tc.want)
				}
			}
		})
	}
}

func TestMinP(t *testing.T) {
	dist := logitsOf(0.04, 0.4, 0.06, 0.3, 0.2)
	tests := []struct {
		minP float32
		want []int
	}{
		{0, []int{0, 1, 2, 3, 4}},
		{0.05, []int{0, 1, 2, 3, 4}}, // threshold .02
		{0.125, []int{1, 2, 3, 4}},   // threshold .05 drops .04
		{0.6, []int{1, 3}},           // threshold .24
		{0.9, []int{1}},              // only the top token
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.minP), func(t *testing.T) {
			for _, k := range []int{0, 4} { // unsorted and sorted paths
				s := mustNew(t, Params{Temperature: 1, MinP: tc.minP, TopK: k})
				got := ids(s.filter(s.prepare(dist)))
				want := tc.want
				if k == 4 {
					want = slices.DeleteFunc(slices.Clone(want), func(id int) bool { return id == 0 })
				}
				if !slices.Equal(got, want) {
					t.Fatalf("top_k %d: kept %v, want %v", k, got, want)
				}
			}
		})
	}
}

func TestRepeatPenalty(t *testing.T) {
	tests := []struct {
		name     string
		p        Params
		accepted []int
		logits   []float32
		want     int
	}{
		{"positive logit divided", Params{RepeatPenalty: 1.1, RepeatLastN: 64}, []int{0}, []float32{2, 1.9, -1}, 1},
		{"negative logit multiplied", Params{RepeatPenalty: 1.1, RepeatLastN: 64}, []int{0}, []float32{-1, -1.05}, 1},
		{"repeats penalised once", Params{RepeatPenalty: 1.1, RepeatLastN: 64}, []int{0, 0, 0}, []float32{2, 1.7}, 0},
		{"disabled at 1", Params{RepeatPenalty: 1, RepeatLastN: 64}, []int{0}, []float32{2, 1.9}, 0},
		{"disabled by last_n 0", Params{RepeatPenalty: 1.5, RepeatLastN: 0}, []int{0}, []float32{2, 1.9}, 0},
		{"outside window", Params{RepeatPenalty: 1.5, RepeatLastN: 2}, []int{0, 2, 2}, []float32{2, 1.9, 0}, 0},
		{"inside window", Params{RepeatPenalty: 1.5, RepeatLastN: 3}, []int{0, 2, 2}, []float32{2, 1.9, 0}, 1},
		{"out-of-range ids ignored", Params{RepeatPenalty: 1.5, RepeatLastN: 4}, []int{-1, 99}, []float32{2, 1.9}, 0},
		{"penalty below 1 boosts", Params{RepeatPenalty: 0.5, RepeatLastN: 4}, []int{1}, []float32{2, 1.9}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.p)
			for _, id := range tc.accepted {
				s.Accept(id)
			}
			orig := slices.Clone(tc.logits)
			if got := s.Sample(tc.logits); got != tc.want {
				t.Fatalf("Sample = %d, want %d", got, tc.want)
			}
			if !slices.Equal(orig, tc.logits) {
				t.Fatalf("caller's logits modified: %v -> %v", orig, tc.logits)
			}
		})
	}

	t.Run("sample feeds history", func(t *testing.T) {
		s := mustNew(t, Params{RepeatPenalty: 1.1, RepeatLastN: 64})
		l := []float32{2, 1.9}
		// 0 wins; then 0 is penalised (1.818 < 1.9) so 1 wins; then both are
		// penalised (1.818 > 1.727) and 0 wins again.
		for i, want := range []int{0, 1, 0} {
			if got := s.Sample(l); got != want {
				t.Fatalf("step %d: got %d, want %d", i, got, want)
			}
		}
		s.Reset()
		if got := s.Sample(l); got != 0 {
			t.Fatalf("after Reset: got %d, want 0 (history forgotten)", got)
		}
	})
}

// chiSquare returns the Pearson statistic of counts against expected
// probabilities (bins with zero probability must have zero counts).
func chiSquare(t *testing.T, counts []int, probs []float64, n int) float64 {
	t.Helper()
	var x2 float64
	for i, p := range probs {
		if p == 0 {
			if counts[i] != 0 {
				t.Fatalf("token %d has probability 0 but was drawn %d times", i, counts[i])
			}
			continue
		}
		e := p * float64(n)
		d := float64(counts[i]) - e
		x2 += d * d / e
	}
	return x2
}

func softmax(l []float32, temp float64) []float64 {
	m := math.Inf(-1)
	for _, x := range l {
		m = max(m, float64(x))
	}
	out := make([]float64, len(l))
	var z float64
	for i, x := range l {
		if math.IsInf(float64(x), -1) {
			continue
		}
		out[i] = math.Exp((float64(x) - m) / temp)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

func TestEmpiricalFrequencies(t *testing.T) {
	const draws = 20000
	base := []float32{1.0, 2.5, -0.5, 2.0, ninf, 0.3, 1.7}
	// Critical values of chi-square at the 0.999 quantile, by degrees of
	// freedom: a correct sampler fails with probability 1e-3 per seed, and
	// the seeds are fixed, so the test is deterministic.
	crit := map[int]float64{1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515}
	tests := []struct {
		name  string
		p     Params
		probs []float64
	}{
		{"plain softmax", Params{Temperature: 1, Seed: 1}, softmax(base, 1)},
		{"hot", Params{Temperature: 2.5, Seed: 2}, softmax(base, 2.5)},
		{"cold", Params{Temperature: 0.6, Seed: 3}, softmax(base, 0.6)},
		{"top-k 3", Params{Temperature: 1.3, TopK: 3, Seed: 4}, softmax([]float32{ninf, 2.5, ninf, 2.0, ninf, ninf, 1.7}, 1.3)},
		// min-p 0.3 at T=1: threshold is max logit + ln .3 ≈ 1.296.
		{"min-p", Params{Temperature: 0.9, MinP: 0.3, Seed: 5}, softmax([]float32{ninf, 2.5, ninf, 2.0, ninf, ninf, 1.7}, 0.9)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.p)
			counts := make([]int, len(base))
			for range draws {
				counts[s.Sample(base)]++
			}
			df := -1
			for _, p := range tc.probs {
				if p > 0 {
					df++
				}
			}
			x2 := chiSquare(t, counts, tc.probs, draws)
			if x2 > crit[df] {
				t.Fatalf("chi-square %.2f > %.2f (df %d); counts %v, probs %.4f", x2, crit[df], df, counts, tc.probs)
			}
		})
	}

	// The test must be able to fail: the same counts checked against a
	// slightly wrong temperature are rejected.
	s := mustNew(t, Params{Temperature: 1, Seed: 1})
	counts := make([]int, len(base))
	for range draws {
		counts[s.Sample(base)]++
	}
	if x2 := chiSquare(t, counts, softmax(base, 1.15), draws); x2 <= crit[5] {
		t.Fatalf("chi-square %.2f did not detect a wrong temperature", x2)
	}
}

func TestReproducible(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	seq := make([][]float32, 300)
	for i := range seq {
		seq[i] = randomLogits(r, 1000, 1.5)
	}
	p := DefaultParams()
	p.RepeatPenalty = 1.1
	p.Seed = 42
	run := func(s *Sampler) []int {
		out := make([]int, len(seq))
		for i, l := range seq {
			out[i] = s.Sample(l)
		}
		return out
	}
	a, b := mustNew(t, p), mustNew(t, p)
	ra, rb := run(a), run(b)
	if !slices.Equal(ra, rb) {
		t.Fatal("same seed and logits gave different tokens")
	}
	a.Reset()
	if !slices.Equal(run(a), ra) {
		t.Fatal("Reset did not replay the same tokens")
	}
	p.Seed = 43
	if slices.Equal(run(mustNew(t, p)), ra) {
		t.Fatal("a different seed gave the identical 300-token sequence")
	}
}

func TestNonFiniteSampled(t *testing.T) {
	s := mustNew(t, Params{Temperature: 1, Seed: 9})
	l := []float32{nan, 0, ninf, 0.5, nan}
	for range 5000 {
		if id := s.Sample(l); id != 1 && id != 3 {
			t.Fatalf("drew masked/NaN token %d", id)
		}
	}
	for _, tc := range []struct {
		logits []float32
		want   int
	}{
		{[]float32{nan, nan, nan}, 0},
		{[]float32{ninf, ninf}, 0},
		{[]float32{0, inf, 5}, 1},
		{nil, -1},
	} {
		if got := s.Sample(tc.logits); got != tc.want {
			t.Fatalf("Sample(%v) = %d, want %d", tc.logits, got, tc.want)
		}
	}
	// Tiny temperatures must not overflow into NaN weights.
	s = mustNew(t, Params{Temperature: 1e-30, Seed: 1})
	if got := s.Sample([]float32{1, 3, 2}); got != 1 {
		t.Fatalf("tiny temperature: got %d, want 1", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		wantErr string // substring; "" means valid
	}{
		{"zero value", Params{}, ""},
		{"defaults", DefaultParams(), ""},
		{"top_p 1", Params{TopP: 1, Temperature: 1}, ""},
		{"negative temperature", Params{Temperature: -0.1}, "temperature"},
		{"nan temperature", Params{Temperature: nan}, "temperature"},
		{"inf temperature", Params{Temperature: inf}, "temperature"},
		{"negative top_k", Params{TopK: -1}, "top_k"},
		{"top_p above 1", Params{TopP: 1.01}, "top_p"},
		{"top_p negative", Params{TopP: -0.5}, "top_p"},
		{"top_p nan", Params{TopP: nan}, "top_p"},
		{"min_p 1", Params{MinP: 1}, "min_p"},
		{"min_p negative", Params{MinP: -0.01}, "min_p"},
		{"min_p nan", Params{MinP: nan}, "min_p"},
		{"repeat penalty negative", Params{RepeatPenalty: -1}, "repeat penalty"},
		{"repeat penalty nan", Params{RepeatPenalty: nan}, "repeat penalty"},
		{"repeat penalty inf", Params{RepeatPenalty: inf}, "repeat penalty"},
		{"negative last_n", Params{RepeatLastN: -1}, "repeat_last_n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			_, nerr := New(tc.p)
			if tc.wantErr == "" {
				if err != nil || nerr != nil {
					t.Fatalf("unexpected error: %v / %v", err, nerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want error mentioning %q", err, tc.wantErr)
			}
			if nerr == nil {
				t.Fatal("New accepted invalid params")
			}
		})
	}
	// All problems are reported together.
	err := Params{Temperature: -1, TopK: -1, MinP: 2}.Validate()
	for _, w := range []string{"temperature", "top_k", "min_p"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("joined error %v lacks %q", err, w)
		}
	}
}

// paramSets covers every code path of the chain, including the full sort
// (top-k disabled, top-p on, min-p off).
func paramSets() map[string]Params {
	pen := DefaultParams()
	pen.RepeatPenalty = 1.1
	return map[string]Params{
		"greedy":    {},
		"default":   DefaultParams(),
		"penalty":   pen,
		"full-sort": {Temperature: 0.8, TopP: 0.9, Seed: 1},
		"min-p":     {Temperature: 0.8, MinP: 0.05, TopP: 0.95, Seed: 1},
		"plain":     {Temperature: 1, Seed: 1},
	}
}

func TestNoAllocsAndNoMutation(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	logits := randomLogits(r, 32000, 3)
	orig := slices.Clone(logits)
	for name, p := range paramSets() {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, p)
			for i := range 100 {
				s.Accept(i * 7)
			}
			s.Sample(logits) // warm up the buffers
			if a := testing.AllocsPerRun(50, func() { s.Sample(logits) }); a != 0 {
				t.Fatalf("Sample allocates %.1f times per call", a)
			}
			if !slices.Equal(logits, orig) {
				t.Fatal("Sample modified the caller's logits")
			}
		})
	}
}

func benchSample(b *testing.B, vocab int) {
	r := rand.New(rand.NewPCG(7, 8))
	logits := randomLogits(r, vocab, 3)
	names := []string{"greedy", "default", "penalty", "full-sort"}
	sets := paramSets()
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			s := mustNew(b, sets[name])
			s.Sample(logits)
			b.ReportAllocs()
			for b.Loop() {
				s.Sample(logits)
			}
		})
	}
}

func BenchmarkSample32000(b *testing.B)  { benchSample(b, 32000) }
func BenchmarkSample151936(b *testing.B) { benchSample(b, 151936) }

// refFilter is a deliberately naive version of the filter chain (full sort,
// explicit softmax) that the optimised one must agree with exactly.
func refFilter(logits []float32, p Params) []int {
	var c []cand
	for i, l := range logits {
		if l > ninf {
			c = append(c, cand{int32(i), l})
		}
	}
	slices.SortFunc(c, cmpCand)
	if p.TopK > 0 && p.TopK < len(c) {
		c = c[:p.TopK]
	}
	if p.TopP < 1 {
		var z float64
		for _, x := range c {
			z += math.Exp(float64(x.logit - c[0].logit))
		}
		var cum float64
		for i, x := range c {
			cum += math.Exp(float64(x.logit-c[0].logit)) / z
			if cum >= float64(p.TopP) {
				c = c[:i+1]
				break
			}
		}
	}
	if p.MinP > 0 {
		var keep []cand
		for _, x := range c {
			if math.Exp(float64(x.logit-c[0].logit)) >= float64(p.MinP) {
				keep = append(keep, x)
			}
		}
		c = keep
	}
	return ids(c)
}

func TestFilterMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	params := []Params{
		{TopP: 0.9}, {TopP: 0.5}, {TopP: 0.999},
		{TopK: 40, TopP: 0.95, MinP: 0.05},
		{TopP: 0.95, MinP: 0.05}, {TopP: 0.7, MinP: 0.01},
		{TopK: 300, TopP: 0.8}, {MinP: 0.1}, {TopK: 1000},
	}
	for _, scale := range []float64{0.5, 2, 5, 10} { // flat to very peaked
		for _, p := range params {
			p.Temperature = 1
			s := mustNew(t, p)
			l := randomLogits(r, 20000, scale)
			l[17] = ninf
			got := ids(s.filter(s.prepare(l)))
			if want := refFilter(l, s.Params()); !slices.Equal(got, want) {
				t.Fatalf("scale %v, %+v: kept %d tokens, reference %d", scale, p, len(got), len(want))
			}
		}
	}
}
