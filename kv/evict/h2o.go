package evict

import "github.com/kvgo/kvgo/kv"

// H2O is the Heavy-Hitter Oracle (Zhang et al. 2023, arXiv:2306.14048;
// its heavy-hitter observations and Algorithm 1, the greedy H2 eviction):
// a few tokens receive most of the attention, and their accumulated
// attention identifies them; the cache keeps a window of recent tokens
// plus the tokens with the highest accumulated attention, and evicts the
// lowest whenever it is over budget.
//
// Choices the paper leaves open or that differ here:
//   - Scores are per KV stream: the attention probabilities of the query
//     heads sharing the KV head are summed (GQA), accumulated in
//     Stream.Acc, which the cache compacts along with the tokens.
//   - The prompt is scored by every prompt query (Window -1), as the
//     authors' HF implementation does for the prompt (the attention matrix
//     summed over the query axis), and is cut to the budget right after
//     prefill; each decode step then adds that step's probabilities.
//   - Recent is the fraction of the budget kept as the recent window
//     (rounded); the paper's experiments split the cache evenly between
//     recent and heavy tokens (20% + 20%), hence the default 0.5. Recent 1
//     is a pure sliding window, 0 pure heavy hitters.
//   - Scores are raw sums, not normalized by how many queries saw a token;
//     older tokens are favoured by having been seen more often, which is
//     the paper's rule.
type H2O struct{}

// NewH2O is H2O keeping budget tokens, recent × budget of them the most
// recent, at every step.
func NewH2O(budget kv.Budget, recent float64) *Ranked {
	return &Ranked{Scorer: H2O{}, Budget: budget, Recent: recent, Steady: true}
}

func (H2O) Name() string    { return "h2o" }
func (H2O) Window() int     { return -1 }
func (H2O) StepStats() bool { return true }

// Accumulate adds the stream's observed attention to its accumulated
// scores.
func (H2O) Accumulate(s *kv.Stream) {
	acc, obs := s.Acc(), s.Observed()
	for i, o := range obs {
		acc[i] += o
	}
}

// Score is the accumulated attention.
func (H2O) Score(s *kv.Stream, dst []float32) { copy(dst, s.Acc()) }
