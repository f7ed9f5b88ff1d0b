package sched

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// extremeCounts are token counts a request can carry through JSON's int64:
// the edges of the context, of int and of int64.
func extremeCounts(ctx, n int) []int {
	return []int{
		math.MinInt64, math.MinInt64 + 1, -ctx, -1, 0, 1, 2,
		ctx - n - 1, ctx - n, ctx - n + 1, ctx, ctx + 1, 2 * ctx,
		math.MaxInt32, math.MaxInt32 + 1, math.MaxInt64 / 2, math.MaxInt64/2 + 1,
		math.MaxInt64 - n, math.MaxInt64 - n + 1, math.MaxInt64 - ctx, math.MaxInt64 - 1, math.MaxInt64,
	}
}

// Submit takes a request only when its prompt plus the tokens it asks for
// fit the context and its reservation fits the budget, for any int64 count
// (a sum that wraps once let max_tokens near 2^63 through with a
// reservation near zero), and Reservation never shrinks as the count grows.
func TestSubmitTokenCountsAreOverflowSafe(t *testing.T) {
	const budget = 3 << 20
	s := newSched(t, Config{KVBudget: budget, MaxQueue: 1 << 16})
	ctx := s.Context()
	rng := rand.New(rand.NewPCG(14, 1))
	recipes := []string{"f16", "q4", "snapkv(budget=64)+q8", "streaming(budget=32)"}
	check := func(n, max int, rcp string) {
		t.Helper()
		r := mustRecipe(t, rcp)
		req := Request{Prompt: make([]int, n), MaxTokens: max, Recipe: r}
		c, cancel := context.WithCancel(context.Background())
		cancel() // accepted requests leave the queue at once
		h, err := s.Submit(c, req)
		fits := max >= 1 && n < ctx && max <= ctx-n
		switch {
		case !fits && err == nil:
			t.Errorf("%s: prompt %d + max_tokens %d (context %d) was accepted", rcp, n, max, ctx)
		case fits && err != nil && !errors.Is(err, ErrTooLarge):
			t.Errorf("%s: prompt %d + max_tokens %d (context %d): %v", rcp, n, max, ctx, err)
		case err == nil:
			need, _ := s.Reservation(r, n, max)
			if need <= 0 || need > budget {
				t.Errorf("%s: prompt %d + max_tokens %d accepted with a reservation of %d bytes (budget %d)", rcp, n, max, need, budget)
			}
			collect(t, h)
		}
		if n >= 1 && n < ctx && max > ctx-n {
			// Asking for more can only cost more.
			at, _ := s.Reservation(r, n, ctx-n)
			over, _ := s.Reservation(r, n, max)
			if over < at {
				t.Errorf("%s: Reservation(prompt %d, %d) = %d is below Reservation(prompt %d, %d) = %d", rcp, n, max, over, n, ctx-n, at)
			}
		}
	}
	for _, rcp := range recipes {
		for _, n := range []int{1, 17, ctx / 2, ctx - 1} {
			for _, max := range extremeCounts(ctx, n) {
				check(n, max, rcp)
			}
		}
		for range 200 {
			n := 1 + rng.IntN(ctx-1)
			max := int(rng.Uint64())
			if rng.IntN(2) == 0 {
				max = rng.IntN(2*ctx) - ctx/2
			}
			check(n, max, rcp)
		}
	}
}

// Six requests asking for max_tokens near 2^63 under a 3 MiB budget: none
// runs, so the budget holds (they were admitted with reservations near
// zero and drove the peak to 3,240,352 bytes, five failing with
// ErrKVExhausted).
func TestHugeMaxTokensKeepsBudget(t *testing.T) {
	const budget = 3 << 20
	s := newSched(t, Config{KVBudget: budget})
	ids := prompt(t, longText(300))
	for i := range 6 {
		req := greedy(ids, math.MaxInt64-len(ids)+1+i)
		if _, err := s.Submit(context.Background(), req); !errors.Is(err, ErrContext) {
			t.Errorf("max_tokens %d: %v, want ErrContext", req.MaxTokens, err)
		}
	}
	var hs []*Handle
	for range 6 {
		h, err := s.Submit(context.Background(), greedy(ids, 100))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		if r := collect(t, h); r.final.Finish != FinishLength {
			t.Errorf("final %+v", r.final)
		}
	}
	if st := s.Stats(); st.Peak > budget || st.Preempted != 0 {
		t.Errorf("peak %d of a %d budget, %d preempted", st.Peak, budget, st.Preempted)
	}
}
