package model

import (
	"fmt"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// State is the scratch memory of a forward pass for batches of up to
// MaxBatch tokens. A State is used by one sequence at a time.
type State struct {
	m        *Model
	pool     *kernel.Pool
	maxBatch int

	x, xn     []float32 // residual stream and its normalized copy, [n][Embd]
	q, k, v   []float32 // [n][Heads*HeadDim], [n][KVHeads*HeadDim]
	att, attO []float32 // attention output per head, projected back, [n][...]
	gate, up  []float32 // [n][FFN]
	logits    []float32 // [n][Vocab]
	act       []byte    // activations converted for quantized weights
	scratch   []*kv.Scratch
	pos       []int32 // position of each batch row
	owner     []int32 // segment of each batch row
	tokens    []int
	ctx       int
	attn      attnJob
	latent    latentJob
	lb        latentBuffers // MLA models only
	seg       [1]segment    // ForwardEach's single segment, kept to avoid allocating
	layers    int           // run only the first layers of each batch (ForwardLayersAt); 0: all
	first     int           // start each batch at this layer from hidden (ForwardAtFrom); 0: embed
	hidden    []float32     // ForwardAtFrom's rows of residual stream, [len(tokens)][Embd]
	kept      func(i int, x []float32)
	done      int // batch index of the current batch's first row (ForwardAt's loop)

	// Tap, when set, receives every layer's queries, keys and values of a
	// batch before RoPE (after the biases, before QK-norm): n rows of
	// Heads*HeadDim, KVHeads*HeadDim and KVHeads*HeadDim values, valid
	// during the call. `kvgo convert --mla` calibrates from them. MLA
	// layers do not call it.
	Tap func(layer, n int, q, k, v []float32)
}

// NewState allocates scratch for batches of up to maxBatch tokens with a
// context of up to ctx tokens.
func (m *Model) NewState(pool *kernel.Pool, maxBatch, ctx int) *State {
	c := m.Config
	n := maxBatch
	s := &State{
		m: m, pool: pool, maxBatch: n,
		x:      make([]float32, n*c.Embd),
		xn:     make([]float32, n*c.Embd),
		q:      make([]float32, n*c.Heads*c.HeadDim),
		k:      make([]float32, n*c.KVHeads*c.HeadDim),
		v:      make([]float32, n*c.KVHeads*c.HeadDim),
		att:    make([]float32, n*c.Heads*max(c.HeadDim, c.ValueHeadDim)),
		attO:   make([]float32, n*c.Embd),
		gate:   make([]float32, n*c.FFN),
		up:     make([]float32, n*c.FFN),
		logits: make([]float32, n*c.Vocab),
		pos:    make([]int32, n),
		owner:  make([]int32, n),
		tokens: make([]int, 0, n),
	}
	actBytes := 0
	for _, mat := range m.matrices() {
		actBytes = max(actBytes, mat.ActivationBytes(n))
	}
	s.act = make([]byte, actBytes)
	if c.IsMLA() {
		s.lb = newLatentBuffers(c, n)
	}
	s.ctx = ctx
	s.scratch = make([]*kv.Scratch, pool.Threads())
	for i := range s.scratch {
		s.scratch[i] = kv.NewScratch(c.Heads / c.KVHeads)
	}
	return s
}

func (m *Model) matrices() []*kernel.Matrix {
	ms := []*kernel.Matrix{m.TokenEmbd, m.Output}
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, mat := range []*kernel.Matrix{l.Q, l.K, l.V, l.QA, l.QB, l.KVA, l.O, l.Gate, l.Up, l.Down} {
			if mat != nil {
				ms = append(ms, mat)
			}
		}
	}
	return ms
}

// Forward runs tokens at consecutive positions starting at startPos through
// the model, storing their keys and values in cache, and returns the logits
// of the last token. The returned slice is reused by the next call.
func (s *State) Forward(cache *kv.Cache, tokens []int, startPos int) ([]float32, error) {
	var last []float32
	err := s.ForwardEach(cache, tokens, startPos, len(tokens)-1, func(_ int, logits []float32) error {
		last = logits
		return nil
	})
	return last, err
}

// ForwardEach is Forward that hands the logits of every token from index
// from on to fn, batch by batch, without keeping them all in memory (a
// context of 2048 tokens with a 150k vocabulary would need 1.2 GB). The
// logits slice is only valid during the call.
func (s *State) ForwardEach(cache *kv.Cache, tokens []int, startPos, from int, fn func(i int, logits []float32) error) error {
	if len(tokens) == 0 {
		return fmt.Errorf("model: empty batch")
	}
	for i, t := range tokens {
		if t < 0 || t >= s.m.Vocab {
			return fmt.Errorf("model: token %d at batch index %d is outside the vocabulary [0, %d)", t, i, s.m.Vocab)
		}
	}
	if startPos < 0 || startPos+len(tokens) > s.ctx {
		return fmt.Errorf("model: positions %d..%d exceed the context of %d tokens", startPos, startPos+len(tokens)-1, s.ctx)
	}
	V := s.m.Vocab
	for done := 0; done < len(tokens); done += s.maxBatch {
		end := min(done+s.maxBatch, len(tokens))
		first := max(from, done) - done // first row of this batch that needs logits
		s.seg[0] = segment{cache: cache, tokens: tokens[done:end], start: startPos + done, firstLogit: first}
		if err := s.forwardBatch(s.seg[:]); err != nil {
			return err
		}
		for i := done + first; i < end; i++ {
			r := i - done - first
			if err := fn(i, s.logits[r*V:(r+1)*V]); err != nil {
				return err
			}
		}
	}
	return nil
}

// ForwardAt runs tokens at the given positions through the model against
// cache and hands the logits of every token from index from on to fn, as
// ForwardEach does. Positions need not be consecutive: positions after the
// cache's last are appended (in increasing order), positions the cache
// already holds are computed again and overwrite their keys and values
// (kv.Cache.Begin), and attention is causal by position, so each token sees
// exactly the cached tokens before it. CacheBlend and Cache-Craft run the
// chosen tokens of a reused chunk this way.
func (s *State) ForwardAt(cache *kv.Cache, tokens []int, pos []int32, from int, fn func(i int, logits []float32) error) error {
	if len(tokens) == 0 {
		return fmt.Errorf("model: empty batch")
	}
	if len(pos) != len(tokens) {
		return fmt.Errorf("model: %d positions for %d tokens", len(pos), len(tokens))
	}
	for i, t := range tokens {
		if t < 0 || t >= s.m.Vocab {
			return fmt.Errorf("model: token %d at batch index %d is outside the vocabulary [0, %d)", t, i, s.m.Vocab)
		}
		if pos[i] < 0 || int(pos[i]) >= s.ctx {
			return fmt.Errorf("model: position %d exceeds the context of %d tokens", pos[i], s.ctx)
		}
	}
	V := s.m.Vocab
	for done := 0; done < len(tokens); done += s.maxBatch {
		end := min(done+s.maxBatch, len(tokens))
		first := max(from, done) - done
		s.seg[0] = segment{cache: cache, tokens: tokens[done:end], positions: pos[done:end], firstLogit: first}
		s.done = done
		if err := s.forwardBatch(s.seg[:]); err != nil {
			return err
		}
		if s.kept != nil {
			E := s.m.Embd
			for i := 0; i < end-done; i++ {
				s.kept(done+i, s.x[i*E:(i+1)*E])
			}
		}
		for i := done + first; i < end; i++ {
			r := i - done - first
			if err := fn(i, s.logits[r*V:(r+1)*V]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Seq is one sequence's share of a multi-sequence batch.
type Seq struct {
	Cache  *kv.Cache
	Tokens []int
	Start  int  // position of Tokens[0]
	Logits bool // compute the logits of the last token
}

// ForwardSeqs runs the tokens of several sequences in one pass over the
// weights, each against its own cache: the decode steps of all running
// sequences (and chunks of prompts) share the matrix products, which is
// what makes continuous batching pay. It returns, per sequence, the logits
// of its last token (nil when not asked); they are valid until the next
// call. The total number of tokens may not exceed the State's batch size.
func (s *State) ForwardSeqs(seqs []Seq) ([][]float32, error) {
	total := 0
	segs := make([]segment, len(seqs))
	for i, q := range seqs {
		if len(q.Tokens) == 0 {
			return nil, fmt.Errorf("model: sequence %d of the batch has no tokens", i)
		}
		for _, t := range q.Tokens {
			if t < 0 || t >= s.m.Vocab {
				return nil, fmt.Errorf("model: token %d is outside the vocabulary [0, %d)", t, s.m.Vocab)
			}
		}
		if q.Start < 0 || q.Start+len(q.Tokens) > s.ctx {
			return nil, fmt.Errorf("model: positions %d..%d exceed the context of %d tokens", q.Start, q.Start+len(q.Tokens)-1, s.ctx)
		}
		total += len(q.Tokens)
		segs[i] = segment{cache: q.Cache, tokens: q.Tokens, start: q.Start, firstLogit: len(q.Tokens)}
		if q.Logits {
			segs[i].firstLogit = len(q.Tokens) - 1
		}
	}
	if total > s.maxBatch {
		return nil, fmt.Errorf("model: %d tokens exceed the batch size of %d", total, s.maxBatch)
	}
	if err := s.forwardBatch(segs); err != nil {
		return nil, err
	}
	out := make([][]float32, len(seqs))
	V, r := s.m.Vocab, 0
	for i, q := range seqs {
		if q.Logits {
			out[i] = s.logits[r*V : (r+1)*V]
			r++
		}
	}
	return out, nil
}

// attnJob runs attention for (token, KV head) pairs on the pool. It lives
// in the State and is refilled per layer, so the decode loop does not
// allocate a closure per call.
type attnJob struct {
	s      *State
	segs   []segment
	layer  int
	q, att []float32
	blocks []attnBlock // the batch's query blocks; a task is (block, KV head)
}

// attnBlock is a run of consecutive batch rows of one segment that attend
// together (kv.Cache.AttendBlock); alone: the segment's only token (a
// decode step), which attends by itself (kv.Cache.Attend). The last token
// of a longer segment goes through AttendBlock too, so that a prompt
// token's attention does not depend on how the prompt was cut.
type attnBlock struct {
	row, n int
	alone  bool
}

// attnBlockTokens is how many tokens of a prompt batch attend as one block:
// each cached page is read once per block rather than once per token, and
// a block's rows (7 query heads × 16 tokens at qwen2.5's shape) keep the
// packed queries, outputs and one page's scores within the L2 cache. In
// kv/quant BenchmarkAttendBlock blocks of 16 and 32 measured alike (f16
// 1.20× and 1.24× the token-by-token path, median of 6, thread CPU time);
// 16 makes more tasks for the pool to balance.
const attnBlockTokens = 16

func (j *attnJob) Run(w, lo, hi int) {
	c := j.s.m.Config
	D, group := c.HeadDim, c.Heads/c.KVHeads
	qDim := c.Heads * D
	for x := lo; x < hi; x++ {
		b, h := j.blocks[x/c.KVHeads], x%c.KVHeads
		off := b.row*qDim + h*group*D
		cache := j.segs[j.s.owner[b.row]].cache
		if b.n == 1 && b.alone {
			cache.Attend(j.layer, h, j.q[off:off+group*D], group, j.s.pos[b.row], j.att[off:off+group*D], j.s.scratch[w])
			continue
		}
		end := off + (b.n-1)*qDim + group*D
		cache.AttendBlock(j.layer, h, j.q[off:end], qDim, group, j.s.pos[b.row:b.row+b.n], j.att[off:end], qDim, j.s.scratch[w])
	}
}

// queryBlocks cuts the batch's rows into blocks of up to attnBlockTokens
// consecutive rows of one segment.
func queryBlocks(dst []attnBlock, segs []segment) []attnBlock {
	dst = dst[:0]
	row := 0
	for _, sg := range segs {
		for i := 0; i < len(sg.tokens); i += attnBlockTokens {
			dst = append(dst, attnBlock{row: row + i, n: min(attnBlockTokens, len(sg.tokens)-i), alone: len(sg.tokens) == 1})
		}
		row += len(sg.tokens)
	}
	return dst
}

// segment is the part of a batch that belongs to one sequence; logits are
// computed for its tokens from index firstLogit on.
type segment struct {
	cache      *kv.Cache
	tokens     []int
	start      int
	positions  []int32 // explicit positions (ForwardAt); nil: start, start+1, ...
	firstLogit int
}

// forwardBatch is one pass over the weights for up to maxBatch tokens of
// one or more sequences. Logits rows land in s.logits in segment order.
func (s *State) forwardBatch(segs []segment) error {
	m, c := s.m, s.m.Config
	E := c.Embd
	n := 0
	for _, sg := range segs {
		n += len(sg.tokens)
	}
	pos, owner := s.pos[:n], s.owner[:n]
	tokens := s.tokens[:0]
	for si, sg := range segs {
		for i, t := range sg.tokens {
			if sg.positions != nil {
				pos[len(tokens)] = sg.positions[i]
			} else {
				pos[len(tokens)] = int32(sg.start + i)
			}
			owner[len(tokens)] = int32(si)
			tokens = append(tokens, t)
		}
	}
	off := 0
	for _, sg := range segs {
		if err := sg.cache.Begin(pos[off : off+len(sg.tokens)]); err != nil {
			return fmt.Errorf("model: %w", err)
		}
		off += len(sg.tokens)
	}
	x, xn := s.x[:n*E], s.xn[:n*E]
	if s.first > 0 {
		copy(x, s.hidden[s.done*E:(s.done+n)*E])
	} else {
		for i, t := range tokens {
			if err := m.TokenEmbd.Row(t, x[i*E:(i+1)*E]); err != nil {
				return fmt.Errorf("model: embedding of token %d: %w", t, err)
			}
		}
	}
	att, attO := s.att[:n*c.Heads*max(c.ValueHeadDim, c.HeadDim)], s.attO[:n*E]
	if c.IsMLA() {
		att = att[:n*c.Heads*c.ValueHeadDim]
	}
	gate, up := s.gate[:n*c.FFN], s.up[:n*c.FFN]

	for li := s.first; li < len(m.Layers); li++ {
		if s.layers > 0 && li >= s.layers {
			break
		}
		l := &m.Layers[li]
		for i := 0; i < n; i++ {
			kernel.RMSNorm(xn[i*E:(i+1)*E], x[i*E:(i+1)*E], l.AttnNorm, c.RMSEps)
		}
		if c.IsMLA() {
			s.latentAttention(li, segs, n)
		} else {
			s.groupedAttention(li, segs, n)
		}
		l.O.MatMul(s.pool, attO, att, n, s.act)
		kernel.Add(x, attO)

		for i := 0; i < n; i++ {
			kernel.RMSNorm(xn[i*E:(i+1)*E], x[i*E:(i+1)*E], l.FFNNorm, c.RMSEps)
		}
		l.Gate.MatMul(s.pool, gate, xn, n, s.act)
		l.Up.MatMul(s.pool, up, xn, n, s.act)
		kernel.SwiGLU(gate, up)
		l.Down.MatMul(s.pool, attO, gate, n, s.act)
		kernel.Add(x, attO)
	}

	rows := 0
	off = 0
	for _, sg := range segs {
		sg.cache.End()
		for i := sg.firstLogit; i < len(sg.tokens); i++ {
			kernel.RMSNorm(xn[rows*E:(rows+1)*E], x[(off+i)*E:(off+i+1)*E], m.OutputNorm, c.RMSEps)
			rows++
		}
		off += len(sg.tokens)
	}
	if rows == 0 {
		return nil
	}
	m.Output.MatMul(s.pool, s.logits[:rows*c.Vocab], xn[:rows*E], rows, s.act)
	return nil
}

// groupedAttention computes the attention output of layer li for the n
// rows of the batch into s.att ([n][Heads*HeadDim]) from the normalized
// inputs s.xn, storing each row's keys and values in its segment's cache.
func (s *State) groupedAttention(li int, segs []segment, n int) {
	m, c := s.m, s.m.Config
	l := &m.Layers[li]
	D := c.HeadDim
	qDim, kvDim := c.Heads*D, c.KVHeads*D
	xn, pos := s.xn[:n*c.Embd], s.pos[:n]
	q, k, v := s.q[:n*qDim], s.k[:n*kvDim], s.v[:n*kvDim]
	att := s.att[:n*qDim]
	l.Q.MatMul(s.pool, q, xn, n, s.act)
	l.K.MatMul(s.pool, k, xn, n, s.act)
	l.V.MatMul(s.pool, v, xn, n, s.act)
	if c.QKVBias {
		for i := 0; i < n; i++ {
			kernel.Add(q[i*qDim:(i+1)*qDim], l.QBias)
			kernel.Add(k[i*kvDim:(i+1)*kvDim], l.KBias)
			kernel.Add(v[i*kvDim:(i+1)*kvDim], l.VBias)
		}
	}
	if s.Tap != nil {
		s.Tap(li, n, q, k, v)
	}
	for i := 0; i < n; i++ {
		qi, ki := q[i*qDim:(i+1)*qDim], k[i*kvDim:(i+1)*kvDim]
		if c.QKNorm {
			for h := 0; h < c.Heads; h++ {
				kernel.RMSNorm(qi[h*D:(h+1)*D], qi[h*D:(h+1)*D], l.QNorm, c.RMSEps)
			}
			for h := 0; h < c.KVHeads; h++ {
				kernel.RMSNorm(ki[h*D:(h+1)*D], ki[h*D:(h+1)*D], l.KNorm, c.RMSEps)
			}
		}
		m.rope.Apply(qi, D, float64(pos[i]))
		m.rope.Apply(ki, D, float64(pos[i]))
	}
	off := 0
	for _, sg := range segs {
		nt := len(sg.tokens)
		sg.cache.Store(li, k[off*kvDim:(off+nt)*kvDim], v[off*kvDim:(off+nt)*kvDim])
		off += nt
	}
	// One task per (query block, KV head): the query heads that share a
	// KV head, over a block of a segment's tokens, read each cached page
	// once (a decode step's block is its one token).
	blocks := queryBlocks(s.attn.blocks, segs)
	s.attn = attnJob{s: s, segs: segs, layer: li, q: q, att: att, blocks: blocks}
	s.pool.Run(len(blocks)*c.KVHeads, 1, &s.attn)
}
