// Package model runs the forward pass of Llama-family architectures
// (llama, mistral, qwen2, qwen3) and of Multi-head Latent Attention in
// llama.cpp's deepseek2 layout (dense layers; mla.go) from GGUF weights.
// Attention reads and writes keys and values only through a kv.Cache.
package model

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kernel"
)

// Config holds the hyper-parameters of a model as read from GGUF metadata.
type Config struct {
	Arch       string
	Name       string
	Layers     int
	Embd       int
	Heads      int
	KVHeads    int
	HeadDim    int // key/value head size
	FFN        int
	Vocab      int
	ContextLen int // the context length the model was trained for
	RMSEps     float32

	RopeMode    kernel.RopeMode
	RopeDims    int
	RopeBase    float64
	RopeScaling string  // "", "none", "linear"; llama3 scaling comes as rope_freqs
	RopeFactor  float64 // linear scaling factor

	QKVBias bool // qwen2: biases on the Q, K and V projections
	QKNorm  bool // qwen3: RMSNorm on each query and key head before RoPE

	// Multi-head Latent Attention (architecture deepseek2, see mla.go);
	// zero for the GQA families. HeadDim is then the query and key head
	// size (key_length: NopeDim position-free dimensions, then RopeDims
	// rotary ones) and KVHeads is 1: the cache holds one latent head that
	// every query head reads.
	KVLoraRank   int  // r: width of the cached latent c (attention.kv_lora_rank)
	QLoraRank    int  // rank of the query's attn_q_a/attn_q_b path; 0: one attn_q
	NopeDim      int  // per-head key dimensions without position
	ValueHeadDim int  // per-head value size (attention.value_length)
	KVANorm      bool // RMSNorm on the latent (attn_kv_a_norm)
	MLABias      bool // biases on the query and kv_a projections (kvgo.mla.bias)
}

// IsMLA reports whether attention is Multi-head Latent Attention.
func (c Config) IsMLA() bool { return c.KVLoraRank > 0 }

// archTraits are the named differences between the supported families.
type archTraits struct {
	ropeMode kernel.RopeMode
	qkvBias  bool
	qkNorm   bool
}

var architectures = map[string]archTraits{
	"llama": {ropeMode: kernel.RopeNorm},
	"qwen2": {ropeMode: kernel.RopeNeox, qkvBias: true},
	"qwen3": {ropeMode: kernel.RopeNeox, qkNorm: true},
	// deepseek2 rotates adjacent pairs of its rope dimensions, as
	// llama.cpp does for it (LLAMA_ROPE_TYPE_NORM).
	"deepseek2": {ropeMode: kernel.RopeNorm},
}

// SupportedArchitectures lists the general.architecture values kvgo runs.
func SupportedArchitectures() []string {
	var s []string
	for a := range architectures {
		s = append(s, a)
	}
	sort.Strings(s)
	return s
}

// ReadConfig reads and validates the hyper-parameters of f.
func ReadConfig(f *gguf.File) (Config, error) {
	var c Config
	arch, err := f.String("general.architecture")
	if err != nil {
		return c, fmt.Errorf("model: %w", err)
	}
	tr, ok := architectures[arch]
	if !ok {
		return c, fmt.Errorf("model: unsupported architecture %s (supported: %s)", gguf.Quote(arch), strings.Join(SupportedArchitectures(), ", "))
	}
	c.Arch = arch
	c.Name, _ = f.String("general.name")
	c.RopeMode, c.QKVBias, c.QKNorm = tr.ropeMode, tr.qkvBias, tr.qkNorm

	var errs []error
	req := func(key string) int {
		v, err := f.Uint(arch + "." + key)
		if err != nil {
			errs = append(errs, err)
			return 0
		}
		if v == 0 || v > 1<<24 {
			errs = append(errs, fmt.Errorf("%s.%s = %d is out of range", arch, key, v))
			return 0
		}
		return int(v)
	}
	opt := func(key string, def int) int {
		if !f.Has(arch + "." + key) {
			return def
		}
		return req(key)
	}
	c.Layers = req("block_count")
	c.Embd = req("embedding_length")
	c.FFN = req("feed_forward_length")
	c.Heads = req("attention.head_count")
	c.KVHeads = opt("attention.head_count_kv", c.Heads)
	c.ContextLen = req("context_length")
	if len(errs) > 0 {
		return c, fmt.Errorf("model: %w", errors.Join(errs...))
	}
	if c.Embd%c.Heads != 0 && !f.Has(arch+".attention.key_length") {
		return c, fmt.Errorf("model: embedding length %d is not divisible by %d heads", c.Embd, c.Heads)
	}
	c.HeadDim = opt("attention.key_length", c.Embd/c.Heads)
	c.RopeDims = opt("rope.dimension_count", c.HeadDim)
	if c.RopeDims > c.HeadDim || c.RopeDims%2 != 0 {
		return c, fmt.Errorf("model: rope dimension count %d does not fit head size %d", c.RopeDims, c.HeadDim)
	}
	if arch == "deepseek2" {
		if err := readMLAConfig(f, &c); err != nil {
			return c, err
		}
	} else if vd := opt("attention.value_length", c.HeadDim); vd != c.HeadDim {
		return c, fmt.Errorf("model: value head size %d differs from key head size %d (not supported)", vd, c.HeadDim)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("model: %w", errors.Join(errs...))
	}
	if c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("model: %d query heads are not a multiple of %d KV heads", c.Heads, c.KVHeads)
	}
	eps, err := f.Float(arch + ".attention.layer_norm_rms_epsilon")
	if err != nil {
		return c, fmt.Errorf("model: %w", err)
	}
	if !(eps >= 0 && eps < 1) { // NaN too: it made every activation NaN
		return c, fmt.Errorf("model: attention.layer_norm_rms_epsilon %v is outside [0, 1)", eps)
	}
	c.RMSEps = float32(eps)
	c.RopeBase = 10000
	if f.Has(arch + ".rope.freq_base") {
		if c.RopeBase, err = f.Float(arch + ".rope.freq_base"); err != nil || !(c.RopeBase > 1) || math.IsInf(c.RopeBase, 0) {
			return c, fmt.Errorf("model: rope.freq_base: %v %w", c.RopeBase, err)
		}
	}
	c.RopeFactor = 1
	if s, err := f.String(arch + ".rope.scaling.type"); err == nil {
		c.RopeScaling = s
		switch s {
		case "none", "":
		case "linear":
			if c.RopeFactor, err = f.Float(arch + ".rope.scaling.factor"); err != nil || c.RopeFactor <= 0 {
				return c, fmt.Errorf("model: linear rope scaling needs a positive rope.scaling.factor: %v", err)
			}
		default:
			return c, fmt.Errorf("model: rope scaling %s is not supported (supported: none, linear, llama3 via rope_freqs)", gguf.Quote(s))
		}
	}
	if emb, ok := f.Tensor("token_embd.weight"); ok && len(emb.Shape) == 2 {
		c.Vocab = int(emb.Shape[1])
	} else {
		return c, errors.New("model: tensor token_embd.weight is missing or not 2-D")
	}
	return c, nil
}

// ParamCount is the number of weights in the model's tensors.
func ParamCount(f *gguf.File) uint64 {
	var n uint64
	for i := range f.Tensors {
		n += f.Tensors[i].Elements()
	}
	return n
}
