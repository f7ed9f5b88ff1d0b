package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
)

// Part is a piece of a prompt's text: a chunk whose cache may be reused
// (a retrieved document) or text that is always computed.
type Part struct {
	Text  string
	Chunk bool
}

// Span is a chunk's tokens in a prompt: [Start, End).
type Span struct{ Start, End int }

// Prompt is a tokenized prompt and where its chunks are.
type Prompt struct {
	Tokens []int
	Chunks []Span
}

// EncodeParts tokenizes a prompt made of parts. The boundary rule: every
// part is tokenized alone (without BOS; special tokens parsed in the text
// that is not a chunk when parseSpecial is set, never in chunks, which are
// data) and the prompt is the concatenation of the parts' tokens, after a
// BOS when addBOS is set and the model adds one. So a chunk has exactly
// the tokens it has alone, wherever it appears, and its token hash finds
// its cache in any request. The price is at the boundaries: tokens never
// merge across them, and a SentencePiece tokenizer that adds a space
// before a text (add_space_prefix) adds it before every part, as if the
// parts were joined with spaces. Byte-level BPE tokenizers (Llama 3, Qwen)
// split text at spaces and punctuation anyway, so a chunk that starts
// with a space or a new word after a newline tokenizes as it would in the
// whole text (TestChunkBoundaryRule).
func (e *Engine) EncodeParts(parts []Part, addBOS, parseSpecial bool) Prompt {
	var p Prompt
	if addBOS && e.Tok.AddBOS() && e.Tok.BOS() >= 0 {
		p.Tokens = append(p.Tokens, e.Tok.BOS())
	}
	for _, part := range parts {
		if part.Text == "" {
			continue
		}
		ids := e.Tok.Encode(part.Text, false, parseSpecial && !part.Chunk)
		if part.Chunk && len(ids) > 0 {
			p.Chunks = append(p.Chunks, Span{len(p.Tokens), len(p.Tokens) + len(ids)})
		}
		p.Tokens = append(p.Tokens, ids...)
	}
	return p
}

// SplitChunks reads a plain prompt whose chunks are marked by a separator
// string (LMCache's convention, whose separator is " # # "): the text
// before the first separator and after the last is always computed, each
// piece between two separators is a chunk. The separators themselves are
// dropped. Without a separator in text (or with an empty sep) the whole
// text is one part that is not a chunk.
func SplitChunks(text, sep string) []Part {
	if sep == "" || !strings.Contains(text, sep) {
		return []Part{{Text: text}}
	}
	pieces := strings.Split(text, sep)
	parts := make([]Part, len(pieces))
	for i, s := range pieces {
		parts[i] = Part{Text: s, Chunk: i > 0 && i < len(pieces)-1}
	}
	return parts
}

// ChunkOptions configure chunk reuse for one prefill.
type ChunkOptions struct {
	Store  *kvchunk.Store
	Repair kv.Repair
	// Recipe is the request's recipe: its codec is the chunk caches'.
	Recipe *recipe.Recipe
	// Model is the engine's Identity (computed once by the caller).
	Model  string
	Tenant string
	// MinTokens: shorter chunks are computed as plain text (default 16).
	MinTokens int
}

// ReuseStats say what a prefill took from chunk caches and what it
// computed.
type ReuseStats struct {
	Chunks, Hits, Misses int
	// Tiers counts hits per tier ("ram", "disk", "redis").
	Tiers map[string]int
	// ChunkTokens are the tokens of the chunks; Reused those taken from
	// caches and not computed; Recomputed the tokens of reused chunks
	// computed again through every layer.
	ChunkTokens, Reused, Recomputed int
	// Computed is every prompt token run through every layer (Reused plus
	// Computed is the prompt). TokenLayers counts every (token, layer)
	// computed, CacheBlend's check pass included; a full prefill is
	// prompt × layers.
	Computed, TokenLayers int
	// Stored is the chunks computed here and stored.
	Stored int
}

// ErrChunkPrefill marks a chunked prefill that could not start.
var ErrChunkPrefill = errors.New("engine: chunked prefill")

// ChunkKey is the store key of a chunk of the given tokens for a request
// of recipe r.
func ChunkKey(model, tenant string, r *recipe.Recipe, tokens []int) kvchunk.Key {
	return kvchunk.Key{Model: model, Codec: r.Codec().String(), Tenant: tenant, Tokens: kv.TokenHash(tokens)}
}

// ChunkLayout is how the store rebuilds chunk caches of recipe r's codec.
func (e *Engine) ChunkLayout(r *recipe.Recipe) (kvchunk.Layout, error) {
	cr, err := recipe.Parse(r.Codec().String())
	if err != nil {
		return kvchunk.Layout{}, err
	}
	return kvchunk.Layout{
		Shape: e.Model.CacheShape(),
		Config: func() (kv.Config, error) {
			cfg, err := cr.Config()
			cfg.RoPE = e.Model.Rotary()
			return cfg, err
		},
		Capacity: e.Model.ContextLen,
	}, nil
}

// PrefillChunks runs prompt p into the session's empty cache, reusing the
// caches of its chunks from o.Store as o.Repair says, and returns the
// logits of its last token. Chunks found in the store are spliced at
// their positions (keys re-rotated) and the tokens the policy chooses are
// computed again through every layer; chunks not found are computed in
// place, with the attention statistics Cache-Craft needs, and stored. The
// text before, between and after the chunks is always computed. Without a
// policy that reuses chunks (or a store) it is a plain Prefill.
func (e *Engine) PrefillChunks(ctx context.Context, s *Session, p Prompt, o ChunkOptions) ([]float32, ReuseStats, error) {
	st := ReuseStats{Tiers: map[string]int{}}
	n := len(p.Tokens)
	L := e.Model.Config.Layers
	if o.Repair == nil || o.Repair.Reuse() != kv.ReuseChunks || o.Store == nil {
		logits, err := s.Prefill(ctx, p.Tokens)
		st.Computed, st.TokenLayers = n, n*L
		return logits, st, err
	}
	if n == 0 {
		return nil, st, fmt.Errorf("%w: empty prompt", ErrChunkPrefill)
	}
	if s.Cache.NextPos() != 0 || s.Cache.Config().Evictor != nil {
		return nil, st, fmt.Errorf("%w: needs an empty cache without an evictor", ErrChunkPrefill)
	}
	lay, err := e.ChunkLayout(o.Recipe)
	if err != nil {
		return nil, st, err
	}
	minTok := o.MinTokens
	if minTok <= 0 {
		minTok = 16
	}
	// The prompt as segments: chunks long enough to reuse, and the text
	// around them.
	var segs []*segment
	at := 0
	for _, c := range p.Chunks {
		if c.Start < at || c.End > n || c.End-c.Start < minTok {
			continue
		}
		if c.Start > at {
			segs = append(segs, &segment{start: at, end: c.Start})
		}
		toks := p.Tokens[c.Start:c.End]
		segs = append(segs, &segment{start: c.Start, end: c.End, chunk: true, hash: kv.TokenHash(toks),
			key: ChunkKey(o.Model, o.Tenant, o.Recipe, toks)})
		at = c.End
	}
	if at < n {
		segs = append(segs, &segment{start: at, end: n})
	}
	// Fetch every chunk at once: entries in lower tiers load in parallel,
	// while the text before the first chunk is computed.
	for _, sg := range segs {
		if sg.chunk {
			sg.got = make(chan fetched, 1)
			go func(sg *segment) {
				ent, tier := o.Store.Get(ctx, sg.key, lay)
				sg.got <- fetched{ent, tier}
			}(sg)
		}
	}
	r := &chunkRun{e: e, s: s, p: p, o: o, st: &st, check: o.Repair.CheckLayer()}
	if r.check >= L {
		r.check = L - 1
	}
	var before []kv.ChunkHash
	for _, sg := range segs {
		if err := ctx.Err(); err != nil {
			r.drain(segs)
			return nil, st, err
		}
		if !sg.chunk {
			r.add(sg.start, sg.end, nil)
			continue
		}
		st.Chunks++
		st.ChunkTokens += sg.end - sg.start
		sg.before = slices.Clone(before)
		before = append(before, sg.hash)
		f := <-sg.got
		sg.got = nil
		if f.e == nil || f.e.Tokens != sg.end-sg.start {
			st.Misses++
			r.add(sg.start, sg.end, sg)
			continue
		}
		st.Hits++
		st.Tiers[f.tier]++
		if err := r.splice(sg, f.e); err != nil {
			r.drain(segs)
			return nil, st, err
		}
	}
	// The last token's logits are the prefill's answer: compute it when
	// the prompt ends in a reused chunk.
	if !r.has(int32(n - 1)) {
		r.overwrite(int32(n - 1))
	}
	logits, err := r.flush(true)
	if err != nil {
		return nil, st, err
	}
	st.Computed = n - st.Reused
	return logits, st, nil
}

type fetched struct {
	e    *kvchunk.Entry
	tier string
}

// segment is a chunk of the prompt, or the text between chunks.
type segment struct {
	start, end int
	chunk      bool
	hash       kv.ChunkHash
	key        kvchunk.Key
	got        chan fetched
	before     []kv.ChunkHash // chunks before it in this prompt
	entry      *kvchunk.Entry // the reused cache
	use        *kv.ChunkUse
}

// chunkRun is one chunked prefill: the tokens waiting to be computed
// (pending, in position order), the reused chunks waiting for CacheBlend's
// check pass, and the misses to record and store.
type chunkRun struct {
	e     *Engine
	s     *Session
	p     Prompt
	o     ChunkOptions
	st    *ReuseStats
	check int

	pos     []int32 // pending positions
	appends bool    // pending holds positions after the cache's end
	// checked holds, for the positions of the last check pass, each
	// token's residual stream after the check layer (hidden, one row of
	// Embd values per entry of checked), so the tokens the policy chose
	// go on from there instead of computing layers 0..check again.
	checked   map[int32]int
	hidden    []float32
	misses    []*segment
	unchecked []*segment
	done      []*segment // chunks in the prompt so far, for the recorder
}

func (r *chunkRun) add(from, to int, miss *segment) {
	for i := from; i < to; i++ {
		r.pos = append(r.pos, int32(i))
	}
	r.appends = true
	if miss != nil {
		r.misses = append(r.misses, miss)
		r.done = append(r.done, miss)
	}
}

func (r *chunkRun) overwrite(p int32) { r.pos = append(r.pos, p) }

func (r *chunkRun) has(p int32) bool { return slices.Contains(r.pos, p) }

// drain waits for the fetches still running so none outlives the call.
func (r *chunkRun) drain(segs []*segment) {
	for _, sg := range segs {
		if sg.got != nil {
			<-sg.got
		}
	}
}

// splice puts a reused chunk at its positions and chooses its tokens to
// recompute (CacheBlend's choice waits for its check pass).
func (r *chunkRun) splice(sg *segment, ent *kvchunk.Entry) error {
	if r.appends {
		if _, err := r.flush(false); err != nil {
			return err
		}
	}
	if err := r.s.Cache.Splice(ent.Cache, ent.Start, ent.Start+int32(ent.Tokens), int32(sg.start)); err != nil {
		return fmt.Errorf("%w: splice: %v", ErrChunkPrefill, err)
	}
	sg.entry = ent
	sg.use = &kv.ChunkUse{Tokens: ent.Tokens, Before: sg.before, Stats: ent.Stats}
	r.done = append(r.done, sg)
	if r.check >= 0 {
		r.unchecked = append(r.unchecked, sg)
		return nil
	}
	r.choose(sg)
	return nil
}

// choose asks the policy which of a reused chunk's tokens to recompute.
func (r *chunkRun) choose(sg *segment) {
	picks := r.o.Repair.Recompute(sg.use)
	for _, i := range picks {
		if i >= 0 && i < sg.use.Tokens {
			r.overwrite(int32(sg.start + i))
		}
	}
	r.st.Recomputed += len(picks)
	r.st.Reused += sg.use.Tokens - len(picks)
}

// flush computes what is pending: first CacheBlend's check pass over the
// reused chunks waiting for it, then the pending positions through every
// layer, recording the misses among them; final asks for the logits of
// the last position.
func (r *chunkRun) flush(final bool) ([]float32, error) {
	if len(r.unchecked) > 0 {
		if err := r.checkPass(); err != nil {
			return nil, err
		}
	}
	slices.Sort(r.pos)
	r.pos = slices.Compact(r.pos)
	if len(r.pos) == 0 {
		return nil, nil
	}
	// Tokens through CacheBlend's check pass continue from the check
	// layer (held positions, all before the appended ones, whose
	// attention at every layer then sees their fresh keys and values).
	var logits []float32
	keep := func(_ int, l []float32) error {
		logits = l
		return nil
	}
	pos := r.pos
	if len(r.checked) > 0 {
		k := 0
		for k < len(pos) {
			if _, ok := r.checked[pos[k]]; !ok {
				break
			}
			k++
		}
		if k > 0 {
			E := r.e.Model.Config.Embd
			hidden := make([]float32, k*E)
			for i, p := range pos[:k] {
				copy(hidden[i*E:(i+1)*E], r.hidden[r.checked[p]*E:])
			}
			if err := r.s.State.ForwardAtFrom(r.s.Cache, r.tokensAt(pos[:k]), pos[:k], hidden, r.check+1, logitsFrom(k, final && k == len(pos)), keep); err != nil {
				return nil, err
			}
			r.st.TokenLayers += k * (r.e.Model.Config.Layers - r.check - 1)
			pos = pos[k:]
		}
		r.checked, r.hidden = nil, r.hidden[:0]
	}
	if len(pos) > 0 {
		toks := r.tokensAt(pos)
		var rec *recorder
		if len(r.misses) > 0 {
			rec = newRecorder(r.e, pos, r.misses)
			r.s.State.Tap = rec.tap
		}
		err := r.s.State.ForwardAt(r.s.Cache, toks, pos, logitsFrom(len(toks), final), keep)
		r.s.State.Tap = nil
		if err != nil {
			return nil, err
		}
		r.st.TokenLayers += len(toks) * r.e.Model.Config.Layers
		for _, m := range r.misses {
			r.store(m, rec)
		}
	}
	r.pos, r.appends, r.misses = r.pos[:0], false, nil
	return logits, nil
}

// tokensAt returns the prompt's tokens at positions pos.
func (r *chunkRun) tokensAt(pos []int32) []int {
	toks := make([]int, len(pos))
	for i, p := range pos {
		toks[i] = r.p.Tokens[p]
	}
	return toks
}

// logitsFrom is the first of n tokens whose logits a pass computes: the
// last one when it ends the prompt (final), none otherwise.
func logitsFrom(n int, final bool) int {
	if final {
		return n - 1
	}
	return n
}

// checkPass is CacheBlend's: every token of the reused chunks waiting for
// it runs through the layers up to the check layer, and each token's
// squared value deviation there (fresh against spliced) goes to the
// policy, which chooses the tokens that run through every layer.
func (r *chunkRun) checkPass() error {
	c := r.s.Cache
	var toks []int
	var pos []int32
	for _, sg := range r.unchecked {
		for i := sg.start; i < sg.end; i++ {
			toks = append(toks, r.p.Tokens[i])
			pos = append(pos, int32(i))
		}
	}
	old := r.values(r.check, pos)
	// Keep each token's residual stream after the check layer for the
	// chosen ones to go on from (unless the check layer is the last).
	var keep func(i int, x []float32)
	if E := r.e.Model.Config.Embd; r.check+1 < r.e.Model.Config.Layers {
		r.hidden = slices.Grow(r.hidden[:0], len(pos)*E)[:len(pos)*E]
		r.checked = make(map[int32]int, len(pos))
		for i, p := range pos {
			r.checked[p] = i
		}
		keep = func(i int, x []float32) { copy(r.hidden[i*E:(i+1)*E], x) }
	}
	if err := r.s.State.ForwardLayersAt(c, toks, pos, r.check+1, keep); err != nil {
		return err
	}
	r.st.TokenLayers += len(toks) * (r.check + 1)
	fresh := r.values(r.check, pos)
	w := len(old) / max(1, len(pos))
	at := 0
	for _, sg := range r.unchecked {
		dev := make([]float32, sg.end-sg.start)
		for i := range dev {
			var d float64
			for j := 0; j < w; j++ {
				x := float64(fresh[(at+i)*w+j] - old[(at+i)*w+j])
				d += x * x
			}
			dev[i] = float32(d)
		}
		at += len(dev)
		sg.use.Deviation = dev
		r.choose(sg)
	}
	r.unchecked = nil
	return nil
}

// values reads the values of layer l at the given positions, every KV
// head side by side.
func (r *chunkRun) values(l int, pos []int32) []float32 {
	c := r.s.Cache
	H := c.Shape().KVHeads
	var out []float32
	var dv int
	for h := 0; h < H; h++ {
		dv = max(dv, c.Stream(l, h).ValueDim())
	}
	out = make([]float32, len(pos)*H*dv)
	for h := 0; h < H; h++ {
		s := c.Stream(l, h)
		k, v := make([]float32, s.Dim()), make([]float32, s.ValueDim())
		ps := s.Positions()
		for i, p := range pos {
			j := sort.Search(len(ps), func(x int) bool { return ps[x] >= p })
			if j == len(ps) || ps[j] != p {
				continue
			}
			s.Vector(j, k, v)
			copy(out[(i*H+h)*dv:], v)
		}
	}
	return out
}

// store keeps a chunk computed in this request: its keys and values as the
// cache holds them, in the request's codec, with what the recorder saw.
func (r *chunkRun) store(m *segment, rec *recorder) {
	lay, err := r.e.ChunkLayout(r.o.Recipe)
	if err != nil {
		return
	}
	cfg, err := lay.Config()
	if err != nil {
		return
	}
	cc, err := kv.New(lay.Shape, cfg, lay.Capacity)
	if err != nil {
		return
	}
	if err := cc.Splice(r.s.Cache, int32(m.start), int32(m.end), int32(m.start)); err != nil {
		return
	}
	cc.Seal()
	ent := &kvchunk.Entry{Cache: cc, Start: int32(m.start), Tokens: m.end - m.start, Hash: m.hash}
	if rec != nil {
		ent.Stats = rec.stats(r.s.Cache, m, r.done)
	}
	r.o.Store.Put(m.key, ent)
	r.st.Stored++
}

// recorder keeps the queries of the rows of a batch that belong to chunks
// being computed (State.Tap hands them before RoPE; the recorder applies
// the model's QK-norm and RoPE as the model does), so that after the batch
// their attention over the cache can be measured: what Cache-Craft
// records when a chunk is computed in a real request.
type recorder struct {
	e    *Engine
	pos  []int32
	row  map[int32]int // position -> index among the recorded rows
	q    [][]float32   // per layer: recorded rows × Heads × HeadDim
	next int           // batch row of the next sub-batch
	cur  int
}

func newRecorder(e *Engine, pos []int32, misses []*segment) *recorder {
	r := &recorder{e: e, pos: pos, row: map[int32]int{}}
	for _, m := range misses {
		for p := m.start; p < m.end; p++ {
			r.row[int32(p)] = len(r.row)
		}
	}
	c := e.Model.Config
	r.q = make([][]float32, c.Layers)
	for l := range r.q {
		r.q[l] = make([]float32, len(r.row)*c.Heads*c.HeadDim)
	}
	return r
}

func (r *recorder) tap(layer, n int, q, _, _ []float32) {
	m := r.e.Model
	c := m.Config
	if layer == 0 {
		r.cur = r.next
		r.next += n
	}
	D, qd := c.HeadDim, c.Heads*c.HeadDim
	rot := m.Rotary()
	l := &m.Layers[layer]
	for i := 0; i < n; i++ {
		p := r.pos[r.cur+i]
		j, ok := r.row[p]
		if !ok {
			continue
		}
		dst := r.q[layer][j*qd : (j+1)*qd]
		copy(dst, q[i*qd:(i+1)*qd])
		for h := 0; h < c.Heads; h++ {
			qh := dst[h*D : (h+1)*D]
			if l.QNorm != nil {
				kernel.RMSNorm(qh, qh, l.QNorm, c.RMSEps)
			}
			rot.Rotate(layer, qh, p)
		}
	}
}

// stats measures, for chunk m, every layer's attention from its tokens to
// the context before it, to the chunks before it and to itself (averaged
// over query heads), from the recorded queries and the cache's keys.
//
// It is an attention pass of its own over the chunk's tokens (no values),
// so it is computed like one: the (layer, KV head) streams are shared out
// on the engine's pool, each stream's keys are decoded once, a block of
// statsBlock tokens' queries (every head of the group) meets a tile of
// keys in one kernel.DotsGroupTo, and each row's softmax is summed over
// the ranges of positions (the context, each earlier chunk, the chunk
// itself) rather than key by key. Scores and exponentials are float32, as
// in attention; sums are float64. Scalar float64 code took longer than the
// whole full prefill of the prompt for each chunk missed on kvgo-tiny, and
// about a fifth of one on qwen2.5-0.5b's shape (commit message).
func (r *recorder) stats(c *kv.Cache, m *segment, chunks []*segment) *kv.ChunkStats {
	md := r.e.Model.Config
	sh := c.Shape()
	L, H, D := md.Layers, md.Heads, md.HeadDim
	for l := 0; l < L; l++ {
		if sh.Dims(l).Key != D {
			return nil // a latent cache: not recorded
		}
	}
	var prev []*segment
	for _, x := range chunks {
		if x.start < m.start {
			prev = append(prev, x)
		}
	}
	n := m.end - m.start
	s := &kv.ChunkStats{Before: make([]kv.ChunkHash, len(prev)), Inter: make([]float32, len(prev)),
		A: make([]float32, L), B: make([]float32, L), Context: make([]float32, n)}
	for j, x := range prev {
		s.Before[j] = x.hash
	}
	scale := sh.Scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(sh.Dims(0).Key)))
	}
	j := &statsJob{r: r, c: c, m: m, prev: prev, scale: scale, kvHeads: sh.KVHeads, group: H / sh.KVHeads,
		ctx: make([]float64, L*sh.KVHeads*n), intra: make([]float64, L*sh.KVHeads),
		inter: make([]float64, L*sh.KVHeads*len(prev)), work: make([]statsScratch, r.e.Pool.Threads())}
	r.e.Pool.Run(L*sh.KVHeads, 1, j)
	// Sum the streams' shares in a fixed order, so that the result does
	// not depend on which worker ran which stream.
	inter := make([]float64, len(prev))
	ctx := make([]float64, n)
	for l := 0; l < L; l++ {
		clear(inter)
		var intra float64
		for kh := 0; kh < sh.KVHeads; kh++ {
			x := l*sh.KVHeads + kh
			intra += j.intra[x]
			for i := range inter {
				inter[i] += j.inter[x*len(prev)+i]
			}
			for t := range ctx {
				ctx[t] += j.ctx[x*n+t]
			}
		}
		var a float64
		for i, x := range prev {
			v := inter[i] / float64(H)
			s.Inter[i] += float32(v / float64(L))
			a += v / float64(n*(x.end-x.start))
		}
		s.A[l] = float32(a)
		s.B[l] = float32(intra / float64(H) / float64(n*n))
	}
	for t := range ctx {
		s.Context[t] = float32(ctx[t] / float64(L*H))
	}
	return s
}

// statsBlock is how many of a chunk's tokens meet the keys together in
// recorder.stats, and statsKeyTile how many keys a block meets at once
// (16 KiB of keys at HeadDim 64, so they stay in L1 for every row).
const (
	statsBlock   = 8
	statsKeyTile = 64
)

// statsJob measures one chunk's attention, one (layer, KV head) stream per
// task; each task writes only its own entries of ctx, intra and inter
// (indexed by stream, then token or earlier chunk).
type statsJob struct {
	r              *recorder
	c              *kv.Cache
	m              *segment
	prev           []*segment
	scale          float32
	kvHeads, group int
	ctx            []float64 // [stream][token]: summed over the group's heads
	intra          []float64 // [stream]
	inter          []float64 // [stream][earlier chunk]
	work           []statsScratch
}

// statsScratch is a worker's memory for statsJob.
type statsScratch struct{ keys, q, w []float32 }

func (j *statsJob) Run(w, lo, hi int) {
	for x := lo; x < hi; x++ {
		j.stream(&j.work[w], x/j.kvHeads, x%j.kvHeads, x)
	}
}

func (j *statsJob) stream(sc *statsScratch, l, kh, x int) {
	md := j.r.e.Model.Config
	H, D, g := md.Heads, md.HeadDim, j.group
	m := j.m
	n := m.end - m.start
	st := j.c.Stream(l, kh)
	sc.keys = st.Keys(sc.keys)
	keys, ps := sc.keys, st.Positions()
	// idx(p) is the number of keys at positions before p.
	idx := func(p int) int { return sort.Search(len(ps), func(i int) bool { return ps[i] >= int32(p) }) }
	self := idx(m.start)
	from := min(idx(1), self) // the context leaves out position 0, the sink
	bounds := make([][2]int, len(j.prev))
	for i, y := range j.prev {
		bounds[i] = [2]int{idx(y.start), idx(y.end)}
	}
	ctx := j.ctx[x*n : (x+1)*n]
	inter := j.inter[x*len(j.prev) : (x+1)*len(j.prev)]
	var intra float64
	q := j.r.q[l]
	for t0 := m.start; t0 < m.end; t0 += statsBlock {
		t1 := min(t0+statsBlock, m.end)
		rows := (t1 - t0) * g
		T := idx(t1) // the keys the block's last token sees
		sc.q = slices.Grow(sc.q[:0], rows*D)
		Q := sc.q[:rows*D]
		for t := t0; t < t1; t++ {
			src := q[j.r.row[int32(t)]*H*D+kh*g*D:][:g*D]
			dst := Q[(t-t0)*g*D:][:g*D]
			for i, v := range src {
				dst[i] = v * j.scale
			}
		}
		sc.w = slices.Grow(sc.w[:0], rows*T)
		W := sc.w[:rows*T]
		for k0 := 0; k0 < T; k0 += statsKeyTile {
			k1 := min(k0+statsKeyTile, T)
			kernel.DotsGroupTo(W[k0:], T, Q, rows, keys[k0*D:k1*D], D, k1-k0)
		}
		for t := t0; t < t1; t++ {
			Tt := idx(t + 1) // causal: the keys at positions <= t
			for h := 0; h < g; h++ {
				row := W[((t-t0)*g+h)*T:][:Tt]
				z := float64(kernel.ExpShift(row, kernel.Max(row)))
				ctx[t-m.start] += sum64(row[from:self]) / z
				intra += sum64(row[self:]) / z
				for i, b := range bounds {
					inter[i] += sum64(row[b[0]:b[1]]) / z
				}
			}
		}
	}
	j.intra[x] = intra
}

// sum64 is the float64 sum of x.
func sum64(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}
