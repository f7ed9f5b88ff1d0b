package eval

import (
	"context"
	"fmt"
	"github.com/kvgo/kvgo/internal/dist"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval/ragkb"
	"github.com/kvgo/kvgo/eval/report"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
)

// The RAG workload (issue 12), its knowledge base and questions drawn by
// package ragkb (which `kvgo loadtest --rag` shares): documents holding
// one fact each, questions retrieving K of them by Zipf popularity in
// random order, so that documents recur at new positions after new
// neighbours.
//
// Every policy answers the same questions with a store of its own, warmed
// by a separate stream of Warm questions from the same distribution (so the
// measured questions find most documents cached, computed in other
// contexts, and a few not at all). Per policy: accuracy with its Wilson
// interval, the KL divergence and top-1 agreement of the answer's first
// token distribution against a full prefill of the same prompt, the time
// to first token and its ratio to full prefill's, the fraction of chunk
// tokens recomputed and of (token, layer) pairs computed, the chunk hit
// rate and the bytes the store holds.

// RAGConfig configures the workload.
type RAGConfig struct {
	Docs      int     // documents in the knowledge base (default 24)
	DocTokens int     // about this many tokens per document (default 160; at least 128)
	K         int     // documents per question (default 4)
	Questions int     // measured questions (default 40)
	Warm      int     // warm-up questions (default 2×Questions)
	Zipf      float64 // popularity exponent s > 1 (default 1.2)
	Seed      uint64
	MaxTokens int // generated tokens per answer (default 10)
	// Recipes are the policies compared; recipe.FullPrefill is always measured first
	// (it is the reference).
	Recipes []string
	// ChunkMem is each policy's store budget (default 64 MiB).
	ChunkMem int64
	// Quality false measures time only (random-weight models): no
	// generation, no accuracy.
	Quality  bool
	Progress io.Writer
	// Measuring, when set, is called with true before the measured
	// questions and false after them (not around the reference's prefills
	// or the warm-up), so that a CPU profile covers what the table times.
	Measuring func(on bool)
}

// RAGRow is one policy's measurements.
type RAGRow struct {
	Recipe    string  `json:"recipe"`
	Cases     int     `json:"cases"`
	Correct   int     `json:"correct"`
	Accuracy  float64 `json:"accuracy"`
	Lo        float64 `json:"accuracy_lo"`
	Hi        float64 `json:"accuracy_hi"`
	KLD       float64 `json:"kld"` // mean over questions, nats
	KLDSE     float64 `json:"kld_se"`
	Top1      float64 `json:"top1"`
	TTFT      float64 `json:"ttft_ms"` // mean prefill time
	TTFTRatio float64 `json:"ttft_speedup"`
	// Recomputed is the share of the tokens of chunks found in the store
	// that were computed again; Compute
	// the share of a full prefill's (token, layer) pairs computed.
	Recomputed float64 `json:"recomputed"`
	Compute    float64 `json:"compute"`
	HitRate    float64 `json:"hit_rate"`
	StoreBytes int64   `json:"store_bytes"`
	StoreN     int     `json:"store_entries"`
}

// RAGReport is the workload's result.
type RAGReport struct {
	Model     string  `json:"model"`
	Docs      int     `json:"docs"`
	K         int     `json:"k"`
	DocTokens float64 `json:"doc_tokens"` // mean
	Prompt    float64 `json:"prompt_tokens"`
	// Always is the share of the prompts' tokens outside the documents
	// (instruction, question): computed by every policy, it caps any
	// policy's speedup over full prefill near 1/Always.
	Always     float64  `json:"always_computed"`
	Questions  int      `json:"questions"`
	Warm       int      `json:"warm"`
	Zipf       float64  `json:"zipf"`
	Rows       []RAGRow `json:"rows"`
	Seconds    float64  `json:"seconds"`
	ThreadNote string   `json:"threads"`
}

func ragShape(c RAGConfig) ragkb.Config {
	return ragkb.Config{Docs: c.Docs, DocTokens: c.DocTokens, K: c.K, Zipf: c.Zipf}
}

func (c *RAGConfig) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	sh := ragShape(*c)
	sh.Defaults()
	c.Docs, c.DocTokens, c.K, c.Zipf = sh.Docs, sh.DocTokens, sh.K, sh.Zipf
	def(&c.Questions, 40)
	def(&c.Warm, 2*c.Questions)
	def(&c.MaxTokens, 10)
	if c.ChunkMem <= 0 {
		c.ChunkMem = 64 << 20
	}
	if len(c.Recipes) == 0 {
		c.Recipes = recipe.RAGShowcase()
	}
}

// ragPrompt is q's prompt (ragkb's instruction, documents and question),
// each part tokenized alone (engine.EncodeParts), the documents chunks.
func ragPrompt(e *engine.Engine, docs []ragkb.Doc, q ragkb.Question) engine.Prompt {
	parts := []engine.Part{{Text: ragkb.Instruction}}
	for _, t := range q.Chunks(docs) {
		parts = append(parts, engine.Part{Text: t, Chunk: true})
	}
	parts = append(parts, engine.Part{Text: q.Ask(docs)})
	return e.EncodeParts(parts, true, false)
}

// ragPolicy runs questions through one recipe with its own stores.
type ragPolicy struct {
	e      *engine.Engine
	r      *recipe.Recipe
	rep    kv.Repair
	store  *kvchunk.Store
	prefix *prefix.Store
	model  string
}

type ragAnswer struct {
	steps   [][]float32 // logits at each answer position (the last prompt token first)
	tokens  []int
	text    string
	ttft    time.Duration
	st      engine.ReuseStats
	full    int // token-layers of a full prefill
	chunked bool
}

// answer prefills a prompt and decodes greedily; with force (the
// reference's answer tokens) it also records the distributions along
// them.
func (p *ragPolicy) answer(ctx context.Context, pr engine.Prompt, maxTokens int, force []int) (ragAnswer, error) {
	var a ragAnswer
	e := p.e
	n := len(pr.Tokens)
	sess, err := e.NewSession(p.r, e.Model.ContextLen, n)
	if err != nil {
		return a, err
	}
	a.full = n * e.Model.Config.Layers
	t0 := time.Now()
	var logits []float32
	reuse := kv.ReuseNone
	if p.rep != nil {
		reuse = p.rep.Reuse()
	}
	switch reuse {
	case kv.ReuseChunks:
		logits, a.st, err = e.PrefillChunks(ctx, sess, pr, engine.ChunkOptions{Store: p.store, Repair: p.rep, Recipe: p.r, Model: p.model})
		a.chunked = true
	case kv.ReusePrefix:
		key := prefix.Key{Model: p.model, Recipe: p.r.String()}
		c, m := p.prefix.Acquire(key, pr.Tokens)
		if c != nil {
			sess.Cache.Release()
			sess.Cache = c
		}
		logits, err = sess.State.Forward(sess.Cache, pr.Tokens[m:], m)
		a.st.Reused, a.st.Computed, a.st.TokenLayers = m, n-m, (n-m)*e.Model.Config.Layers
		defer func() { p.prefix.Offer(key, pr.Tokens, sess.Cache) }()
	default:
		logits, err = sess.Prefill(ctx, pr.Tokens)
		a.st.Computed, a.st.TokenLayers = n, a.full
	}
	a.ttft = time.Since(t0)
	if err != nil {
		return a, err
	}
	a.steps = [][]float32{slices.Clone(logits)}
	if maxTokens <= 0 {
		return a, nil
	}
	// The answer's distributions along the reference's answer (teacher
	// forced, on a fork of the cache), for the KL divergence.
	if force != nil {
		f := sess.Cache.Fork()
		for i, id := range force {
			if i == len(force)-1 {
				break
			}
			l, err := sess.State.Forward(f, []int{id}, n+i)
			if err != nil {
				return a, err
			}
			a.steps = append(a.steps, slices.Clone(l))
		}
		f.Release()
	}
	// The forced steps ran on the same State: decode from the prefill's
	// own logits, kept in steps[0].
	logits = a.steps[0]
	dec := e.ContinuationDecoder(pr.Tokens)
	var b strings.Builder
	for i := 0; i < maxTokens; i++ {
		id := dist.Argmax(logits)
		if e.Tok.IsEOG(id) {
			break
		}
		a.tokens = append(a.tokens, id)
		b.WriteString(dec.Next(id))
		if i == maxTokens-1 {
			break
		}
		if logits, err = sess.Step(id, n+i); err != nil {
			return a, err
		}
		if force == nil {
			a.steps = append(a.steps, slices.Clone(logits))
		}
	}
	b.WriteString(dec.Flush())
	a.text = b.String()
	return a, nil
}

// RAG runs the workload on e.
func RAG(ctx context.Context, e *engine.Engine, c RAGConfig) (*RAGReport, error) {
	c.defaults()
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(c.Seed, 0x7261672d6b62))
	count := func(s string) int { return len(e.Tok.Encode(s, false, false)) }
	docs, err := ragkb.KB(ragShape(c), rng, count)
	if err != nil {
		return nil, err
	}
	warm := ragkb.Questions(ragShape(c), rng, c.Warm)
	qs := ragkb.Questions(ragShape(c), rng, c.Questions)
	model := e.Identity()
	rep := &RAGReport{Model: e.Source, Docs: c.Docs, K: c.K, Questions: len(qs), Warm: len(warm), Zipf: c.Zipf}
	var dt float64
	for _, d := range docs {
		dt += float64(count(d.Text + "\n"))
	}
	rep.DocTokens = dt / float64(len(docs))
	prompts := make([]engine.Prompt, len(qs))
	for i, q := range qs {
		prompts[i] = ragPrompt(e, docs, q)
		rep.Prompt += float64(len(prompts[i].Tokens)) / float64(len(qs))
		out := len(prompts[i].Tokens)
		for _, sp := range prompts[i].Chunks {
			out -= sp.End - sp.Start
		}
		rep.Always += float64(out) / float64(len(prompts[i].Tokens)) / float64(len(qs))
	}
	gen := 0
	if c.Quality {
		gen = c.MaxTokens
	}
	// The reference: full prefill of every measured prompt.
	fullR, err := recipe.Parse(recipe.FullPrefill)
	if err != nil {
		return nil, err
	}
	ref := &ragPolicy{e: e, r: fullR, model: model}
	refs := make([]ragAnswer, len(qs))
	for i := range qs {
		a, err := ref.answer(ctx, prompts[i], gen, nil)
		if err != nil {
			return nil, err
		}
		refs[i] = a
	}
	// Warm every policy's store, then answer each question with every
	// policy in turn (full prefill again first): a change of machine load
	// during the run then affects every policy alike.
	pols := []*ragPolicy{ref}
	for _, src := range c.Recipes {
		r, err := recipe.Parse(src)
		if err != nil {
			return nil, err
		}
		rp, err := r.Repair()
		if err != nil {
			return nil, err
		}
		p := &ragPolicy{e: e, r: r, rep: rp, model: model, store: kvchunk.New(c.ChunkMem), prefix: prefix.New()}
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "rag: %s: %d warm-up questions\n", r, len(warm))
		}
		for _, q := range warm {
			if _, err := p.answer(ctx, ragPrompt(e, docs, q), 0, nil); err != nil {
				return nil, err
			}
		}
		pols = append(pols, p)
	}
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "rag: %d measured questions, every policy on each in turn\n", len(qs))
	}
	ans := make([][]ragAnswer, len(pols))
	for k := range ans {
		ans[k] = make([]ragAnswer, len(qs))
	}
	if c.Measuring != nil {
		c.Measuring(true)
	}
	for i := range qs {
		for k, p := range pols {
			a, err := p.answer(ctx, prompts[i], gen, refs[i].tokens)
			if err != nil {
				if c.Measuring != nil {
					c.Measuring(false)
				}
				return nil, err
			}
			ans[k][i] = a
		}
	}
	if c.Measuring != nil {
		c.Measuring(false)
	}
	for k, p := range pols {
		name := p.r.String()
		if k == 0 {
			name = recipe.FullPrefill
		}
		rep.Rows = append(rep.Rows, ragRow(name, docs, qs, ans[k], ans[0], p.store))
	}
	rep.Seconds = time.Since(t0).Seconds()
	return rep, nil
}

func ragRow(name string, docs []ragkb.Doc, qs []ragkb.Question, as, refs []ragAnswer, store *kvchunk.Store) RAGRow {
	row := RAGRow{Recipe: name, Cases: len(qs)}
	var kls []float64
	var ttft, ref float64
	var hitTok, recomp, hits, chunks, layers, full int
	for i, a := range as {
		if qs[i].Correct(docs, a.text) {
			row.Correct++
		}
		// Mean over the answer's positions of KL(full ‖ policy), and the
		// share of positions whose most likely token agrees.
		m := min(len(a.steps), len(refs[i].steps))
		var kl, top float64
		for j := 0; j < m; j++ {
			kl += answerKLD(refs[i].steps[j], a.steps[j]) / float64(m)
			if dist.Argmax(a.steps[j]) == dist.Argmax(refs[i].steps[j]) {
				top += 1 / float64(m)
			}
		}
		kls = append(kls, kl)
		row.Top1 += top
		ttft += a.ttft.Seconds()
		ref += refs[i].ttft.Seconds()
		hitTok += a.st.Recomputed + a.st.Reused
		recomp += a.st.Recomputed
		hits += a.st.Hits
		chunks += a.st.Chunks
		layers += a.st.TokenLayers
		full += a.full
	}
	n := float64(len(qs))
	row.Accuracy = float64(row.Correct) / n
	row.Lo, row.Hi = report.Wilson(float64(row.Correct), len(qs))
	for _, k := range kls {
		row.KLD += k / n
	}
	var v float64
	for _, k := range kls {
		v += (k - row.KLD) * (k - row.KLD)
	}
	if len(kls) > 1 {
		row.KLDSE = math.Sqrt(v/float64(len(kls)-1)) / math.Sqrt(n)
	}
	row.Top1 /= n
	row.TTFT = 1000 * ttft / n
	row.TTFTRatio = ref / ttft
	if hitTok > 0 {
		row.Recomputed = float64(recomp) / float64(hitTok)
	}
	row.Compute = float64(layers) / float64(max(full, 1))
	if chunks > 0 {
		row.HitRate = float64(hits) / float64(chunks)
	}
	if store != nil {
		row.StoreBytes = store.Bytes()
		row.StoreN = store.Stats()[0].Entries
	}
	return row
}

// answerKLD is KL(p‖q) of the softmax distributions of two logit
// vectors, in nats (fidelity.go's kld).
func answerKLD(p, q []float32) float64 {
	lp, lq := make([]float64, len(p)), make([]float64, len(q))
	dist.LogSoftmax(p, lp)
	dist.LogSoftmax(q, lq)
	return dist.KLD(lp, lq)
}

// WriteRAGTable prints the report as a Markdown table.
func WriteRAGTable(w io.Writer, r *RAGReport, quality bool) {
	fmt.Fprintf(w, "%s: %d documents of %.0f tokens, %d per question (prompts of %.0f tokens, %.0f%% of them outside the documents and always computed), Zipf s=%.2f; %d measured questions after %d warm-up ones.\n\n",
		r.Model, r.Docs, r.DocTokens, r.K, r.Prompt, 100*r.Always, r.Zipf, r.Questions, r.Warm)
	if quality {
		fmt.Fprintln(w, "| policy | accuracy (n, 95% CI) | answer KLD vs full (± s.e.) | top-1 = full | TTFT ms | speedup vs full | chunk tokens recomputed | compute vs full | chunk hit rate | store |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	} else {
		fmt.Fprintln(w, "| policy | TTFT ms | speedup vs full | chunk tokens recomputed | compute vs full | chunk hit rate | store |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	}
	for _, x := range r.Rows {
		store := "-"
		if x.StoreN > 0 {
			store = fmt.Sprintf("%d chunks, %.2f MiB", x.StoreN, float64(x.StoreBytes)/(1<<20))
		}
		tail := fmt.Sprintf("%.1f | %.2fx | %.1f%% | %.1f%% | %.0f%% | %s |", x.TTFT, x.TTFTRatio, 100*x.Recomputed, 100*x.Compute, 100*x.HitRate, store)
		if quality {
			fmt.Fprintf(w, "| %s | %.2f (%d/%d, %.2f-%.2f) | %.4f ± %.4f | %.0f%% | %s\n", x.Recipe, x.Accuracy, x.Correct, x.Cases, x.Lo, x.Hi, x.KLD, x.KLDSE, 100*x.Top1, tail)
		} else {
			fmt.Fprintf(w, "| %s | %s\n", x.Recipe, tail)
		}
	}
}
