package evict

import "github.com/kvgo/kvgo/kv"

// KNorm (Devoto et al. 2024, "A Simple and Effective L2 Norm-Based
// Strategy for KV Cache Compression", arXiv:2406.11430; kvpress's
// KnormPress): the paper finds a clear correlation between a cached key's
// L2 norm and the attention it receives while decoding, a low norm
// usually drawing a high score, so the tokens whose keys have the
// smallest norm are the ones to keep. The score is -‖k‖. It reads no
// attention statistics (Window 0), which is why the paper calls it
// compatible with FlashAttention; in kvgo the cache collects no
// observation window for it.
//
// Choices the paper leaves open or that differ here:
//   - Per KV stream (each KV head ranks its own keys), after prefill only,
//     as KnormPress compresses the prompt; generated tokens are all kept,
//     as with SnapKV, so the bound is the budget and not steady.
//   - No recent window and no sinks are protected: KnormPress, like every
//     ScorerPress, ranks all prompt tokens by default, and kvgo follows it.
//   - Keys are read as the cache stores them, after RoPE (as KnormPress
//     reads them), decoded from the cache's codec in one pass
//     (Stream.Keys); the ranking uses the squared norm, which orders keys
//     as the norm does.
type KNorm struct {
	keys []float32 // the stream's decoded keys, reused
}

var knormMethod = kv.Method{
	Name: "knorm", Kind: kv.EvictorMethod,
	Summary: "KNorm (prefill only): per head, keep the tokens whose keys have the smallest L2 norm; needs no attention statistics",
	Paper:   "KNorm (A Simple and Effective L2 Norm-Based Strategy for KV Cache Compression), Devoto et al. 2024, arXiv:2406.11430",
	Params:  []kv.Param{budgetParam()},
	NewEvictor: func(a kv.Args) (kv.Evictor, error) {
		return NewKNorm(a.Budget("budget")), nil
	},
}

// NewKNorm is KNorm keeping budget tokens per KV head after the prompt.
func NewKNorm(budget kv.Budget) *Ranked {
	return &Ranked{Scorer: &KNorm{}, Budget: budget}
}

func (*KNorm) Name() string    { return "knorm" }
func (*KNorm) Window() int     { return 0 }
func (*KNorm) StepStats() bool { return false }

// Score is minus the squared L2 norm of each token's key.
func (e *KNorm) Score(s *kv.Stream, dst []float32) {
	e.keys = s.Keys(e.keys)
	d := s.Dim()
	for i := range dst {
		var ss float64
		for _, x := range e.keys[i*d : (i+1)*d] {
			ss += float64(x) * float64(x)
		}
		dst[i] = float32(-ss)
	}
}
