package model

import (
	"sort"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kv"
)

// Description is what a GGUF file says about its model, read from the
// metadata and the tensor table without loading weights (kvgo info
// prints it).
type Description struct {
	Version uint32 // GGUF version
	Arch    string // general.architecture
	Name    string // general.name, when HasName
	HasName bool
	// Config is the model's hyper-parameters, valid when ConfigErr is nil;
	// ConfigErr says why kvgo cannot run the file.
	Config    Config
	ConfigErr error
	// RopeFreqFactors: the file has rope_freqs, llama3's frequency factors.
	RopeFreqFactors bool
	// KVBytesPerToken is the F16 keys and values of one token over every
	// layer and KV head of the cache shape (Config.CacheShape), counted as
	// kv.FullF16Bytes counts them. 0 when ConfigErr is set.
	KVBytesPerToken int64
	// PositionBytesPerToken is what the cache holds per token besides
	// keys and values: a 4-byte position in every stream (layer × KV
	// head). With it, the figure matches a filled cache's Bytes up to
	// the rounding to whole pages (kvgo-tiny: 1024 + 32 bytes against
	// 1057 measured in docs/MLA.md).
	PositionBytesPerToken int64
	Params                uint64      // ParamCount
	Tensors               int         // number of tensors
	TensorTypes           []TypeCount // tensors per weight type, by type name
	FileSize              int64
	Tokenizer             string // tokenizer.ggml.model
	PreTokenizer          string // tokenizer.ggml.pre ("" when absent)
	Tokens                int    // vocabulary of the tokenizer
	ChatTemplate          bool   // tokenizer.chat_template is present
}

// TypeCount is how many tensors have one weight type.
type TypeCount struct {
	Type  string // gguf.Type's name: F32, Q8_0, Q4_K, ...
	Count int
}

// Describe reads the description of the model in f.
func Describe(f *gguf.File) Description {
	d := Description{Version: f.Version, Params: ParamCount(f), Tensors: len(f.Tensors), FileSize: int64(f.Size())}
	d.Arch, _ = f.String("general.architecture")
	if name, err := f.String("general.name"); err == nil {
		d.Name, d.HasName = name, true
	}
	d.Config, d.ConfigErr = ReadConfig(f)
	if d.ConfigErr == nil {
		shape := d.Config.CacheShape()
		d.KVBytesPerToken = kvBytesPerToken(shape)
		d.PositionBytesPerToken = 4 * int64(shape.Streams())
	}
	_, d.RopeFreqFactors = f.Tensor("rope_freqs.weight")
	types := map[string]int{}
	for _, t := range f.Tensors {
		types[t.Type.String()]++
	}
	for t, n := range types {
		d.TensorTypes = append(d.TensorTypes, TypeCount{t, n})
	}
	sort.Slice(d.TensorTypes, func(i, j int) bool { return d.TensorTypes[i].Type < d.TensorTypes[j].Type })
	d.Tokenizer, _ = f.String("tokenizer.ggml.model")
	d.PreTokenizer, _ = f.String("tokenizer.ggml.pre")
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	d.Tokens = len(toks)
	_, d.ChatTemplate = f.Lookup("tokenizer.chat_template")
	return d
}

// kvBytesPerToken is the F16 key and value bytes one token adds to a cache
// of shape s: every layer's key and value widths (kv.Shape.Dims), two
// bytes each, per KV head; the key alone when the value is stored in it
// (kv.Shape.ValueInKey), as kv.FullF16Bytes counts them.
func kvBytesPerToken(s kv.Shape) int64 {
	var b int64
	for l := 0; l < s.Layers; l++ {
		d := s.Dims(l)
		w := d.Key + d.Value
		if s.ValueInKey {
			w = d.Key
		}
		b += int64(s.KVHeads) * int64(w) * 2
	}
	return b
}
