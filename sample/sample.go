// Package sample turns a vector of logits into a token id.
//
// The chain mirrors llama.cpp's common sampler so that settings carried over
// from llama.cpp behave the same way here:
//
//	repetition penalty -> top-k -> top-p -> min-p -> temperature -> softmax -> draw
//
// Top-p and min-p look at the distribution *before* temperature is applied,
// exactly as in llama.cpp; temperature only reshapes the probabilities of the
// tokens that survived the filters.
//
// A Sampler owns every buffer it needs and reuses them across calls, so that
// the per-token cost of a generation loop is arithmetic only, with no garbage
// for the collector. A Sampler is not safe for concurrent use; give each
// generation stream its own.
//
// # Non-finite logits
//
// -Inf marks a masked token: it is never drawn unless every token is masked.
// NaN is treated as -Inf, because a NaN would otherwise poison the softmax
// normaliser and turn every probability into NaN. +Inf is treated as the
// largest finite float32, so a single +Inf token wins the draw (ties among
// several +Inf tokens are resolved by the usual sampling). If no token has a
// finite logit after this mapping, Sample deterministically returns the first
// index (0), the same answer greedy argmax gives; Sample never panics on such
// input and returns -1 only for an empty logits slice.
package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// pcgStream is the second PCG word. Params exposes a single 64-bit seed (like
// llama.cpp), so the stream selector is a fixed constant.
const pcgStream = 0x6b76676f2d736d70 // "kvgo-smp"

// Params configures a Sampler. The zero value plus Temperature 0 is greedy.
//
// For TopP and RepeatPenalty the zero value means "unset" and is treated as
// the disabled value 1, so that Params{} and Params{Temperature: 0.7} are
// usable without spelling out every field.
type Params struct {
	Temperature   float32 // 0 = greedy (argmax, first maximum wins)
	TopK          int     // 0 = disabled
	TopP          float32 // 1 = disabled (0 = unset, also disabled)
	MinP          float32 // 0 = disabled
	RepeatPenalty float32 // 1 = disabled (0 = unset, also disabled); llama.cpp's penalty: logit>0 ? logit/p : logit*p for tokens seen in the last RepeatLastN
	RepeatLastN   int     // window of recent tokens the penalty looks at (llama.cpp default 64); 0 disables the penalty
	Seed          uint64
}

// DefaultSeed is the fixed seed of DefaultParams. A fixed default keeps runs
// reproducible unless the caller explicitly asks for variety.
const DefaultSeed uint64 = 0x5eed

// DefaultParams returns llama.cpp-like defaults: temperature 0.8, top-k 40,
// top-p 0.95, min-p 0.05, no repetition penalty (1.0) over the last 64
// tokens, and a fixed seed.
func DefaultParams() Params {
	return Params{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.95,
		MinP:          0.05,
		RepeatPenalty: 1.0,
		RepeatLastN:   64,
		Seed:          DefaultSeed,
	}
}

// Validate reports every out-of-range field at once (joined with
// errors.Join), so a user fixing a config file sees all problems in one run.
// NaN is rejected everywhere because it silently disables comparisons.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("sample: "+format, args...))
	}
	isNaN := func(f float32) bool { return f != f }
	isInf := func(f float32) bool { return math.IsInf(float64(f), 0) }

	switch {
	case isNaN(p.Temperature) || isInf(p.Temperature):
		bad("temperature %v is not a finite number", p.Temperature)
	case p.Temperature < 0:
		bad("temperature %v is negative (use 0 for greedy)", p.Temperature)
	}
	if p.TopK < 0 {
		bad("top_k %d is negative (use 0 to disable)", p.TopK)
	}
	if isNaN(p.TopP) || p.TopP < 0 || p.TopP > 1 {
		bad("top_p %v is outside (0, 1] (use 1 to disable; 0 means unset)", p.TopP)
	}
	if isNaN(p.MinP) || p.MinP < 0 || p.MinP >= 1 {
		bad("min_p %v is outside [0, 1) (use 0 to disable)", p.MinP)
	}
	switch {
	case isNaN(p.RepeatPenalty) || isInf(p.RepeatPenalty):
		bad("repeat penalty %v is not a finite number", p.RepeatPenalty)
	case p.RepeatPenalty < 0:
		bad("repeat penalty %v must be > 0 (use 1 to disable; 0 means unset)", p.RepeatPenalty)
	}
	if p.RepeatLastN < 0 {
		bad("repeat_last_n %d is negative (use 0 to disable)", p.RepeatLastN)
	}
	return errors.Join(errs...)
}

// cand is one surviving token. Keeping id and logit together lets the filters
// sort and truncate without touching a vocab-sized array again.
type cand struct {
	id    int32
	logit float32
}

// better is the total order used everywhere: higher logit first, and on ties
// the lower id first. The tie rule makes every step (and hence seeded runs)
// deterministic and makes top-k=1 agree with "first maximum wins" greedy.
func better(a, b cand) bool {
	return a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

func cmpCand(a, b cand) int {
	switch {
	case better(a, b):
		return -1
	case better(b, a):
		return 1
	}
	return 0
}

// Sampler draws tokens according to Params. Create it with New.
type Sampler struct {
	p Params

	src *rand.PCG
	rng *rand.Rand

	// hist is a ring buffer of the last RepeatLastN accepted tokens.
	hist  []int32
	hpos  int // next write position
	hfull bool

	// Vocab-sized scratch, grown on first use and reused afterwards.
	work  []float32 // penalised copy of the caller's logits
	cands []cand    // surviving candidates
	stamp []uint32  // stamp[id]==epoch marks a token already penalised this call
	epoch uint32
	probs []float64 // softmax weights of the final candidates
}

// New validates p and returns a Sampler seeded from p.Seed.
func New(p Params) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.TopP == 0 {
		p.TopP = 1
	}
	if p.RepeatPenalty == 0 {
		p.RepeatPenalty = 1
	}
	s := &Sampler{p: p}
	s.src = rand.NewPCG(p.Seed, pcgStream)
	s.rng = rand.New(s.src)
	if s.penaltyOn() {
		s.hist = make([]int32, p.RepeatLastN)
	}
	return s, nil
}

// Params returns the effective parameters (unset fields resolved).
func (s *Sampler) Params() Params { return s.p }

func (s *Sampler) penaltyOn() bool {
	return s.p.RepeatPenalty != 1 && s.p.RepeatLastN > 0
}

// Reset forgets the penalty history and re-seeds the RNG, so that a reset
// Sampler replays exactly the token sequence of a freshly created one.
func (s *Sampler) Reset() {
	s.hpos = 0
	s.hfull = false
	s.src.Seed(s.p.Seed, pcgStream)
}

// Accept records a token in the penalty history. Call it for prompt tokens
// (and for tokens chosen by other means) so that the penalty sees the same
// context llama.cpp would. Sample calls it itself for the tokens it returns.
func (s *Sampler) Accept(id int) {
	if len(s.hist) == 0 {
		return
	}
	s.hist[s.hpos] = int32(id)
	s.hpos++
	if s.hpos == len(s.hist) {
		s.hpos = 0
		s.hfull = true
	}
}

// history returns the recorded tokens (order does not matter to the penalty).
func (s *Sampler) history() []int32 {
	if s.hfull {
		return s.hist
	}
	return s.hist[:s.hpos]
}

// Sample picks a token from logits and records it in the penalty history.
// The caller's slice is never modified. It returns -1 only when logits is
// empty. See the package documentation for how non-finite logits are handled.
func (s *Sampler) Sample(logits []float32) int {
	if len(logits) == 0 {
		return -1
	}
	id := s.sample(logits)
	s.Accept(id)
	return id
}

func (s *Sampler) sample(logits []float32) int {
	work := s.prepare(logits)
	if s.p.Temperature == 0 {
		return argmax(work)
	}
	c := s.filter(work)
	if len(c) == 0 {
		return 0 // every token masked; see package doc
	}
	return s.draw(c)
}

// grow makes sure the scratch buffers fit a vocabulary of n tokens. It only
// allocates when the vocabulary grows, i.e. once per model in practice.
func (s *Sampler) grow(n int) {
	if cap(s.work) < n {
		s.work = make([]float32, n)
		s.cands = make([]cand, n)
		s.probs = make([]float64, n)
		s.stamp = make([]uint32, n)
		s.epoch = 0
	}
	s.work = s.work[:n]
}

// prepare copies logits into the work buffer, maps NaN/+Inf as documented,
// and applies the repetition penalty.
func (s *Sampler) prepare(logits []float32) []float32 {
	s.grow(len(logits))
	w := s.work
	for i, l := range logits {
		switch {
		case l != l:
			l = float32(math.Inf(-1))
		case l > math.MaxFloat32:
			l = math.MaxFloat32
		}
		w[i] = l
	}
	if !s.penaltyOn() {
		return w
	}
	// A token repeated in the window is penalised once, like llama.cpp
	// (which counts occurrences but applies repeat_penalty only once).
	// Stamps avoid clearing a vocab-sized "seen" array on every call.
	s.epoch++
	if s.epoch == 0 { // wrapped: old stamps could collide, start clean
		clear(s.stamp)
		s.epoch = 1
	}
	pen := s.p.RepeatPenalty
	for _, t := range s.history() {
		if t < 0 || int(t) >= len(w) || s.stamp[t] == s.epoch {
			continue
		}
		s.stamp[t] = s.epoch
		if w[t] > 0 {
			w[t] /= pen
		} else {
			w[t] *= pen
		}
	}
	return w
}

// argmax returns the index of the first maximum. All -Inf yields 0.
func argmax(w []float32) int {
	best := 0
	for i, l := range w {
		if l > w[best] {
			best = i
		}
	}
	return best
}

// filter builds the candidate list from the (penalised) logits and applies
// top-k, top-p and min-p in that order. The result is not necessarily sorted.
func (s *Sampler) filter(w []float32) []cand {
	c := s.cands[:0]
	maxL := float32(math.Inf(-1))
	for i, l := range w {
		if l > float32(math.Inf(-1)) {
			c = append(c, cand{int32(i), l})
			maxL = max(maxL, l)
		}
	}
	if len(c) == 0 {
		return c
	}
	sorted := false

	if k := s.p.TopK; k > 0 && k < len(c) {
		c = topK(c, k)
		slices.SortFunc(c, cmpCand)
		sorted = true
	}

	var logMinP float64
	if s.p.MinP > 0 {
		logMinP = math.Log(float64(s.p.MinP))
	}

	if s.p.TopP < 1 && len(c) > 1 {
		// Top-p needs the probabilities of the set it receives, so the
		// normaliser is taken before anything else is removed.
		var z float64
		for _, x := range c {
			z += math.Exp(float64(x.logit) - float64(maxL))
		}
		target := float64(s.p.TopP) * z
		if !sorted {
			// Both top-p and min-p keep a prefix of the sorted list, and
			// the min-p threshold does not depend on the normaliser, so
			// the final set is the shorter of the two prefixes. Dropping
			// the min-p rejects first only shrinks what must be sorted
			// (from the whole vocabulary to a handful of tokens); the
			// top-p mass is still measured against the full z.
			if s.p.MinP > 0 {
				c = minP(c, maxL, logMinP)
			}
			c = sortedPrefix(c, maxL, target)
		}
		// Keep the smallest prefix whose mass reaches TopP (at least one).
		var cum float64
		for i, x := range c {
			cum += math.Exp(float64(x.logit) - float64(maxL))
			if cum >= target {
				c = c[:i+1]
				break
			}
		}
	}

	if s.p.MinP > 0 {
		c = minP(c, maxL, logMinP)
	}
	return c
}

// topK moves the k best candidates (by better) to c[:k] using a size-k
// min-heap: O(n log k) with no allocation, much cheaper than sorting a
// 150k vocabulary when k is small.
func topK(c []cand, k int) []cand {
	h := c[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	rest := c[k:]
	for i := range rest {
		if better(rest[i], h[0]) {
			// Swap rather than overwrite so c stays a permutation and
			// sortedPrefix can retry with a larger k.
			h[0], rest[i] = rest[i], h[0]
			siftDown(h, 0)
		}
	}
	return h
}

// sortedPrefix returns a sorted prefix of the best candidates whose
// unnormalised mass (relative to maxL) reaches target, or all of c sorted.
// LLM distributions are peaked, so a few hundred tokens usually carry the
// top-p mass; selecting and sorting those is far cheaper than sorting a
// 150k vocabulary, and the result is identical because selection and
// sorting use the same total order.
func sortedPrefix(c []cand, maxL float32, target float64) []cand {
	for k := 256; k < len(c); k *= 8 {
		h := topK(c, k)
		var mass float64
		for _, x := range h {
			mass += math.Exp(float64(x.logit) - float64(maxL))
		}
		if mass >= target {
			slices.SortFunc(h, cmpCand)
			return h
		}
	}
	slices.SortFunc(c, cmpCand)
	return c
}

// siftDown restores the heap property where the root is the worst element.
func siftDown(h []cand, i int) {
	n := len(h)
	for {
		worst := i
		l, r := 2*i+1, 2*i+2
		if l < n && better(h[worst], h[l]) {
			worst = l
		}
		if r < n && better(h[worst], h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// minP keeps the tokens whose probability is at least min_p times the top
// probability, i.e. logit >= maxL + log(min_p), preserving order. The
// comparison is done in logit space (as llama.cpp does) so it needs no
// softmax; the top token always survives.
func minP(c []cand, maxL float32, logMinP float64) []cand {
	thr := float64(maxL) + logMinP
	out := c[:0]
	for _, x := range c {
		if float64(x.logit) >= thr {
			out = append(out, x)
		}
	}
	return out
}

// draw applies temperature, takes the softmax and draws one candidate with
// the seeded RNG. Temperature is applied to logit differences in float64,
// so very small temperatures cannot overflow.
func (s *Sampler) draw(c []cand) int {
	if len(c) == 1 {
		return int(c[0].id)
	}
	maxL := c[0].logit
	for _, x := range c[1:] {
		maxL = max(maxL, x.logit)
	}
	invT := 1 / float64(s.p.Temperature)
	probs := s.probs[:len(c)]
	var z float64
	for i, x := range c {
		e := math.Exp((float64(x.logit) - float64(maxL)) * invT)
		probs[i] = e
		z += e
	}
	r := s.rng.Float64() * z
	var cum float64
	for i, e := range probs {
		cum += e
		if r < cum {
			return int(c[i].id)
		}
	}
	// Rounding can leave r just above the final cumulative sum; the last
	// candidate with non-zero weight is the right answer then.
	for i := len(probs) - 1; i >= 0; i-- {
		if probs[i] > 0 {
			return int(c[i].id)
		}
	}
	return int(c[0].id)
}
