package model

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/defaultmodel"
)

// withMeta rewrites the embedded kvgo-tiny file with one metadata value
// changed.
func withMeta(t *testing.T, key string, value any) *gguf.File {
	t.Helper()
	src, err := gguf.Parse(defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var b gguf.Builder
	for _, kv := range src.Metadata {
		if kv.Key != key {
			b.Set(kv.Key, kv.Value.Data)
		}
	}
	b.Set(key, value)
	for i := range src.Tensors {
		ti := &src.Tensors[i]
		b.AddTensor(ti.Name, ti.Type, ti.Shape, src.TensorData(ti))
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Values a model cannot run with are refused when it loads: an RMS epsilon
// of NaN gave empty output and a perplexity of NaN, and a rotary dimension
// count of 0 was accepted.
func TestLoadRefusesUnrunnableConfig(t *testing.T) {
	for _, tc := range []struct {
		key     string
		value   any
		mention string
	}{
		{"llama.attention.layer_norm_rms_epsilon", float32(math.NaN()), "epsilon"},
		{"llama.attention.layer_norm_rms_epsilon", float32(math.Inf(1)), "epsilon"},
		{"llama.attention.layer_norm_rms_epsilon", float32(-1e-5), "epsilon"},
		{"llama.rope.dimension_count", uint32(0), "rope.dimension_count"},
		{"llama.rope.freq_base", float32(math.NaN()), "freq_base"},
	} {
		f := withMeta(t, tc.key, tc.value)
		if _, err := Load(f); err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s = %v: %v, want an error naming %s", tc.key, tc.value, err, tc.mention)
		}
	}
	if _, err := Load(withMeta(t, "llama.attention.layer_norm_rms_epsilon", float32(1e-6))); err != nil {
		t.Errorf("a valid epsilon: %v", err)
	}
}
