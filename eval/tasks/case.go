// Package tasks holds the labelled cases kvgo eval scores: reading and
// writing the JSONL format of ../shared/eval/retrieval-dev.jsonl, scoring a
// continuation against a case's answers, and generating a RULER-style suite
// (passkey, multi-key needle, key-value lines, variable tracking,
// multi-value) for any model and tokenizer.
//
// One JSON object per line:
//
//	{"task": "passkey", "context_tokens": 256, "prompt_tokens": 247, "depth": 0.035,
//	 "prompt": "...\nWhat is the pass key?\nAnswer: The pass key is",
//	 "answer": "17684", "answers": ["17684"]}
//
// task, prompt and answer (or answers) are required; context_tokens, depth
// and prompt_tokens are optional. Unknown fields are ignored so that files
// with extra annotations still load.
package tasks

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"
)

// Case is one prompt with its expected answer.
type Case struct {
	Task string `json:"task"`
	// ContextTokens is the length class of the case (256, 512, ...): the
	// column the case is reported under. Zero in a file means "not given";
	// Load then leaves it zero and the runner fills it in from the prompt's
	// measured length.
	ContextTokens int `json:"context_tokens"`
	// PromptTokens is the prompt's length in the tokens of the model the
	// case was made for (BOS included); informational, since another model
	// tokenizes differently.
	PromptTokens int `json:"prompt_tokens,omitempty"`
	// Depth is where the (first) queried needle sits in the haystack, 0..1;
	// nil when unknown (the case is then left out of the needle heatmap).
	Depth  *float64 `json:"depth,omitempty"`
	Prompt string   `json:"prompt"`
	// Answer is the full expected string; Answers are its parts for
	// partial credit (one element for single-answer tasks).
	Answer  string   `json:"answer"`
	Answers []string `json:"answers,omitempty"`
	// Line is the case's 1-based line in its file (or its 1-based index in
	// a generated suite), so every message and report row can point at it.
	Line int `json:"-"`
}

// Targets returns the strings a continuation must contain: Answers when
// given, otherwise Answer alone.
func (c *Case) Targets() []string {
	if len(c.Answers) > 0 {
		return c.Answers
	}
	return []string{c.Answer}
}

// LineError is a malformed line of a case file.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// rawCase mirrors Case with pointers, so a missing field can be told from a
// zero one and named in the error.
type rawCase struct {
	Task          *string         `json:"task"`
	ContextTokens *int            `json:"context_tokens"`
	PromptTokens  *int            `json:"prompt_tokens"`
	Depth         *float64        `json:"depth"`
	Prompt        *string         `json:"prompt"`
	Answer        *string         `json:"answer"`
	Answers       json.RawMessage `json:"answers"`
}

// Read parses every line of a case file. It does not stop at a bad line:
// it returns the good cases and one LineError per bad line, so a caller can
// run what is valid and still fail with every line number and reason.
// Blank lines are skipped. name labels the errors (usually the path).
func Read(r io.Reader, name string) ([]Case, []*LineError, error) {
	var cases []Case
	var bad []*LineError
	br := bufio.NewReader(r)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			if c, perr := parseLine(b, line); perr != nil {
				bad = append(bad, &LineError{File: name, Line: line, Err: perr})
			} else if c != nil {
				cases = append(cases, *c)
			}
		}
		if errors.Is(err, io.EOF) {
			return cases, bad, nil
		}
		if err != nil {
			return cases, bad, fmt.Errorf("%s: %w", name, err)
		}
	}
}

// parseLine returns nil, nil for a blank line.
func parseLine(b []byte, line int) (*Case, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	if !utf8.Valid(b) {
		return nil, errors.New("not valid UTF-8")
	}
	var raw rawCase
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, jsonReason(err)
	}
	c := &Case{Line: line}
	switch {
	case raw.Task == nil:
		return nil, errors.New(`missing "task"`)
	case strings.TrimSpace(*raw.Task) == "":
		return nil, errors.New(`"task" is empty`)
	case raw.Prompt == nil:
		return nil, errors.New(`missing "prompt"`)
	case *raw.Prompt == "":
		return nil, errors.New(`"prompt" is empty`)
	}
	c.Task, c.Prompt = *raw.Task, *raw.Prompt
	if raw.Answer != nil {
		c.Answer = *raw.Answer
	}
	if len(raw.Answers) > 0 && string(raw.Answers) != "null" {
		if err := json.Unmarshal(raw.Answers, &c.Answers); err != nil {
			return nil, errors.New(`"answers" must be a list of strings`)
		}
		for i, a := range c.Answers {
			if a == "" {
				return nil, fmt.Errorf(`"answers"[%d] is empty (an empty answer is contained in every output)`, i)
			}
		}
	}
	if c.Answer == "" && len(c.Answers) == 0 {
		return nil, errors.New(`no expected answer: give "answer" or a non-empty "answers" list`)
	}
	if raw.ContextTokens != nil {
		if *raw.ContextTokens < 0 {
			return nil, fmt.Errorf(`"context_tokens" is %d; want a positive length`, *raw.ContextTokens)
		}
		c.ContextTokens = *raw.ContextTokens
	}
	if raw.PromptTokens != nil {
		if *raw.PromptTokens < 0 {
			return nil, fmt.Errorf(`"prompt_tokens" is %d; want a positive length`, *raw.PromptTokens)
		}
		c.PromptTokens = *raw.PromptTokens
	}
	if raw.Depth != nil {
		d := *raw.Depth
		if math.IsNaN(d) || d < 0 || d > 1 {
			return nil, fmt.Errorf(`"depth" is %g; want a relative position in 0..1`, d)
		}
		c.Depth = &d
	}
	return c, nil
}

// jsonReason turns encoding/json errors into messages that name the field
// instead of the Go type the decoder was filling.
func jsonReason(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field == "" {
		return fmt.Errorf("not a JSON object but a JSON %s", te.Value)
	}
	if errors.As(err, &te) {
		return fmt.Errorf("%q must be %s, not a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not a JSON object: %v (at byte %d)", err, se.Offset)
	}
	return fmt.Errorf("not a JSON object: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "float64":
		return "a number"
	case "string", "ptr":
		return "a string"
	case "slice":
		return "a list"
	}
	return "a " + goKind
}

// Write writes cases as JSONL, one object per line, fields in the order of
// the dev set.
func Write(w io.Writer, cases []Case) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range cases {
		if err := enc.Encode(&cases[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Filter keeps the cases whose task is in names and whose context length
// is in lengths (either empty = all), in their original order. With limit
// > 0 it keeps at most limit per task × length: a sample stratified by
// needle depth (Sample), so that a cap never keeps only the shallow
// needles of a file sorted by depth.
func Filter(cases []Case, names []string, lengths []int, limit int, seed uint64) []Case {
	var out []Case
	for _, c := range cases {
		if len(names) > 0 && !slices.Contains(names, c.Task) {
			continue
		}
		if len(lengths) > 0 && !slices.Contains(lengths, c.ContextTokens) {
			continue
		}
		out = append(out, c)
	}
	if limit > 0 {
		out = Sample(out, limit, seed)
	}
	return out
}

// Sample keeps at most limit cases of each task × context length, in
// their original order: the cell's cases are ordered by needle depth
// (cases without one after them, in file order), cut into limit runs of
// nearly equal size, and one case is drawn from each run by a generator
// seeded with seed, the task and the length. So every depth range keeps
// its share, the same seed keeps the same cases, and another seed draws
// another sample of the same design.
func Sample(cases []Case, limit int, seed uint64) []Case {
	type cell struct {
		task string
		n    int
	}
	groups := map[cell][]int{}
	var order []cell
	for i, c := range cases {
		k := cell{c.Task, c.ContextTokens}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	keep := make([]bool, len(cases))
	for _, k := range order {
		idx := groups[k]
		if len(idx) <= limit {
			for _, i := range idx {
				keep[i] = true
			}
			continue
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			da, db := cases[a].Depth, cases[b].Depth
			switch {
			case da == nil && db == nil:
				return 0
			case da == nil:
				return 1
			case db == nil:
				return -1
			}
			return cmp.Compare(*da, *db)
		})
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%d", k.task, k.n)
		rng := rand.New(rand.NewPCG(seed, h.Sum64()))
		for s := 0; s < limit; s++ {
			lo, hi := s*len(idx)/limit, (s+1)*len(idx)/limit
			keep[idx[lo+rng.IntN(hi-lo)]] = true
		}
	}
	var out []Case
	for i, c := range cases {
		if keep[i] {
			out = append(out, c)
		}
	}
	return out
}
