package model

import (
	"fmt"
	"math"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// Multi-head Latent Attention (DeepSeek-V2, arXiv:2405.04434, section
// 2.1), in the GGUF layout of llama.cpp's deepseek2 architecture, dense
// layers only. Per layer and token:
//
//	q        = attn_q·h (or attn_q_b·RMSNorm(attn_q_a·h)), per head [q_nope (NopeDim); q_rope (RopeDims)]
//	[c; k_R] = attn_kv_a_mqa·h                   c: the latent (r values), k_R: one rope key shared by all heads
//	c        = RMSNorm(c)·attn_kv_a_norm         when the file has the norm
//	per head [k_nope; v] = attn_kv_b[h]·c        W_UK[h] (NopeDim×r) above W_UV[h] (ValueHeadDim×r)
//	score    = (q_nope·k_nope + RoPE(q_rope)·RoPE(k_R)) / sqrt(NopeDim+RopeDims)
//
// kvgo runs it absorbed (section 2.1.3 of the paper; TransMLA,
// arXiv:2502.07864, serves its converted models the same way): the cache
// holds per token only the key [c; RoPE(k_R)] (r+d_R values) and uses c,
// its first r values, as the value (kv.Shape.ValueInKey), in one KV head
// that every query head reads. A query head attends with
// [W_UK[h]ᵀ·q_nope; RoPE(q_rope)], whose dot product with [c; RoPE(k_R)] is
// the score above, and W_UV[h] turns the attention-weighted latent into
// the head's value. Nothing about the cache is special: codecs, evictors,
// selectors, forks and shifts see an ordinary one-head cache whose Rotary
// turns only the rope part of the key.
//
// Prefill runs absorbed too, through the same cache: measured
// (BenchmarkLatentPrefillForms, docs/MLA.md), the absorbed attention of a
// prompt is faster than decompressing every token's per-head k_nope and v
// and attending per head, although it does more arithmetic when r exceeds
// the head size, because one pass over the latent pages serves all query
// heads at once; and only the absorbed form keeps the prompt inside the
// cache, where codecs and evictors see it.
//
// What the deepseek2 layout lacks, kvgo reads from its own keys:
//
//	kvgo.mla.bias (bool, default false): the query projection (attn_q.bias or
//	    attn_q_b.bias) and attn_kv_a_mqa have biases (Qwen2 sources);
//	kvgo.mla.kv_a_norm (bool, default true): false means the latent is not
//	    normalized and the file has no attn_kv_a_norm (TransMLA's default);
//	rope_freqs.weight (d_R/2 values, as for Llama 3): per-pair frequency
//	    divisors when the rope pairs do not follow base^(-2i/d_R).
//
// Files written by `kvgo convert --mla` also carry informational keys that
// the runtime does not read (kvgo.mla.source_*; see package convert/mla).

// Metadata keys kvgo adds to the deepseek2 layout.
const (
	KeyMLABias    = "kvgo.mla.bias"
	KeyMLAKVANorm = "kvgo.mla.kv_a_norm"
)

// readMLAConfig reads the deepseek2 keys into c (the generic ones are read).
func readMLAConfig(f *gguf.File, c *Config) error {
	a := c.Arch + "."
	get := func(key string, def int) (int, error) {
		if !f.Has(a + key) {
			if def < 0 {
				return 0, fmt.Errorf("model: %s%s is missing", a, key)
			}
			return def, nil
		}
		v, err := f.Uint(a + key)
		if err != nil {
			return 0, fmt.Errorf("model: %w", err)
		}
		if v > 1<<24 {
			return 0, fmt.Errorf("model: %s%s = %d is out of range", a, key, v)
		}
		return int(v), nil
	}
	var err error
	if c.KVLoraRank, err = get("attention.kv_lora_rank", -1); err != nil {
		return err
	}
	if c.KVLoraRank == 0 {
		return fmt.Errorf("model: %sattention.kv_lora_rank is 0", a)
	}
	if c.QLoraRank, err = get("attention.q_lora_rank", 0); err != nil {
		return err
	}
	if c.ValueHeadDim, err = get("attention.value_length", c.HeadDim); err != nil {
		return err
	}
	if c.ValueHeadDim == 0 {
		return fmt.Errorf("model: %sattention.value_length is 0", a)
	}
	if c.RopeDims == 0 {
		return fmt.Errorf("model: %srope.dimension_count is 0: MLA needs a rope key", a)
	}
	c.NopeDim = c.HeadDim - c.RopeDims
	// MoE layers (DeepSeek-V2's experts) are not supported: every layer
	// must be one of the leading dense blocks.
	experts, err := get("expert_count", 0)
	if err != nil {
		return err
	}
	dense, err := get("leading_dense_block_count", c.Layers)
	if err != nil {
		return err
	}
	if experts > 0 && dense < c.Layers {
		return fmt.Errorf("model: deepseek2 with %d mixture-of-experts layers is not supported (dense layers only; leading_dense_block_count %d of %d)", c.Layers-dense, dense, c.Layers)
	}
	c.KVHeads = 1
	c.KVANorm = true
	if f.Has(KeyMLAKVANorm) {
		if c.KVANorm, err = f.Bool(KeyMLAKVANorm); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	}
	if f.Has(KeyMLABias) {
		if c.MLABias, err = f.Bool(KeyMLABias); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	}
	return nil
}

// loadMLA reads layer l's attention weights of the deepseek2 layout, and
// keeps attn_kv_b as per-head F32 copies laid out for absorption: W_UK[h]
// transposed (r rows of NopeDim) and W_UV[h] (ValueHeadDim rows of r).
func (w *weightLoader) loadMLA(l *Layer, p string, c Config) {
	r, dR, H := c.KVLoraRank, c.RopeDims, c.Heads
	qDim := H * c.HeadDim
	if c.QLoraRank > 0 {
		l.QA = w.matrix(p+"attn_q_a.weight", c.QLoraRank, c.Embd)
		l.QANorm = w.vector(p+"attn_q_a_norm.weight", c.QLoraRank)
		l.QB = w.matrix(p+"attn_q_b.weight", qDim, c.QLoraRank)
		if c.MLABias {
			l.QBias = w.vector(p+"attn_q_b.bias", qDim)
		}
	} else {
		l.Q = w.matrix(p+"attn_q.weight", qDim, c.Embd)
		if c.MLABias {
			l.QBias = w.vector(p+"attn_q.bias", qDim)
		}
	}
	l.KVA = w.matrix(p+"attn_kv_a_mqa.weight", r+dR, c.Embd)
	if c.MLABias {
		l.KVABias = w.vector(p+"attn_kv_a_mqa.bias", r+dR)
	}
	if c.KVANorm {
		l.KVANorm = w.vector(p+"attn_kv_a_norm.weight", r)
	}
	dn, dv := c.NopeDim, c.ValueHeadDim
	kvb := w.matrix(p+"attn_kv_b.weight", H*(dn+dv), r)
	l.O = w.matrix(p+"attn_output.weight", c.Embd, H*dv)
	if kvb == nil {
		return
	}
	l.UKT = make([]float32, H*r*dn)
	l.UV = make([]float32, H*dv*r)
	row := make([]float32, r)
	for h := 0; h < H; h++ {
		for i := 0; i < dn+dv; i++ {
			if err := kvb.Row(h*(dn+dv)+i, row); err != nil {
				w.errs = append(w.errs, fmt.Errorf("tensor %sattn_kv_b.weight: %w", p, err))
				return
			}
			if i < dn {
				for j, x := range row {
					l.UKT[(h*r+j)*dn+i] = x
				}
			} else {
				copy(l.UV[(h*dv+i-dn)*r:], row)
			}
		}
	}
}

// latentShape is the cache of an MLA model: one head whose key is the
// latent and the rope key and whose value is the latent, stored once.
func (c Config) latentShape() kv.Shape {
	return kv.Shape{
		Layers: c.Layers, KVHeads: 1,
		HeadDim: c.KVLoraRank + c.RopeDims, ValueDim: c.KVLoraRank,
		// llama.cpp's deepseek2 scale, 1/sqrt(key_length): the absorbed key
		// is wider than the head's, the score is the same.
		Scale:      float32(1 / math.Sqrt(float64(c.HeadDim))),
		ValueInKey: true,
	}
}

// latentBuffers are the State's scratch for MLA layers, per batch row.
type latentBuffers struct {
	qa    []float32 // [n][QLoraRank]: the query's low-rank activations
	kva   []float32 // [n][r+d_R]: latent and rope key, the rows the cache stores
	qabs  []float32 // [n][Heads][r+d_R]: absorbed queries
	lat   []float32 // [n][Heads][r]: attention-weighted latents
	ropeQ []float32 // [Heads*d_R]: one row's query rope parts, rotated together
}

func newLatentBuffers(c Config, n int) latentBuffers {
	r, dR := c.KVLoraRank, c.RopeDims
	return latentBuffers{
		qa:    make([]float32, n*c.QLoraRank),
		kva:   make([]float32, n*(r+dR)),
		qabs:  make([]float32, n*c.Heads*(r+dR)),
		lat:   make([]float32, n*c.Heads*r),
		ropeQ: make([]float32, c.Heads*dR),
	}
}

// latentAttention computes the attention output of layer li for the n
// rows of the batch into s.att ([n][Heads*ValueHeadDim]) from the
// normalized inputs s.xn, storing each row's latent and rope key in its
// segment's cache.
func (s *State) latentAttention(li int, segs []segment, n int) {
	m, c := s.m, s.m.Config
	l := &m.Layers[li]
	E, HD, H := c.Embd, c.HeadDim, c.Heads
	r, dR, dn := c.KVLoraRank, c.RopeDims, c.NopeDim
	xn, q, b := s.xn[:n*E], s.q[:n*H*HD], &s.lb
	if l.QA != nil {
		qa := b.qa[:n*c.QLoraRank]
		l.QA.MatMul(s.pool, qa, xn, n, s.act)
		for i := 0; i < n; i++ {
			row := qa[i*c.QLoraRank : (i+1)*c.QLoraRank]
			kernel.RMSNorm(row, row, l.QANorm, c.RMSEps)
		}
		l.QB.MatMul(s.pool, q, qa, n, s.act)
	} else {
		l.Q.MatMul(s.pool, q, xn, n, s.act)
	}
	kva := b.kva[:n*(r+dR)]
	l.KVA.MatMul(s.pool, kva, xn, n, s.act)
	for i := 0; i < n; i++ {
		qi, ki := q[i*H*HD:(i+1)*H*HD], kva[i*(r+dR):(i+1)*(r+dR)]
		if l.QBias != nil {
			kernel.Add(qi, l.QBias)
		}
		if l.KVABias != nil {
			kernel.Add(ki, l.KVABias)
		}
		if l.KVANorm != nil {
			kernel.RMSNorm(ki[:r], ki[:r], l.KVANorm, c.RMSEps)
		}
		p := float64(s.pos[i])
		m.rope.Apply(ki[r:], dR, p)
		// The query's rope parts sit after each head's NopeDim values;
		// gathered, they turn with one set of angles.
		for h := 0; h < H; h++ {
			copy(b.ropeQ[h*dR:(h+1)*dR], qi[h*HD+dn:(h+1)*HD])
		}
		m.rope.Apply(b.ropeQ, dR, p)
		for h := 0; h < H; h++ {
			copy(qi[h*HD+dn:(h+1)*HD], b.ropeQ[h*dR:(h+1)*dR])
		}
	}
	off := 0
	for _, sg := range segs {
		nt := len(sg.tokens)
		sg.cache.Store(li, kva[off*(r+dR):(off+nt)*(r+dR)], nil)
		off += nt
	}
	// Tasks of (row, group of heads): a decode step splits its heads
	// among the workers (each reads the latent pages once for its heads),
	// a prompt gives every worker whole rows.
	split := min(H, max(1, (s.pool.Threads()+n-1)/n))
	for _, sg := range segs {
		// A selector chooses a stream's pages once per step from all the
		// query heads that read it (kv.Selector); splitting the heads
		// would run it on parts of the group, concurrently.
		if sg.cache.Config().Selector != nil {
			split = 1
		}
	}
	s.latent = latentJob{s: s, segs: segs, layer: li, split: split}
	s.pool.Run(n*split, 1, &s.latent)
}

// latentJob absorbs the queries of a range of (row, head group) tasks,
// attends over the latent cache and applies W_UV, all in one task so the
// decode step runs one pool job per layer.
type latentJob struct {
	s     *State
	segs  []segment
	layer int
	split int // head groups per row
}

func (j *latentJob) Run(w, lo, hi int) {
	s, c := j.s, j.s.m.Config
	l := &s.m.Layers[j.layer]
	H, HD, r, dR, dn, dv := c.Heads, c.HeadDim, c.KVLoraRank, c.RopeDims, c.NopeDim, c.ValueHeadDim
	per := (H + j.split - 1) / j.split
	for x := lo; x < hi; x++ {
		i, part := x/j.split, x%j.split
		h0, h1 := part*per, min(H, (part+1)*per)
		if h0 >= h1 {
			continue
		}
		qi := s.q[i*H*HD : (i+1)*H*HD]
		qabs := s.lb.qabs[i*H*(r+dR) : (i+1)*H*(r+dR)]
		for h := h0; h < h1; h++ {
			qn := qi[h*HD : h*HD+dn]
			dst := qabs[h*(r+dR) : (h+1)*(r+dR)]
			ukt := l.UKT[h*r*dn : (h+1)*r*dn]
			for k := 0; k < r; k++ {
				dst[k] = kernel.Dot(ukt[k*dn:(k+1)*dn], qn)
			}
			copy(dst[r:], qi[h*HD+dn:(h+1)*HD])
		}
		lat := s.lb.lat[i*H*r : (i+1)*H*r]
		j.segs[s.owner[i]].cache.Attend(j.layer, 0, qabs[h0*(r+dR):h1*(r+dR)], h1-h0, s.pos[i], lat[h0*r:h1*r], s.scratch[w])
		att := s.att[i*H*dv : (i+1)*H*dv]
		for h := h0; h < h1; h++ {
			uv, lh, o := l.UV[h*dv*r:(h+1)*dv*r], lat[h*r:(h+1)*r], att[h*dv:(h+1)*dv]
			for k := range o {
				o[k] = kernel.Dot(uv[k*r:(k+1)*r], lh)
			}
		}
	}
}
