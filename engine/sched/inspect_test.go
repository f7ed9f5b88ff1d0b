package sched

import (
	"context"
	"testing"
	"time"
)

// TestInspect: a finished snapkv sequence's snapshot holds the kept
// positions the cache held, a running one is answered between steps, and
// another tenant sees nothing.
func TestInspect(t *testing.T) {
	s := newSched(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if snap, err := s.Inspect(ctx, "a"); err != nil || snap != nil {
		t.Fatalf("before any sequence: %v, %v", snap, err)
	}
	ids := prompt(t, longText(120))
	req := greedy(ids, 8)
	req.Recipe = mustRecipe(t, "snapkv(budget=0.25)")
	req.Tenant, req.Inspect = "a", true
	h, err := s.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.Inspect(ctx, "a") // running or already done: either is an answer
	if err != nil || live == nil {
		t.Fatalf("while running: %v, %v", live, err)
	}
	r := collect(t, h)
	snap, err := s.Inspect(ctx, "a")
	if err != nil || snap == nil || snap.Live {
		t.Fatalf("after: %+v, %v", snap, err)
	}
	if len(snap.Streams) != snap.Layers*snap.KVHeads || snap.Layers == 0 {
		t.Fatalf("%d streams for %d layers x %d heads", len(snap.Streams), snap.Layers, snap.KVHeads)
	}
	if len(snap.Tokens) != len(ids)+len(r.tokens) {
		t.Fatalf("%d tokens, want %d", len(snap.Tokens), len(ids)+len(r.tokens))
	}
	budget := len(ids) / 4
	for _, st := range snap.Streams {
		n, paged := 0, 0
		for _, rg := range st.Ranges {
			n += int(rg[1]-rg[0]) + 1
		}
		for _, p := range st.Pages {
			paged += p.Tokens
		}
		if n != st.Kept || paged+st.Tail != st.Kept {
			t.Fatalf("layer %d head %d: ranges hold %d, pages %d + tail %d, kept %d", st.Layer, st.Head, n, paged, st.Tail, st.Kept)
		}
		if st.Kept > budget+len(r.tokens)+1 || st.Kept >= len(ids) {
			t.Fatalf("layer %d head %d keeps %d of %d prompt tokens with budget %d", st.Layer, st.Head, st.Kept, len(ids), budget)
		}
	}
	if snap.Bytes <= 0 || snap.Bytes >= snap.FullF16Bytes {
		t.Fatalf("snapkv holds %d bytes against %d full", snap.Bytes, snap.FullF16Bytes)
	}
	if other, err := s.Inspect(ctx, "b"); err != nil || other != nil {
		t.Fatalf("tenant b sees %+v, %v", other, err)
	}
}

// TestInspectSelectorReads: an inspected quest sequence reports which
// pages the selector read at its last decode step, some but not all.
func TestInspectSelectorReads(t *testing.T) {
	s := newSched(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := greedy(prompt(t, longText(400)), 4)
	req.Recipe = mustRecipe(t, "quest(budget=64)")
	req.Inspect = true
	h, err := s.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	collect(t, h)
	snap, err := s.Inspect(ctx, "")
	if err != nil || snap == nil || snap.Selector == "" {
		t.Fatalf("%+v, %v", snap, err)
	}
	read, skipped := 0, 0
	for _, st := range snap.Streams {
		for _, p := range st.Pages {
			switch {
			case p.Read == nil:
			case *p.Read:
				read++
			default:
				skipped++
			}
		}
	}
	if read == 0 || skipped == 0 {
		t.Fatalf("quest read %d pages and skipped %d", read, skipped)
	}
}
