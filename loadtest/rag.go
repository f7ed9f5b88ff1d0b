package loadtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/kvgo/kvgo/eval/ragkb"
	"github.com/kvgo/kvgo/eval/report"
)

// RAG is the RAG workload of `kvgo eval rag` (issue 12) served: the same
// generator (package ragkb) writes a knowledge base of documents holding
// one fact each, and every request is a question retrieving K of them by
// Zipf popularity in random order, asking for the number of one. Each
// document is sent as a chunk between separators in a plain prompt
// (the server must run with the same --chunk-sep), so the server
// tokenizes the instruction, each document and the question alone for
// every recipe, exactly as the eval does: a chunk-reusing recipe ("kv":
// "cachecraft+f16") reuses documents' caches, "prefix+f16" only the
// prompt's cached prefix, "full" nothing, all on the same tokens.
//
// Answers are greedy (temperature 0) and scored as the eval scores them
// (the answer holds the number), with a Wilson interval, so that throughput
// can be compared at equal quality. Requests keep ignore_eos, so every
// recipe generates the same number of tokens and the throughputs compare
// prefills.
type RAG struct {
	Shape ragkb.Config
	// Seed fixes the knowledge base and both question streams: recipes
	// run with one seed answer the same questions in the same order.
	Seed uint64
	// Warm questions (another stream of the same distribution) are sent
	// before the timed run and not counted; 0 means 80, negative none.
	Warm int
	// Sep separates the chunks (default " # # ", LMCache's).
	Sep string
	// Count sizes documents in tokens (the served model's tokenizer, as
	// `kvgo eval rag` does); nil estimates 3 bytes per token.
	Count func(string) int
	// Salt is sent as cache_salt; empty makes one of the seed and the
	// recipe, so every run starts from stores of its own (as every policy
	// has its own in the eval) and repeated runs do not share caches.
	Salt string
}

// RAGStats is what a RAG load test adds to its report.
type RAGStats struct {
	Docs       int     `json:"docs"`
	K          int     `json:"k"`
	DocTokens  float64 `json:"doc_tokens"` // mean, as Count measures
	Counted    string  `json:"doc_tokens_counted_by"`
	Zipf       float64 `json:"zipf"`
	Seed       uint64  `json:"seed"`
	Warm       int     `json:"warm"`
	WarmFailed int     `json:"warm_failed"`
	Sep        string  `json:"chunk_sep"`
	Salt       string  `json:"cache_salt"`
	// Cases are the answered questions of the timed run, Correct those
	// whose answer holds the number; Lo and Hi the 95% Wilson interval.
	Cases    int     `json:"cases"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	Lo       float64 `json:"accuracy_lo"`
	Hi       float64 `json:"accuracy_hi"`
	// CachedShare is CachedTokens / PromptTokens of the report.
	CachedShare float64 `json:"cached_share"`

	docs []ragkb.Doc
}

// ragRun draws a RAG load test's questions.
type ragRun struct {
	cfg        RAG
	docs       []ragkb.Doc
	warm       int
	warmGen    *ragkb.Generator
	gen        *ragkb.Generator
	warmIssued int
	docTokens  float64
	counted    string
}

// ragItem is one question and the prompt that asks it.
type ragItem struct {
	q      ragkb.Question
	prompt string
}

func newRAGRun(c RAG, recipe string) (*ragRun, error) {
	c.Shape.Defaults()
	if c.Sep == "" {
		c.Sep = " # # "
	}
	switch {
	case c.Warm == 0:
		c.Warm = 80
	case c.Warm < 0:
		c.Warm = 0
	}
	if c.Salt == "" {
		c.Salt = fmt.Sprintf("kvgo-loadtest-rag-%d-%s", c.Seed, recipe)
	}
	r := &ragRun{cfg: c, warm: c.Warm, counted: "model tokenizer"}
	count := c.Count
	if count == nil {
		count = func(s string) int { return (len(s) + 2) / 3 }
		r.counted = "estimate (3 bytes per token)"
	}
	var err error
	if r.docs, err = ragkb.KB(c.Shape, rand.New(rand.NewPCG(c.Seed, 0x7261672d6b62)), count); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	for _, d := range r.docs {
		if strings.Contains(d.Text, c.Sep) {
			return nil, fmt.Errorf("loadtest: a document contains the chunk separator %q", c.Sep)
		}
		r.docTokens += float64(count(d.Text+"\n")) / float64(len(r.docs))
	}
	r.warmGen = ragkb.NewGenerator(c.Shape, rand.New(rand.NewPCG(c.Seed, 0x7761726d)))
	r.gen = ragkb.NewGenerator(c.Shape, rand.New(rand.NewPCG(c.Seed, 0x6d656173)))
	return r, nil
}

func (r *ragRun) item(q ragkb.Question) *ragItem {
	var b strings.Builder
	b.WriteString(ragkb.Instruction)
	for _, t := range q.Chunks(r.docs) {
		b.WriteString(r.cfg.Sep)
		b.WriteString(t)
	}
	b.WriteString(r.cfg.Sep)
	b.WriteString(q.Ask(r.docs))
	return &ragItem{q: q, prompt: b.String()}
}

// next is the timed run's next question; nextWarm the warm-up's (callers
// hold the drive's lock).
func (r *ragRun) next() *ragItem { return r.item(r.gen.Next()) }

func (r *ragRun) nextWarm() (*ragItem, bool) {
	if r.warmIssued >= r.warm {
		return nil, false
	}
	r.warmIssued++
	return r.item(r.warmGen.Next()), true
}

// body fills a completion request for item: greedy, salted.
func (r *ragRun) body(body map[string]any, item *ragItem) {
	body["prompt"] = item.prompt
	body["temperature"] = 0.0
	body["cache_salt"] = r.cfg.Salt
}

func (r *ragRun) stats() *RAGStats {
	return &RAGStats{Docs: len(r.docs), K: r.cfg.Shape.K, DocTokens: r.docTokens, Counted: r.counted, Zipf: r.cfg.Shape.Zipf,
		Seed: r.cfg.Seed, Warm: r.warm, Sep: r.cfg.Sep, Salt: r.cfg.Salt, docs: r.docs}
}

func (s *RAGStats) count(item *ragItem, answer string) {
	s.Cases++
	if item.q.Correct(s.docs, answer) {
		s.Correct++
	}
}

func (s *RAGStats) finish(rep *Report) {
	if s.Cases > 0 {
		s.Accuracy = float64(s.Correct) / float64(s.Cases)
	}
	s.Lo, s.Hi = report.Wilson(float64(s.Correct), s.Cases)
	if rep.PromptTokens > 0 {
		s.CachedShare = float64(rep.CachedTokens) / float64(rep.PromptTokens)
	}
}

func (s *RAGStats) writeText(b *bytes.Buffer, r *Report) {
	fmt.Fprintf(b, "RAG:         %d documents of %.0f tokens (%s), %d per question, Zipf s=%.2f, seed %d; %d warm-up questions (%d failed)\n",
		s.Docs, s.DocTokens, s.Counted, s.K, s.Zipf, s.Seed, s.Warm, s.WarmFailed)
	fmt.Fprintf(b, "answers:     accuracy %.2f (%d/%d, 95%% CI %.2f-%.2f)\n", s.Accuracy, s.Correct, s.Cases, s.Lo, s.Hi)
	fmt.Fprintf(b, "cached:      %d of %d prompt tokens (%.1f%%); %.1f prompt tok/s\n", r.CachedTokens, r.PromptTokens, 100*s.CachedShare, r.PromptTokPerSec)
}
