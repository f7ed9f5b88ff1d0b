package model

import (
	"errors"
	"fmt"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
)

// Layer holds the weights of one transformer block.
type Layer struct {
	AttnNorm       []float32
	Q, K, V, O     *kernel.Matrix
	QBias, KBias   []float32 // qwen2
	VBias          []float32
	QNorm, KNorm   []float32 // qwen3, HeadDim each
	FFNNorm        []float32
	Gate, Up, Down *kernel.Matrix

	// Multi-head Latent Attention (deepseek2, mla.go): Q or QA/QANorm/QB
	// give the query, KVA the latent and rope key, and attn_kv_b is kept
	// as UKT (per head W_UKᵀ: r rows of NopeDim) and UV (per head W_UV:
	// ValueHeadDim rows of r), F32 copies laid out for absorption.
	QA, QB  *kernel.Matrix
	QANorm  []float32
	KVA     *kernel.Matrix
	KVABias []float32
	KVANorm []float32
	UKT, UV []float32
}

// Model is a loaded model: its config and weights, which refer to the
// GGUF file's memory (the File must stay open while the Model is used).
type Model struct {
	Config
	TokenEmbd  *kernel.Matrix
	Layers     []Layer
	OutputNorm []float32
	Output     *kernel.Matrix // token_embd when the output is tied
	TiedOutput bool
	rope       *kernel.Rope
}

// Load builds a Model over the tensors of f without copying weights.
func Load(f *gguf.File) (*Model, error) {
	cfg, err := ReadConfig(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg}
	w := weightLoader{f: f}
	m.TokenEmbd = w.matrix("token_embd.weight", cfg.Vocab, cfg.Embd)
	m.OutputNorm = w.vector("output_norm.weight", cfg.Embd)
	if _, ok := f.Tensor("output.weight"); ok {
		m.Output = w.matrix("output.weight", cfg.Vocab, cfg.Embd)
	} else {
		m.Output, m.TiedOutput = m.TokenEmbd, true
	}
	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	m.Layers = make([]Layer, cfg.Layers)
	for i := range m.Layers {
		l := &m.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		l.AttnNorm = w.vector(p+"attn_norm.weight", cfg.Embd)
		switch {
		case cfg.IsMLA():
			w.loadMLA(l, p, cfg)
		default:
			l.Q = w.matrix(p+"attn_q.weight", qDim, cfg.Embd)
			l.K = w.matrix(p+"attn_k.weight", kvDim, cfg.Embd)
			l.V = w.matrix(p+"attn_v.weight", kvDim, cfg.Embd)
			l.O = w.matrix(p+"attn_output.weight", cfg.Embd, qDim)
		}
		if cfg.QKVBias {
			l.QBias = w.vector(p+"attn_q.bias", qDim)
			l.KBias = w.vector(p+"attn_k.bias", kvDim)
			l.VBias = w.vector(p+"attn_v.bias", kvDim)
		}
		if cfg.QKNorm {
			l.QNorm = w.vector(p+"attn_q_norm.weight", cfg.HeadDim)
			l.KNorm = w.vector(p+"attn_k_norm.weight", cfg.HeadDim)
		}
		l.FFNNorm = w.vector(p+"ffn_norm.weight", cfg.Embd)
		l.Gate = w.matrix(p+"ffn_gate.weight", cfg.FFN, cfg.Embd)
		l.Up = w.matrix(p+"ffn_up.weight", cfg.FFN, cfg.Embd)
		l.Down = w.matrix(p+"ffn_down.weight", cfg.Embd, cfg.FFN)
	}
	var freqFactors []float32
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		freqFactors = w.vector("rope_freqs.weight", cfg.RopeDims/2)
	}
	if len(w.errs) > 0 {
		return nil, fmt.Errorf("model: %w", errors.Join(w.errs...))
	}
	m.rope = kernel.NewRope(cfg.RopeMode, cfg.RopeDims, cfg.RopeBase, freqFactors, cfg.RopeFactor)
	return m, nil
}

// Rotary is the model's RoPE as the KV cache needs it to move stored keys
// to other positions (kv.Config.RoPE): rotations compose, so turning a key
// encoded at p by delta gives the key encoded at p+delta, with the model's
// frequency scaling (llama3's rope_freqs, linear scaling) included.
// An MLA model's keys turn only in their rope part, after the latent.
func (m *Model) Rotary() kv.Rotary {
	if m.IsMLA() {
		return rotary{m.rope, m.RopeDims, m.KVLoraRank}
	}
	return rotary{m.rope, m.HeadDim, 0}
}

type rotary struct {
	rope    *kernel.Rope
	headDim int
	from    int // the key's first rotary value
}

func (r rotary) Rotate(_ int, key []float32, delta int32) {
	r.rope.Apply(key[r.from:], r.headDim, float64(delta))
}

// RotateKeys turns len(keys)/width keys by delta (kv.KeysRotary): a llama
// key is one head, so Rope.Apply turns them all as the heads of one row,
// with each pair's sine and cosine computed once; an MLA key's rope part
// follows its latent, so those turn one by one.
func (r rotary) RotateKeys(layer int, keys []float32, width int, delta int32) {
	if r.from == 0 && width == r.headDim {
		r.rope.Apply(keys, r.headDim, float64(delta))
		return
	}
	for i := 0; i+width <= len(keys); i += width {
		r.Rotate(layer, keys[i:i+width], delta)
	}
}

// CacheShape is the geometry of the model's KV cache.
func (c Config) CacheShape() kv.Shape {
	if c.IsMLA() {
		return c.latentShape()
	}
	return kv.Shape{Layers: c.Layers, KVHeads: c.KVHeads, HeadDim: c.HeadDim}
}

// weightLoader collects every problem with the file's tensors so one error
// names them all.
type weightLoader struct {
	f    *gguf.File
	errs []error
}

func (w *weightLoader) tensor(name string, shape ...uint64) *gguf.TensorInfo {
	t, ok := w.f.Tensor(name)
	if !ok {
		w.errs = append(w.errs, fmt.Errorf("tensor %s is missing", name))
		return nil
	}
	want := shape
	got := t.Shape
	for len(got) > len(want) && got[len(got)-1] == 1 {
		got = got[:len(got)-1]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		w.errs = append(w.errs, fmt.Errorf("tensor %s has shape %v, want %v", name, t.Shape, want))
		return nil
	}
	return t
}

func (w *weightLoader) matrix(name string, rows, cols int) *kernel.Matrix {
	t := w.tensor(name, uint64(cols), uint64(rows))
	if t == nil {
		return nil
	}
	m, err := kernel.NewMatrix(t.Type, rows, cols, w.f.TensorData(t))
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("tensor %s: %w", name, err))
	}
	return m
}

// vector returns a 1-D F32 tensor (norm weights and biases are F32 in every
// GGUF llama.cpp writes).
func (w *weightLoader) vector(name string, n int) []float32 {
	t := w.tensor(name, uint64(n))
	if t == nil {
		return nil
	}
	if t.Type != gguf.TypeF32 {
		w.errs = append(w.errs, fmt.Errorf("tensor %s is %s, want F32", name, t.Type))
		return nil
	}
	return kernel.Float32s(w.f.TensorData(t))
}
