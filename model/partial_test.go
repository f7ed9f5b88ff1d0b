package model

import (
	"math"
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// TestForwardAtFromContinuesForwardLayersAt: tokens run through the first
// layers by ForwardLayersAt (which keeps their residual streams) and
// carried on from there by ForwardAtFrom give the logits of running them
// through every layer, in batches smaller than the prompt; handing the
// wrong residual streams does not.
func TestForwardAtFromContinuesForwardLayersAt(t *testing.T) {
	m, _ := openModel(t, "models/stories260K.gguf")
	pool := kernel.NewPool(2)
	defer pool.Close()
	tokens := make([]int, 40)
	for i := range tokens {
		tokens[i] = (i*37 + 11) % m.Vocab
	}
	pos := make([]int32, len(tokens))
	for i := range pos {
		pos[i] = int32(i)
	}
	newCache := func() *kv.Cache {
		c, err := kv.New(m.CacheShape(), kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, RoPE: m.Rotary()}, 512)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	st := m.NewState(pool, 16, 512)
	want, err := st.Forward(newCache(), tokens, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	first := len(m.Layers) / 2
	E := m.Embd
	for _, shuffle := range []bool{false, true} {
		c := newCache()
		if _, err := st.Forward(c, tokens, 0); err != nil {
			t.Fatal(err)
		}
		hidden := make([]float32, len(tokens)*E)
		keep := func(i int, x []float32) { copy(hidden[i*E:(i+1)*E], x) }
		if err := st.ForwardLayersAt(c, tokens, pos, first, keep); err != nil {
			t.Fatal(err)
		}
		if shuffle {
			copy(hidden, append(hidden[E:], hidden[:E]...))
		}
		var got []float32
		err := st.ForwardAtFrom(c, tokens, pos, hidden, first, len(tokens)-1, func(_ int, l []float32) error {
			got = slices.Clone(l)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var d float64
		for i := range got {
			d = max(d, math.Abs(float64(got[i]-want[i])))
		}
		if !shuffle && d > 1e-5 {
			t.Errorf("continued from layer %d: logits differ by %g", first, d)
		}
		if shuffle && d < 1e-3 {
			t.Errorf("shuffled residual streams: logits differ by only %g: the test cannot tell", d)
		}
	}
	if err := st.ForwardAtFrom(newCache(), tokens, pos, nil, first, 0, nil); err == nil {
		t.Error("ForwardAtFrom without residual streams: no error")
	}
}
