package engine

import (
	"context"
	"math"
	"testing"
)

// MaxTokens beyond the room left in the context is clamped to it, near
// 2^63 too (len(prompt)+MaxTokens wrapped negative and generation ran
// into the end of the cache: `kvgo run -n 9223372036854775807` failed
// where -n 5000 was clamped).
func TestGenerateClampsHugeMaxTokens(t *testing.T) {
	e, err := Load("", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ids := e.Tok.Encode("Once upon a time", true, false)
	const ctx = 48
	for _, n := range []int{-1, ctx, 5000, math.MaxInt64 - len(ids) + 1, math.MaxInt64} {
		st, err := e.Generate(context.Background(), Request{Prompt: ids, MaxTokens: n, Context: ctx})
		if err != nil {
			t.Errorf("MaxTokens %d: %v", n, err)
			continue
		}
		if st.GeneratedTokens != ctx-len(ids) {
			t.Errorf("MaxTokens %d: %d tokens generated, want the %d left in the context", n, st.GeneratedTokens, ctx-len(ids))
		}
	}
}
