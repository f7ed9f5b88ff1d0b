package model

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/golden"
	"github.com/kvgo/kvgo/kv"
)

func TestDescribe(t *testing.T) {
	path := golden.Path(t, "models/stories260K-q8_0.gguf")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	d := Describe(f)
	if d.ConfigErr != nil {
		t.Fatal(d.ConfigErr)
	}
	c := d.Config
	if d.Version != f.Version || d.Arch != "llama" || c.Heads != 8 || c.KVHeads != 4 || c.HeadDim != 8 || c.Layers != 5 || c.ContextLen != 2048 ||
		d.Params != ParamCount(f) || d.Tensors != len(f.Tensors) || d.FileSize != fi.Size() ||
		d.Tokenizer != "llama" || d.Tokens != 512 || d.ChatTemplate || d.RopeFreqFactors {
		t.Errorf("Describe: %+v", d)
	}
	// 5 layers x 4 KV heads x (8 + 8) values x 2 bytes.
	if d.KVBytesPerToken != 640 {
		t.Errorf("KV bytes per token %d, want 640", d.KVBytesPerToken)
	}
	want := []TypeCount{{"F16", 5}, {"F32", 11}, {"Q8_0", 32}}
	if !slices.Equal(d.TensorTypes, want) {
		t.Errorf("tensor types %v, want %v", d.TensorTypes, want)
	}
}

// A file kvgo cannot run is still described, with the reason.
func TestDescribeUnsupported(t *testing.T) {
	var b gguf.Builder
	b.Set("general.architecture", "gptj")
	b.Set("general.name", "")
	b.Set("tokenizer.chat_template", "{{ messages }}")
	b.AddTensor("token_embd.weight", gguf.TypeF32, []uint64{4, 2}, make([]byte, 32))
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	d := Describe(f)
	if d.ConfigErr == nil || d.KVBytesPerToken != 0 || d.Arch != "gptj" || !d.HasName || d.Name != "" || !d.ChatTemplate ||
		d.Params != 8 || !slices.Equal(d.TensorTypes, []TypeCount{{"F32", 1}}) {
		t.Errorf("Describe: %+v", d)
	}
}

// The bytes per token are what kv.FullF16Bytes counts per token besides
// positions, for every kind of shape: per-layer widths, values of another
// width, a latent value stored in the key.
func TestKVBytesPerTokenIsFullF16(t *testing.T) {
	for _, s := range []kv.Shape{
		{Layers: 5, KVHeads: 4, HeadDim: 8},
		{Layers: 2, KVHeads: 3, LayerDims: []kv.Dims{{Key: 64, Value: 32}, {Key: 16, Value: 16}}},
		{Layers: 3, KVHeads: 1, HeadDim: 96 + 32, ValueDim: 96, ValueInKey: true},
		(Config{Layers: 4, KVHeads: 2, HeadDim: 64, KVLoraRank: 128, RopeDims: 32}).CacheShape(),
	} {
		const n = 4 * kv.PageTokens
		positions := int64(4 * n * s.Streams())
		if got, want := kvBytesPerToken(s)*n, kv.FullF16Bytes(s, n)-positions; got != want {
			t.Errorf("%+v: %d bytes per token, x%d = %d, FullF16Bytes without positions %d", s, kvBytesPerToken(s), n, got, want)
		}
		if got, want := (kvBytesPerToken(s)+4*int64(s.Streams()))*n, kv.FullF16Bytes(s, n); got != want {
			t.Errorf("%+v: with positions %d bytes for %d tokens, FullF16Bytes %d", s, got, n, want)
		}
	}
}
