package model

import (
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/golden"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

func openModel(t *testing.T, rel string) (*Model, *gguf.File) {
	t.Helper()
	f, err := gguf.Open(golden.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return m, f
}

// tolerance per run: max abs logit difference to llama.cpp. Runs whose
// file holds F16 matrices (the F16 file, and ffn_down in the Q8_0/Q4_0
// files) round activations to F16 as ggml does; a last-bit difference in
// float32 summation order can move a value across an F16 rounding boundary,
// so they get the F16 tolerance (the golden README measured 0.0089 for an
// exact emulation of ggml).
var tolerance = map[string]float64{
	"once": 1e-4, "lily": 1e-4, "story": 1e-4,
	"lily_f16kv":        0.05,
	"lily_f16_weights":  0.02,
	"lily_q8_0_weights": 1e-3,
	"lily_q4_0_weights": 0.02,
}

// TestLogitsMatchLlamaCpp evaluates each golden prompt in one batch and
// compares the logits at every position with llama.cpp's.
func TestLogitsMatchLlamaCpp(t *testing.T) {
	for _, run := range golden.LogitRuns(t) {
		t.Run(run.Name, func(t *testing.T) {
			m, _ := openModel(t, run.Model)
			pool := kernel.NewPool(2)
			defer pool.Close()
			cfg := kv.Config{K: kvquant.F32{}, V: kvquant.F32{}}
			if run.CacheTypeK == "f16" {
				cfg = kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}
			}
			cache, err := kv.New(m.CacheShape(), cfg, 512)
			if err != nil {
				t.Fatal(err)
			}
			st := m.NewState(pool, 64, 512)
			var got []float32
			err = st.ForwardEach(cache, run.PromptIDs, 0, 0, func(_ int, l []float32) error {
				got = append(got, l...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := golden.F32(t, "golden/stories260K/"+run.File)
			if len(got) != len(want) {
				t.Fatalf("%d logits, want %d", len(got), len(want))
			}
			diff := golden.MaxAbsDiff(got, want)
			tol, ok := tolerance[run.Name]
			if !ok {
				t.Fatalf("no tolerance for run %q", run.Name)
			}
			t.Logf("max abs diff %.3g (tolerance %g)", diff, tol)
			if diff > tol {
				t.Errorf("max abs logit difference %.3g > %g", diff, tol)
			}
			V := run.NVocab
			for i := 0; i < len(run.PromptIDs) && run.Name != "lily_q4_0_weights"; i++ {
				if a, b := golden.Argmax(got[i*V:(i+1)*V]), golden.Argmax(want[i*V:(i+1)*V]); a != b {
					t.Errorf("position %d: argmax %d, llama.cpp %d", i, a, b)
				}
			}
		})
	}
}

// TestGreedyMatchesLlamaCpp decodes 64 tokens one at a time and checks the
// tokens and every step's logits.
func TestGreedyMatchesLlamaCpp(t *testing.T) {
	var g struct {
		Model        string `json:"model"`
		PromptIDs    []int  `json:"prompt_ids"`
		GeneratedIDs []int  `json:"generated_ids"`
		GenLogits    string `json:"gen_logits_file"`
		Other        map[string]struct {
			Model        string `json:"model"`
			GeneratedIDs []int  `json:"generated_ids"`
		} `json:"other_weight_types"`
	}
	golden.ReadJSON(t, "golden/stories260K/greedy.json", &g)
	wantLogits := golden.F32(t, "golden/stories260K/"+g.GenLogits)
	check := func(t *testing.T, model string, want []int, logits []float32) {
		m, _ := openModel(t, model)
		pool := kernel.NewPool(2)
		defer pool.Close()
		cache, _ := kv.New(m.CacheShape(), kv.Config{K: kvquant.F32{}, V: kvquant.F32{}}, 512)
		st := m.NewState(pool, 32, 512)
		out, err := st.Forward(cache, g.PromptIDs, 0)
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for k := range want {
			tok := golden.Argmax(out)
			if tok != want[k] {
				t.Fatalf("token %d: got %d, llama.cpp %d", k, tok, want[k])
			}
			if out, err = st.Forward(cache, []int{tok}, len(g.PromptIDs)+k); err != nil {
				t.Fatal(err)
			}
			if logits != nil {
				worst = max(worst, golden.MaxAbsDiff(out, logits[k*512:(k+1)*512]))
			}
		}
		if logits != nil {
			t.Logf("max abs diff of decode logits %.3g", worst)
			if worst > 1e-4 {
				t.Errorf("decode logits differ by %.3g > 1e-4", worst)
			}
		}
	}
	t.Run("f32", func(t *testing.T) { check(t, g.Model, g.GeneratedIDs, wantLogits) })
	for name, o := range g.Other {
		t.Run(name, func(t *testing.T) { check(t, o.Model, o.GeneratedIDs, nil) })
	}
}

// TestForwardSeqsMatchesSeparateRuns batches two sequences that share a
// prefix (llama.cpp's seq_cp golden): T[0:32] on both, then T[32:40] on
// the first and T[120:128] on the second in one pass over the weights.
func TestForwardSeqsMatchesSeparateRuns(t *testing.T) {
	var ops struct {
		Tokens []int `json:"tokens"`
	}
	golden.ReadJSON(t, "golden/stories260K/kv_ops.json", &ops)
	want := golden.F32(t, "golden/stories260K/kv_seqcp_both.f32") // [16][512]
	m, _ := openModel(t, "models/stories260K.gguf")
	pool := kernel.NewPool(2)
	defer pool.Close()
	st := m.NewState(pool, 64, 512)
	T := ops.Tokens
	var caches [2]*kv.Cache
	for i := range caches {
		caches[i], _ = kv.New(m.CacheShape(), kv.Config{K: kvquant.F32{}, V: kvquant.F32{}}, 512)
		if _, err := st.Forward(caches[i], T[:32], 0); err != nil {
			t.Fatal(err)
		}
	}
	// Feed the 8 tokens of each sequence one step at a time, both
	// sequences in every step, and compare each step's logits.
	for k := 0; k < 8; k++ {
		out, err := st.ForwardSeqs([]Seq{
			{Cache: caches[0], Tokens: []int{T[32+k]}, Start: 32 + k, Logits: true},
			{Cache: caches[1], Tokens: []int{T[120+k]}, Start: 32 + k, Logits: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < 2; s++ {
			row := want[(s*8+k)*512 : (s*8+k+1)*512]
			if d := golden.MaxAbsDiff(out[s], row); d > 1e-4 {
				t.Errorf("step %d sequence %d: logits differ from llama.cpp by %.3g", k, s, d)
			}
		}
	}
	// A batch mixing a prompt chunk with a decode token, and bad input.
	c3, _ := kv.New(m.CacheShape(), kv.Config{K: kvquant.F32{}, V: kvquant.F32{}}, 512)
	if _, err := st.ForwardSeqs([]Seq{{Cache: c3, Tokens: T[:10], Start: 0, Logits: true}, {Cache: caches[0], Tokens: []int{1}, Start: 40}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ForwardSeqs([]Seq{{Cache: c3, Tokens: []int{9999}, Start: 10}}); err == nil {
		t.Error("out-of-vocabulary token accepted")
	}
	if _, err := st.ForwardSeqs([]Seq{{Cache: c3, Tokens: make([]int, 65), Start: 10}}); err == nil {
		t.Error("batch larger than the state accepted")
	}
}

// TestDecodeDoesNotAllocate checks that a decode step (one token through
// every layer, attention included) allocates nothing once warmed up.
func TestDecodeDoesNotAllocate(t *testing.T) {
	m, _ := openModel(t, "models/stories260K.gguf")
	pool := kernel.NewPool(2)
	defer pool.Close()
	cache, _ := kv.New(m.CacheShape(), kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, 512)
	st := m.NewState(pool, 32, 512)
	if _, err := st.Forward(cache, []int{1, 403, 407, 261, 378}, 0); err != nil {
		t.Fatal(err)
	}
	pos := 5
	// Warm up past a page boundary so page allocation is not counted.
	for ; pos < 40; pos++ {
		st.Forward(cache, []int{pos % 500}, pos)
	}
	tok := make([]int, 1)
	allocs := testing.AllocsPerRun(20, func() {
		tok[0] = pos % 500
		if _, err := st.Forward(cache, tok, pos); err != nil {
			t.Fatal(err)
		}
		pos++
	})
	// A new page of 32 tokens per stream is allocated every 32 steps;
	// 20 steps from position 40 stay within the page of 32..63.
	if allocs != 0 {
		t.Errorf("a decode step allocates %.1f times", allocs)
	}
}
