package sched

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkServeInspectIdle is the inspector's whole cost to a step when
// nobody asked: the loop's call to serveInspect, one atomic load.
func BenchmarkServeInspectIdle(b *testing.B) {
	s := &Scheduler{}
	for b.Loop() {
		s.serveInspect()
	}
}

// TestInspectCostInterleaved measures decode with nobody inspecting (the
// page closed) against an inspector polled every 20 ms (50x what the page
// does while a reply streams), in alternating rounds so that the shared
// machine's load falls on both alike. Opt-in (KVGO_BENCH=1): it takes about ten
// seconds. Each round runs 4 sequences of 192 generated tokens.
func TestInspectCostInterleaved(t *testing.T) {
	if os.Getenv("KVGO_BENCH") == "" {
		t.Skip("set KVGO_BENCH=1 to time decode with and without an inspector polling")
	}
	s := newSched(t, Config{})
	ids := prompt(t, longText(200))
	round := func(poll bool) time.Duration {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		if poll {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					s.Inspect(ctx, "")
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		start := time.Now()
		var hs []*Handle
		for range 4 {
			r := greedy(ids, 192)
			r.Inspect = true
			h, err := s.Submit(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		for _, h := range hs {
			collect(t, h)
		}
		d := time.Since(start)
		cancel()
		wg.Wait()
		return d
	}
	round(false) // warm up
	var idle, polled []time.Duration
	for range 6 {
		idle = append(idle, round(false))
		polled = append(polled, round(true))
	}
	slices.Sort(idle)
	slices.Sort(polled)
	mi, mp := idle[len(idle)/2], polled[len(polled)/2]
	// The fastest round is the one the machine's other load disturbed least.
	t.Logf("6 interleaved rounds (4 x 192 tokens): nobody inspecting: fastest %v, median %v; inspector polled every 20 ms: fastest %v (%+.1f%%), median %v (%+.1f%%); idle rounds %v; polled %v",
		idle[0], mi, polled[0], 100*(float64(polled[0])/float64(idle[0])-1), mp, 100*(float64(mp)/float64(mi)-1), idle, polled)
}
