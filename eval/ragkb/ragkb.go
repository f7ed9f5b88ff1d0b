// Package ragkb generates the RAG workload of issue 12, shared by
// `kvgo eval rag` (in process) and `kvgo loadtest --rag` (against a
// server), so that both measure the same kind of prompt: a knowledge base
// of documents, each a paragraph of prose holding one fact the model can
// retrieve ("The special magic number for harbor is: 482913.", the
// multi-key format kvgo-tiny was trained on), and questions that each
// retrieve K documents, drawn from a Zipf popularity, in random order, so
// that documents recur at new positions after new neighbours. Each
// question asks for the number of one of its documents.
//
// A prompt is three kinds of text: the instruction (always computed), the
// K documents (the chunks, each followed by a newline), the question
// (always computed). It depends on the standard library only, so a load
// test links no engine.
package ragkb

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/kvgo/kvgo/eval/tasks"
)

// Config is the workload's shape.
type Config struct {
	Docs      int     // documents in the knowledge base (default 24)
	DocTokens int     // about this many tokens per document (default 160)
	K         int     // documents per question (default 4; at most Docs)
	Zipf      float64 // popularity exponent s > 1 (default 1.2)
}

// Defaults fills the zero fields.
func (c *Config) Defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Docs, 24)
	def(&c.DocTokens, 160)
	def(&c.K, 4)
	if c.Zipf <= 1 {
		c.Zipf = 1.2
	}
	c.K = min(c.K, c.Docs)
}

// Doc is one document of the knowledge base: its key word, its number,
// and its text (the fact among prose sentences).
type Doc struct {
	Key, Value, Text string
}

// Question retrieves Docs (indices into the knowledge base, in prompt
// order) and asks for the number of Target (one of them).
type Question struct {
	Docs   []int
	Target int
}

// Instruction is the text before the documents.
const Instruction = "Some special magic numbers are hidden within the following text. Make sure to memorize them. I will quiz you about the numbers afterwards.\n"

// KB writes the knowledge base: each document a fact placed at a random
// sentence boundary in prose of about DocTokens tokens, as count (the
// model's tokenizer, or an estimate) measures them. The words and numbers
// are drawn from rng, so a seed fixes the knowledge base.
func KB(c Config, rng *rand.Rand, count func(string) int) ([]Doc, error) {
	c.Defaults()
	prose, words := tasks.Prose(), tasks.Words()
	if c.Docs > len(words) {
		return nil, fmt.Errorf("ragkb: %d documents: at most %d (one key word each)", c.Docs, len(words))
	}
	used := map[string]bool{}
	docs := make([]Doc, c.Docs)
	for i := range docs {
		w := words[rng.IntN(len(words))]
		for used[w] {
			w = words[rng.IntN(len(words))]
		}
		used[w] = true
		v := fmt.Sprint(100000 + rng.IntN(900000))
		fact := fmt.Sprintf("The special magic number for %s is: %s. Remember it. %s is the special magic number for %s.", w, v, v, w)
		var sents []string
		n := count(fact)
		for n < c.DocTokens {
			s := prose[rng.IntN(len(prose))]
			sents = append(sents, s)
			n += count(" " + s)
		}
		at := rng.IntN(len(sents) + 1)
		sents = slices.Insert(sents, at, fact)
		docs[i] = Doc{Key: w, Value: v, Text: strings.Join(sents, " ")}
	}
	return docs, nil
}

// Questions draws n questions: K distinct documents by Zipf popularity
// (document 0 the most popular), in random order, one of them the target.
func Questions(c Config, rng *rand.Rand, n int) []Question {
	c.Defaults()
	qs := make([]Question, n)
	g := NewGenerator(c, rng)
	for i := range qs {
		qs[i] = g.Next()
	}
	return qs
}

// Generator draws questions one at a time (a load test's stream has no
// length fixed in advance). Not safe for concurrent use.
type Generator struct {
	c   Config
	rng *rand.Rand
	z   *rand.Zipf
}

// NewGenerator draws questions of shape c from rng.
func NewGenerator(c Config, rng *rand.Rand) *Generator {
	c.Defaults()
	return &Generator{c: c, rng: rng, z: rand.NewZipf(rng, c.Zipf, 1, uint64(c.Docs-1))}
}

// Next draws the next question.
func (g *Generator) Next() Question {
	var d []int
	for len(d) < g.c.K {
		x := int(g.z.Uint64())
		if !slices.Contains(d, x) {
			d = append(d, x)
		}
	}
	g.rng.Shuffle(len(d), func(a, b int) { d[a], d[b] = d[b], d[a] })
	return Question{Docs: d, Target: d[g.rng.IntN(len(d))]}
}

// Chunks are the texts of q's documents in prompt order, each ending in
// a newline.
func (q Question) Chunks(docs []Doc) []string {
	out := make([]string, len(q.Docs))
	for i, d := range q.Docs {
		out[i] = docs[d].Text + "\n"
	}
	return out
}

// Ask is the question's text after the documents; the model answers by
// continuing it.
func (q Question) Ask(docs []Doc) string {
	k := docs[q.Target].Key
	return "What is the special magic number for " + k + " mentioned in the provided text?\nAnswer: The special magic number for " + k + " is:"
}

// Correct says whether an answer holds the target's number.
func (q Question) Correct(docs []Doc, answer string) bool {
	return strings.Contains(answer, docs[q.Target].Value)
}
