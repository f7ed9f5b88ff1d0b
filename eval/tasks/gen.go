package tasks

import (
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// The haystack prose and key words are written for kvgo (no third-party
// text), in the register of the technical documentation kvgo-tiny was
// trained on, so a small model sees in-distribution filler.
//
//go:embed data/prose.txt
var proseText string

//go:embed data/words.txt
var wordsText string

// noiseUnit is RULER's repeated filler for the passkey and variable
// tracking haystacks.
const noiseUnit = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

// Names returns the built-in tasks in report order.
func Names() []string { return []string{"passkey", "multikey", "kv", "vt", "multivalue"} }

// ParseNames reads a comma-separated task list; "all" is every built-in
// task.
func ParseNames(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return Names(), nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(Names(), f) {
			return nil, fmt.Errorf("unknown task %q (valid: %s, all)", f, strings.Join(Names(), ", "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no task given")
	}
	return out, nil
}

// Haystack kinds.
const (
	HaystackMixed = "mixed" // prose for three cases in four, noise otherwise
	HaystackProse = "prose" // sentences of documentation-like prose
	HaystackNoise = "noise" // RULER's repeated "The grass is green..." block
)

// Spec chooses what Generate makes.
type Spec struct {
	// Seed makes the suite reproducible; each case draws from its own
	// stream keyed by (task, length, depth, repeat), so adding a length or
	// a depth leaves the other cases unchanged.
	Seed     uint64
	Tasks    []string
	Lengths  []int     // target context lengths in the model's tokens
	Depths   []float64 // relative positions of the queried needle, 0..1
	Cases    int       // cases per task, length and depth
	Haystack string    // HaystackMixed (default), HaystackProse or HaystackNoise
}

// Tokenizer measures text in the tokens of the model under test, so a
// suite made for one model fits another's context exactly.
type Tokenizer interface {
	// PromptTokens is the length of s as a prompt, BOS included when the
	// model adds one.
	PromptTokens(s string) int
	// AnswerTokens is (an upper bound on) the length of s generated after
	// a prompt.
	AnswerTokens(s string) int
}

// Generate builds the suite: for every task, length, depth and repeat, the
// longest prompt whose tokens plus the answer's fit in the length.
func Generate(s Spec, tok Tokenizer) ([]Case, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	prose := strings.Split(strings.TrimSpace(proseText), "\n")
	words := strings.Fields(wordsText)
	var out []Case
	for _, task := range s.Tasks {
		for _, length := range s.Lengths {
			for _, depth := range s.Depths {
				for rep := 0; rep < s.Cases; rep++ {
					h := fnv.New64a()
					fmt.Fprintf(h, "%s/%d/%g/%d", task, length, depth, rep)
					rng := rand.New(rand.NewPCG(s.Seed, h.Sum64()))
					f := newFrame(task, length, depth, s.Haystack, rng, prose, words)
					c, err := f.fit(length, tok)
					if err != nil {
						return out, fmt.Errorf("%s at %d tokens: %w", task, length, err)
					}
					c.Line = len(out) + 1
					out = append(out, c)
				}
			}
		}
	}
	return out, nil
}

func (s *Spec) validate() error {
	if len(s.Tasks) == 0 {
		return errors.New("no tasks")
	}
	for _, t := range s.Tasks {
		if !slices.Contains(Names(), t) {
			return fmt.Errorf("unknown task %q (valid: %s)", t, strings.Join(Names(), ", "))
		}
	}
	if len(s.Lengths) == 0 {
		return errors.New("no lengths")
	}
	for _, l := range s.Lengths {
		if l < 32 {
			return fmt.Errorf("length %d is too short (want at least 32 tokens)", l)
		}
	}
	if len(s.Depths) == 0 {
		return errors.New("no depths")
	}
	for _, d := range s.Depths {
		if math.IsNaN(d) || d < 0 || d > 1 {
			return fmt.Errorf("depth %g is outside 0..1", d)
		}
	}
	if s.Cases < 1 {
		return fmt.Errorf("cases per cell is %d; want at least 1", s.Cases)
	}
	switch s.Haystack {
	case "":
		s.Haystack = HaystackMixed
	case HaystackMixed, HaystackProse, HaystackNoise:
	default:
		return fmt.Errorf("unknown haystack %q (valid: mixed, prose, noise)", s.Haystack)
	}
	return nil
}

// needle is a sentence placed at a relative position of the haystack.
type needle struct {
	text string
	at   float64
	sep  string // what comes before it
}

// frame is one case before it is fitted to a length: fixed text around a
// haystack of n units into which the needles are inserted.
type frame struct {
	task            string
	intro, question string
	needles         []needle // needles[0] is the queried one (its depth is reported)
	answer          string
	answers         []string
	units           *unitStream
}

func newFrame(task string, length int, depth float64, haystack string, rng *rand.Rand, prose, words []string) *frame {
	if haystack == HaystackMixed {
		haystack = HaystackNoise
		if rng.IntN(4) > 0 {
			haystack = HaystackProse
		}
	}
	f := &frame{task: task}
	p := newPicker(rng, words)
	spread := func(n int) []float64 { // n positions in [depth, 1], the first at depth
		at := []float64{depth}
		for i := 1; i < n; i++ {
			at = append(at, depth+(1-depth)*rng.Float64())
		}
		slices.Sort(at[1:])
		return at
	}
	switch task {
	case "passkey":
		k := strconv.Itoa(rng.IntN(90000) + 10000)
		f.intro = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there."
		f.needles = []needle{{text: "The pass key is " + k + ". Remember it. " + k + " is the pass key.", at: depth, sep: " "}}
		f.question = "\nWhat is the pass key?\nAnswer: The pass key is"
		f.answer = k
	case "multikey":
		f.intro = "Some special magic numbers are hidden within the following text. Make sure to memorize them. I will quiz you about the numbers afterwards."
		key := p.word()
		v := p.number(100000, 999999)
		f.needles = []needle{{text: "The special magic number for " + key + " is: " + v + ".", at: depth, sep: " "}}
		for range 1 + rng.IntN(min(5, 1+length/256)) {
			f.needles = append(f.needles, needle{text: "The special magic number for " + p.word() + " is: " + p.number(100000, 999999) + ".", at: rng.Float64(), sep: " "})
		}
		f.question = "\nWhat is the special magic number for " + key + " mentioned in the provided text?\nAnswer: The special magic number for " + key + " is:"
		f.answer = v
	case "kv":
		f.intro = "Below is a record of lines I want you to remember. Each line has a line index and a REGISTER_CONTENT number. Memorize them. At the end I will ask you for the REGISTER_CONTENT of one line."
		key := p.word() + "-" + p.word()
		v := p.number(10000, 99999)
		f.needles = []needle{{text: "line " + key + ": REGISTER_CONTENT is " + v, at: depth, sep: "\n"}}
		f.question = "\nTell me what is the REGISTER_CONTENT in line " + key + "?\nAnswer: line " + key + ": REGISTER_CONTENT is"
		f.answer = v
		f.units = &unitStream{next: func() (string, string) {
			return "\n", "line " + p.word() + "-" + p.word() + ": REGISTER_CONTENT is " + p.number(10000, 99999)
		}}
		return f
	case "vt":
		f.intro = "Memorize and track the chain(s) of variable assignment hidden in the following text."
		v := p.number(10000, 99999)
		hops := 2 + rng.IntN(min(4, 2+length/512))
		names := make([]string, hops)
		for i := range names {
			names[i] = p.variable()
		}
		for i, at := range spread(hops) {
			text := "VAR " + names[i] + " = " + v + "."
			if i > 0 {
				text = "VAR " + names[i] + " = VAR " + names[i-1] + "."
			}
			f.needles = append(f.needles, needle{text: text, at: at, sep: " "})
		}
		if length >= 512 && rng.IntN(2) == 0 { // a distractor chain with another value
			prev, w := p.variable(), p.number(10000, 99999)
			at := []float64{rng.Float64(), rng.Float64()}
			slices.Sort(at)
			f.needles = append(f.needles, needle{text: "VAR " + prev + " = " + w + ".", at: at[0], sep: " "})
			f.needles = append(f.needles, needle{text: "VAR " + p.variable() + " = VAR " + prev + ".", at: at[1], sep: " "})
		}
		f.question = "\nFind all variables that are assigned the value " + v + " in the text above.\nAnswer: The variables assigned the value " + v + " are:"
		f.answer, f.answers = strings.Join(names, " "), names
	case "multivalue":
		f.intro = "Some special magic numbers are hidden within the following text. Make sure to memorize them. I will quiz you about the numbers afterwards."
		key := p.word()
		vals := make([]string, 4)
		for i, at := range spread(len(vals)) {
			vals[i] = p.number(100000, 999999)
			f.needles = append(f.needles, needle{text: "The special magic number for " + key + " is: " + vals[i] + ".", at: at, sep: " "})
		}
		f.question = "\nWhat are all the special magic numbers for " + key + " mentioned in the provided text?\nAnswer: The special magic numbers for " + key + " are:"
		f.answer, f.answers = strings.Join(vals, ", "), vals
	}
	hrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	if haystack == HaystackNoise {
		// One sentence of the block per unit, so the haystack fills the
		// length to within a few tokens.
		sentences := strings.SplitAfter(noiseUnit, ". ")
		i := 0
		f.units = &unitStream{next: func() (string, string) {
			s := strings.TrimSpace(sentences[i%len(sentences)])
			i++
			return " ", s
		}}
	} else {
		var deck []string
		f.units = &unitStream{next: func() (string, string) {
			if len(deck) == 0 {
				deck = slices.Clone(prose)
				hrng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
			}
			s := deck[len(deck)-1]
			deck = deck[:len(deck)-1]
			if hrng.IntN(10) < 3 {
				return "\n", s
			}
			return " ", s
		}}
	}
	return f
}

// picker draws distinct words, variable names and numbers for one case.
type picker struct {
	rng   *rand.Rand
	words []string
	used  map[string]bool
}

func newPicker(rng *rand.Rand, words []string) *picker {
	return &picker{rng: rng, words: words, used: map[string]bool{}}
}

func (p *picker) fresh(draw func() string) string {
	for {
		s := draw()
		if !p.used[s] {
			p.used[s] = true
			return s
		}
	}
}

func (p *picker) word() string {
	return p.fresh(func() string { return p.words[p.rng.IntN(len(p.words))] })
}

func (p *picker) number(lo, hi int) string {
	return p.fresh(func() string { return strconv.Itoa(lo + p.rng.IntN(hi-lo+1)) })
}

func (p *picker) variable() string {
	return p.fresh(func() string {
		b := make([]byte, 5)
		for i := range b {
			b[i] = byte('A' + p.rng.IntN(26))
		}
		return string(b)
	})
}

// unitStream is an endless, deterministic sequence of haystack units, each
// with the separator before it; render(n) always sees the same first n.
type unitStream struct {
	next  func() (sep, text string)
	seps  []string
	texts []string
}

func (u *unitStream) get(i int) (string, string) {
	for len(u.texts) <= i {
		s, t := u.next()
		u.seps, u.texts = append(u.seps, s), append(u.texts, t)
	}
	return u.seps[i], u.texts[i]
}

// render builds the prompt with the haystack units idx (indexes into the
// unit stream, in order) and returns it with the relative depth at which
// the queried needle landed.
func (f *frame) render(idx []int) (string, float64) {
	n := len(idx)
	type placed struct {
		idx, order int
	}
	pl := make([]placed, len(f.needles))
	for i, nd := range f.needles {
		pl[i] = placed{idx: int(math.Round(nd.at * float64(n))), order: i}
	}
	slices.SortStableFunc(pl, func(a, b placed) int { return a.idx - b.idx })
	var b strings.Builder
	b.WriteString(f.intro)
	k := 0
	for i := 0; i <= n; i++ {
		for k < len(pl) && pl[k].idx == i {
			nd := f.needles[pl[k].order]
			b.WriteString(nd.sep)
			b.WriteString(nd.text)
			k++
		}
		if i < n {
			sep, text := f.units.get(idx[i])
			b.WriteString(sep)
			b.WriteString(text)
		}
	}
	b.WriteString(f.question)
	depth := 0.0
	if n > 0 {
		depth = float64(pl[slices.IndexFunc(pl, func(p placed) bool { return p.order == 0 })].idx) / float64(n)
	}
	return b.String(), math.Round(depth*1000) / 1000
}

// fit finds the largest haystack whose prompt and answer fit in length
// tokens: the longest prefix of the unit stream (by bisection), then up to
// a few later, shorter units that still fit, so a length is filled to
// within a few tokens even when sentences are long.
func (f *frame) fit(length int, tok Tokenizer) (Case, error) {
	ans := tok.AnswerTokens(" " + f.answer)
	fits := func(idx []int) bool {
		p, _ := f.render(idx)
		return tok.PromptTokens(p)+ans <= length
	}
	prefix := func(n int) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	if !fits(nil) {
		p, _ := f.render(nil)
		return Case{}, fmt.Errorf("the question and needles alone take %d tokens and the answer %d; use a longer length", tok.PromptTokens(p), ans)
	}
	// Guess from the size of a few units, then bracket and bisect.
	base, _ := f.render(nil)
	baseTokens := tok.PromptTokens(base)
	var unitTokens int
	for i := range 8 {
		sep, t := f.units.get(i)
		unitTokens += tok.AnswerTokens(sep + t)
	}
	guess := max(1, (length-ans-baseTokens)*8/max(unitTokens, 1))
	lo, hi := 0, guess
	if fits(prefix(guess)) {
		lo, hi = guess, guess+max(1, guess/8)
		for fits(prefix(hi)) {
			lo, hi = hi, hi+max(1, hi/4)
		}
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fits(prefix(mid)) {
			lo = mid
		} else {
			hi = mid
		}
	}
	idx := prefix(lo)
	for j := lo + 1; j <= lo+8; j++ {
		if try := append(slices.Clone(idx), j); fits(try) {
			idx = try
		}
	}
	prompt, depth := f.render(idx)
	c := Case{
		Task: f.task, ContextTokens: length, PromptTokens: tok.PromptTokens(prompt),
		Depth: &depth, Prompt: prompt, Answer: f.answer,
	}
	c.Answers = f.answers
	if c.Answers == nil {
		c.Answers = []string{f.answer}
	}
	return c, nil
}
