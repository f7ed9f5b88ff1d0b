package kv

// A Protector is an evictor that keeps some tokens of a prompt by rule,
// whatever their scores: attention sinks at the start, a recent or
// observation window at the end. Eval reads it to tell a needle the
// method kept because it sits in that window (a recency baseline answers
// those) from one it found by its scores. It is optional: an evictor
// without it protects nothing.
type Protector interface {
	// Protected is how many first and last tokens of a prompt of n tokens
	// every stream holds once the prompt is done. A prompt within the
	// budget is kept whole (first == n).
	Protected(n int) (first, last int)
}
