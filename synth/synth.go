// Package synth writes random-weight GGUF models with the shapes of real
// models. Speed does not depend on weight values, so these files let kvgo
// and llama.cpp be measured on the same bytes without downloading anything.
package synth

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// Shape is the architecture of a real model.
type Shape struct {
	Name       string
	Arch       string
	Layers     int
	Embd       int
	Heads      int
	KVHeads    int
	FFN        int
	Vocab      int
	Context    int
	RopeBase   float64
	RMSEps     float32
	Tied       bool
	QKVBias    bool
	Llama3Rope bool // write rope_freqs like Llama 3.1/3.2
}

// Shapes are the model shapes `kvgo gen` knows.
var Shapes = map[string]Shape{
	"tiny":           {Name: "tiny", Arch: "llama", Layers: 2, Embd: 256, Heads: 4, KVHeads: 2, FFN: 512, Vocab: 1024, Context: 4096, RopeBase: 10000, RMSEps: 1e-5},
	"smollm2-135m":   {Name: "smollm2-135m", Arch: "llama", Layers: 30, Embd: 576, Heads: 9, KVHeads: 3, FFN: 1536, Vocab: 49152, Context: 8192, RopeBase: 100000, RMSEps: 1e-5, Tied: true},
	"qwen2.5-0.5b":   {Name: "qwen2.5-0.5b", Arch: "qwen2", Layers: 24, Embd: 896, Heads: 14, KVHeads: 2, FFN: 4864, Vocab: 151936, Context: 32768, RopeBase: 1e6, RMSEps: 1e-6, Tied: true, QKVBias: true},
	"llama-3.2-1b":   {Name: "llama-3.2-1b", Arch: "llama", Layers: 16, Embd: 2048, Heads: 32, KVHeads: 8, FFN: 8192, Vocab: 128256, Context: 131072, RopeBase: 500000, RMSEps: 1e-5, Tied: true, Llama3Rope: true},
	"qwen3-0.6b-ish": {Name: "qwen3-0.6b-ish", Arch: "qwen3", Layers: 28, Embd: 1024, Heads: 16, KVHeads: 8, FFN: 3072, Vocab: 151936, Context: 40960, RopeBase: 1e6, RMSEps: 1e-6, Tied: true},
}

// ShapeNames lists the known shapes, sorted.
func ShapeNames() []string {
	var s []string
	for n := range Shapes {
		s = append(s, n)
	}
	sort.Strings(s)
	return s
}

// Lookup finds a shape by name.
func Lookup(name string) (Shape, error) {
	s, ok := Shapes[name]
	if !ok {
		return s, fmt.Errorf("unknown shape %q (known: %s)", name, strings.Join(ShapeNames(), ", "))
	}
	return s, nil
}

// WeightTypes are the types Generate accepts for the weight matrices.
var WeightTypes = []gguf.TensorType{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
}

// fallback is the type llama-quantize uses when a K-quant cannot hold a row
// whose length is not a multiple of 256 (llama.cpp picks IQ4_NL for Q2_K
// and Q3_K, which kvgo does not implement; Q4_0 stands in for it).
func fallback(t gguf.TensorType, cols int) gguf.TensorType {
	if cols%t.BlockElems() == 0 {
		return t
	}
	switch t {
	case gguf.TypeQ2_K, gguf.TypeQ3_K:
		return gguf.TypeQ4_0
	case gguf.TypeQ4_K:
		return gguf.TypeQ5_0
	case gguf.TypeQ5_K:
		return gguf.TypeQ5_1
	case gguf.TypeQ6_K:
		return gguf.TypeQ8_0
	}
	return gguf.TypeF16
}

// Generate writes a model of shape s with weights of type typ (norms and
// biases stay F32) and a synthetic SentencePiece-style vocabulary.
func Generate(w io.Writer, s Shape, typ gguf.TensorType, seed uint64) error {
	ok := false
	for _, t := range WeightTypes {
		ok = ok || t == typ
	}
	if !ok {
		return fmt.Errorf("synth: weight type %s is not supported", typ)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6b76676f))
	var b gguf.Builder
	a := s.Arch
	b.Set("general.architecture", a)
	b.Set("general.name", "kvgo-gen "+s.Name+" (random weights)")
	b.Set("general.file_type", uint32(0))
	b.Set(a+".context_length", uint32(s.Context))
	b.Set(a+".embedding_length", uint32(s.Embd))
	b.Set(a+".block_count", uint32(s.Layers))
	b.Set(a+".feed_forward_length", uint32(s.FFN))
	b.Set(a+".attention.head_count", uint32(s.Heads))
	b.Set(a+".attention.head_count_kv", uint32(s.KVHeads))
	b.Set(a+".attention.layer_norm_rms_epsilon", s.RMSEps)
	b.Set(a+".rope.freq_base", float32(s.RopeBase))
	headDim := s.Embd / s.Heads
	if s.Arch == "qwen3" {
		headDim = 128
		b.Set(a+".attention.key_length", uint32(headDim))
		b.Set(a+".attention.value_length", uint32(headDim))
	}
	b.Set(a+".rope.dimension_count", uint32(headDim))
	addVocab(&b, s.Vocab)

	matrix := func(name string, rows, cols int) error {
		t := fallback(typ, cols)
		x := make([]float32, rows*cols)
		std := 1 / math.Sqrt(float64(cols))
		for i := range x {
			x[i] = float32(rng.NormFloat64() * std)
		}
		n, err := t.RowBytes(cols)
		if err != nil {
			return err
		}
		data := make([]byte, n*rows)
		if err := quant.Quantize(t, x, data); err != nil {
			return fmt.Errorf("synth: %s: %w", name, err)
		}
		b.AddTensor(name, t, []uint64{uint64(cols), uint64(rows)}, data)
		return nil
	}
	vector := func(name string, n int, base, noise float64) {
		data := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			v := math.Float32bits(float32(base + noise*rng.NormFloat64()))
			data[4*i], data[4*i+1], data[4*i+2], data[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
		b.AddTensor(name, gguf.TypeF32, []uint64{uint64(n)}, data)
	}
	qDim, kvDim := s.Heads*headDim, s.KVHeads*headDim
	if err := matrix("token_embd.weight", s.Vocab, s.Embd); err != nil {
		return err
	}
	vector("output_norm.weight", s.Embd, 1, 0.05)
	if !s.Tied {
		if err := matrix("output.weight", s.Vocab, s.Embd); err != nil {
			return err
		}
	}
	if s.Llama3Rope {
		vector("rope_freqs.weight", headDim/2, 1, 0) // factors of 1: the shape and cost, not the values
	}
	for l := 0; l < s.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		vector(p+"attn_norm.weight", s.Embd, 1, 0.05)
		for _, m := range []struct {
			name       string
			rows, cols int
		}{
			{"attn_q.weight", qDim, s.Embd}, {"attn_k.weight", kvDim, s.Embd}, {"attn_v.weight", kvDim, s.Embd},
			{"attn_output.weight", s.Embd, qDim},
			{"ffn_gate.weight", s.FFN, s.Embd}, {"ffn_up.weight", s.FFN, s.Embd}, {"ffn_down.weight", s.Embd, s.FFN},
		} {
			if err := matrix(p+m.name, m.rows, m.cols); err != nil {
				return err
			}
		}
		if s.QKVBias {
			vector(p+"attn_q.bias", qDim, 0, 0.02)
			vector(p+"attn_k.bias", kvDim, 0, 0.02)
			vector(p+"attn_v.bias", kvDim, 0, 0.02)
		}
		if s.Arch == "qwen3" {
			vector(p+"attn_q_norm.weight", headDim, 1, 0.05)
			vector(p+"attn_k_norm.weight", headDim, 1, 0.05)
		}
		vector(p+"ffn_norm.weight", s.Embd, 1, 0.05)
	}
	_, err := b.WriteTo(w)
	return err
}

// addVocab writes a SentencePiece-style vocabulary of n tokens: the three
// specials, 256 byte tokens, the space marker and printable ASCII, then
// filler pieces. Text tokenizes through it (mostly character by character),
// which is all a speed measurement needs.
func addVocab(b *gguf.Builder, n int) {
	toks := []string{"<unk>", "<s>", "</s>"}
	types := []int32{2, 3, 3}
	for i := 0; i < 256; i++ {
		toks = append(toks, fmt.Sprintf("<0x%02X>", i))
		types = append(types, 6)
	}
	toks = append(toks, "▁")
	types = append(types, 1)
	for c := '!'; c <= '~'; c++ {
		toks = append(toks, string(c))
		types = append(types, 1)
	}
	for i := 0; len(toks) < n; i++ {
		toks = append(toks, fmt.Sprintf("▁w%d", i))
		types = append(types, 1)
	}
	toks, types = toks[:n], types[:n]
	scores := make([]float32, n)
	for i := range scores {
		if i > 258 {
			scores[i] = -float32(i - 259)
		}
	}
	b.Set("tokenizer.ggml.model", "llama")
	b.Set("tokenizer.ggml.tokens", toks)
	b.Set("tokenizer.ggml.scores", scores)
	b.Set("tokenizer.ggml.token_type", types)
	b.Set("tokenizer.ggml.bos_token_id", uint32(1))
	b.Set("tokenizer.ggml.eos_token_id", uint32(2))
	b.Set("tokenizer.ggml.unknown_token_id", uint32(0))
}
