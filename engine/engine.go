// Package engine ties a model, its tokenizer and a KV cache together to run
// sequences: load a GGUF file, prefill a prompt, decode tokens.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/defaultmodel"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/offload"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/model"
	"github.com/kvgo/kvgo/sample"
	"github.com/kvgo/kvgo/tokenizer"
)

// Engine is a loaded model ready to run sequences.
type Engine struct {
	File   *gguf.File
	Model  *model.Model
	Tok    *tokenizer.Tokenizer
	Pool   *kernel.Pool
	Source string // file path, or the embedded model's name
	// Offload, when set, keeps each sequence's pages in a cold tier of
	// its own (kv/offload, --kv-offload): only summaries and the pages
	// read most recently stay on the heap. Sessions and the scheduler
	// build their caches with it (NewSeqCache).
	Offload *offload.Options
}

// Load opens the GGUF file at path (the embedded kvgo-tiny model when path
// is empty) and prepares it to run on threads workers (0 = all cores).
func Load(path string, threads int) (*Engine, error) {
	var f *gguf.File
	var err error
	source := path
	if path == "" {
		source = defaultmodel.Name
		f, err = gguf.Parse(defaultmodel.Bytes())
	} else {
		f, err = gguf.Open(path)
	}
	if err != nil {
		return nil, err
	}
	return FromFile(f, source, threads)
}

// FromFile prepares an opened GGUF file (from disk or memory, e.g. a model
// converted in memory) to run on threads workers; source names it in
// errors and reports. The engine owns f: Close closes it, and so does a
// failure here.
func FromFile(f *gguf.File, source string, threads int) (*Engine, error) {
	m, err := model.Load(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if tok.VocabSize() != m.Vocab {
		f.Close()
		return nil, fmt.Errorf("%s: tokenizer has %d tokens but the embedding matrix has %d rows", source, tok.VocabSize(), m.Vocab)
	}
	return &Engine{File: f, Model: m, Tok: tok, Pool: kernel.NewPool(threads), Source: source}, nil
}

// Params is the number of weights of the model.
func (e *Engine) Params() uint64 { return model.ParamCount(e.File) }

// WeightBytesPerToken is how many weight bytes one decode step reads: every
// tensor except the embedding table, of which one row is read (unless the
// output reuses it, in which case all of it is read).
func (e *Engine) WeightBytesPerToken() int64 {
	var b int64
	for i := range e.File.Tensors {
		t := &e.File.Tensors[i]
		if t.Name == "token_embd.weight" && !e.Model.TiedOutput {
			b += int64(t.Size) / int64(t.Shape[len(t.Shape)-1])
			continue
		}
		b += int64(t.Size)
	}
	return b
}

// Close releases the workers and the mapped file.
func (e *Engine) Close() error {
	e.Pool.Close()
	return e.File.Close()
}

// ErrContext is returned when a request does not fit in the context.
var ErrContext = errors.New("context length exceeded")

// Request describes one generation.
type Request struct {
	Prompt    []int
	MaxTokens int
	Sampling  sample.Params
	// KV is the cache recipe (nil = the full F16 cache).
	KV *recipe.Recipe
	// Context is the cache capacity in tokens (0 = the model's training
	// context). It may not exceed the model's context length.
	Context int
	// StopAtEOG ends generation at an end-of-generation token (not emitted).
	StopAtEOG bool
	// OnToken receives each generated token as it is sampled; an error
	// stops generation and is returned.
	OnToken func(id int) error
	// Chunks are the token ranges of Prompt that are reusable chunks, and
	// Reuse, when set, prefills with chunk reuse (PrefillChunks).
	Chunks []Span
	Reuse  *ChunkOptions
}

// Stats summarizes one generation.
type Stats struct {
	PromptTokens    int
	PromptTime      time.Duration
	GeneratedTokens int
	GenerateTime    time.Duration
	KVBytes         int64 // at the end, on the heap
	ColdKVBytes     int64 // at the end, in the cold tier's file (Engine.Offload)
	PeakKVBytes     int64 // largest seen (a staged prompt before eviction)
	// FullKVBytes is what a full F16 cache would hold for the same tokens.
	FullKVBytes int64
	// Reuse is what a prefill with chunk reuse took and computed.
	Reuse ReuseStats
}

// NewCache makes an empty cache for n positions from a recipe (nil = the
// full F16 cache).
func (e *Engine) NewCache(r *recipe.Recipe, n int) (*kv.Cache, error) {
	if r == nil {
		var err error
		if r, err = recipe.Parse(""); err != nil {
			return nil, err
		}
	}
	cfg, err := r.Config()
	if err != nil {
		return nil, err
	}
	cfg.RoPE = e.Model.Rotary()
	return kv.New(e.Model.CacheShape(), cfg, n)
}

// FullCacheBytes is what the full F16 cache holds for n tokens (whole
// pages of keys and values plus 4 bytes of position per token and
// stream): the baseline of compression ratios.
func (e *Engine) FullCacheBytes(n int) int64 {
	return kv.FullF16Bytes(e.Model.CacheShape(), n)
}

// ContextFor validates a requested context size against the model.
func (e *Engine) ContextFor(n int) (int, error) {
	if n == 0 {
		return e.Model.ContextLen, nil
	}
	if n < 0 || n > e.Model.ContextLen {
		return 0, fmt.Errorf("context %d is outside 1..%d, the model's context length", n, e.Model.ContextLen)
	}
	return n, nil
}

// prefillChunk is how many prompt tokens run between cancellation checks
// (and per pass over the weights).
const prefillChunk = 512

// Generate prefills the prompt and samples up to MaxTokens tokens.
func (e *Engine) Generate(ctx context.Context, req Request) (Stats, error) {
	var st Stats
	n, err := e.ContextFor(req.Context)
	if err != nil {
		return st, err
	}
	if len(req.Prompt) == 0 {
		return st, errors.New("empty prompt")
	}
	if len(req.Prompt) >= n {
		return st, fmt.Errorf("%w: the prompt has %d tokens, the context holds %d", ErrContext, len(req.Prompt), n)
	}
	maxTokens := req.MaxTokens
	if maxTokens < 0 || maxTokens > n-len(req.Prompt) { // a sum could wrap
		maxTokens = n - len(req.Prompt)
	}
	sampler, err := sample.New(req.Sampling)
	if err != nil {
		return st, err
	}
	sess, err := e.NewSession(req.KV, n, len(req.Prompt))
	if err != nil {
		return st, err
	}
	defer sess.Close()
	for _, id := range req.Prompt {
		sampler.Accept(id)
	}
	t0 := time.Now()
	var logits []float32
	if req.Reuse != nil {
		logits, st.Reuse, err = e.PrefillChunks(ctx, sess, Prompt{Tokens: req.Prompt, Chunks: req.Chunks}, *req.Reuse)
	} else {
		logits, err = sess.Prefill(ctx, req.Prompt)
	}
	if err != nil {
		return st, err
	}
	st.PromptTokens, st.PromptTime = len(req.Prompt), time.Since(t0)
	t1 := time.Now()
	pos := len(req.Prompt)
	for st.GeneratedTokens < maxTokens {
		if err := ctx.Err(); err != nil {
			break
		}
		id := sampler.Sample(logits)
		sampler.Accept(id)
		if req.StopAtEOG && e.Tok.IsEOG(id) {
			break
		}
		st.GeneratedTokens++
		if req.OnToken != nil {
			if err := req.OnToken(id); err != nil {
				return st, err
			}
		}
		if st.GeneratedTokens == maxTokens {
			break
		}
		if logits, err = sess.Step(id, pos); err != nil {
			return st, err
		}
		pos++
	}
	st.GenerateTime = time.Since(t1)
	st.KVBytes = sess.Cache.Bytes()
	st.ColdKVBytes = sess.Cache.ColdBytes()
	st.PeakKVBytes = sess.Cache.PeakBytes()
	st.FullKVBytes = e.FullCacheBytes(sess.Cache.NextPos())
	return st, nil
}
