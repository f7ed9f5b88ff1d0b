package evict

import (
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// stepAllocs returns the average allocations of one decode step (Begin,
// Store, Attend, End over every layer) in steady state.
func stepAllocs(t *testing.T, ev kv.Evictor) float64 {
	const layers, heads, g, n = 2, 2, 2, 256
	r := newRig(t, layers, heads, g, ev, noisePattern)
	r.prefill(n)
	for i := 0; i < 64; i++ {
		r.step()
	}
	k := noise(1, 1)
	kk := make([]float32, 0, heads*dim)
	for h := 0; h < heads; h++ {
		kk = append(kk, k...)
	}
	q := make([]float32, g*dim)
	copy(q, noise(2, 10))
	out := make([]float32, g*dim)
	pos := []int32{0}
	return testing.AllocsPerRun(200, func() {
		pos[0] = int32(r.next)
		r.next++
		if err := r.c.Begin(pos); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < layers; l++ {
			r.c.Store(l, kk, kk)
			for h := 0; h < heads; h++ {
				r.c.Attend(l, h, q, g, pos[0], out, r.sc)
			}
		}
		r.c.End()
	})
}

type nopEvictor struct{}

func (nopEvictor) Name() string                    { return "nop" }
func (nopEvictor) Window() int                     { return 0 }
func (nopEvictor) Bound() kv.Bound                 { return kv.Bound{} }
func (nopEvictor) StepStats() bool                 { return true }
func (nopEvictor) AfterPrefill(*kv.LayerView, int) {}
func (nopEvictor) AfterStep(*kv.LayerView)         {}

// TestDecodeStepAllocations: a decode step with an evictor allocates
// hardly more than with one that does nothing. The evictors reuse their
// scratch; what remains (about one allocation per step) is the core's
// page memory following the deletions (a page shrinking after Delete, a
// new page for the appended token), which is the memory being freed.
func TestDecodeStepAllocations(t *testing.T) {
	base := stepAllocs(t, nopEvictor{})
	evs := map[string]kv.Evictor{
		"streaming":         NewStreaming(tokens(64), 4),
		"h2o":               NewH2O(tokens(64), 0.5),
		"tova":              NewTOVA(tokens(64)),
		"h2o+kvcrush":       crush(t, NewH2O(tokens(64), 0.5), 0.75, "head"),
		"h2o+kvcrush-layer": crush(t, NewH2O(tokens(64), 0.5), 0.75, "layer"),
		"tova+kvcrush":      crush(t, NewTOVA(tokens(64)), 0.75, "head"),
		"streaming+kvcrush": crush(t, NewStreaming(tokens(64), 4), 0.75, "head"),
	}
	for name, ev := range evs {
		a := stepAllocs(t, ev)
		t.Logf("%s: %.2f allocations per step (no-op evictor %.2f)", name, a, base)
		if a > base+1.5 {
			t.Errorf("%s: %.2f allocations per decode step, no-op evictor %.2f", name, a, base)
		}
	}
}

// TestSelectionDoesNotAllocate: the evictors' own work, once the scratch
// has grown, allocates nothing.
func TestSelectionDoesNotAllocate(t *testing.T) {
	const n = 300
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(mix(uint64(i)) % 1000)
	}
	var sc scratch
	mask := make([]bool, n)
	dst := make([]float32, n)
	if a := testing.AllocsPerRun(50, func() {
		sc.keepTop(mask, s, n, n/3)
		sc.keepTop(mask, s, n, n-1)
		pool(dst, s, 7, false)
		pool(dst, s, 7, true)
	}); a != 0 {
		t.Errorf("keepTop and pool: %.1f allocations", a)
	}
	e := &KVCrush{Anchor: "mean", Threshold: "median"}
	per := make([]float32, 4*n)
	for i := range per {
		per[i] = float32(mix(uint64(i)+7) % 1000)
	}
	m := make([]bool, n)
	e.crush(m, per, 4, 50, 40)
	if a := testing.AllocsPerRun(50, func() { e.crush(m, per, 4, 50, 40) }); a != 0 {
		t.Errorf("crush: %.1f allocations", a)
	}
	kept := 0
	for _, k := range m {
		if k {
			kept++
		}
	}
	if kept != 90 {
		t.Errorf("crush keeps %d of %d, want 90", kept, n)
	}
}

// BenchmarkDecodeStep times one decode step (Store, Attend and the
// evictor's hook over every layer) at steady state with 1024 tokens kept
// per stream, against no evictor on a cache of the same size.
func BenchmarkDecodeStep(b *testing.B) {
	const layers, heads, g, n, budget = 4, 4, 2, 2048, 1024
	evs := []struct {
		name string
		ev   kv.Evictor
	}{
		{"none", nil},
		{"streaming", NewStreaming(tokens(budget), 4)},
		{"h2o", NewH2O(tokens(budget), 0.5)},
		{"tova", NewTOVA(tokens(budget))},
		{"h2o+kvcrush", crush(b, NewH2O(tokens(budget), 0.5), 0.75, "head")},
	}
	for _, c := range evs {
		b.Run(c.name, func(b *testing.B) {
			r := newRig(b, layers, heads, g, c.ev, noisePattern)
			if c.ev == nil {
				r.prefill(budget)
			} else {
				r.prefill(n)
			}
			k := noise(1, 1)
			kk := make([]float32, 0, heads*dim)
			for h := 0; h < heads; h++ {
				kk = append(kk, k...)
			}
			q := make([]float32, g*dim)
			copy(q, noise(2, 10))
			out := make([]float32, g*dim)
			pos := []int32{0}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pos[0] = int32(r.next)
				r.next++
				if c.ev == nil && r.c.Len() > budget {
					b.StopTimer()
					r.c.Truncate(budget)
					r.next = budget
					pos[0] = int32(r.next)
					r.next++
					b.StartTimer()
				}
				_ = r.c.Begin(pos)
				for l := 0; l < layers; l++ {
					r.c.Store(l, kk, kk)
					for h := 0; h < heads; h++ {
						r.c.Attend(l, h, q, g, pos[0], out, r.sc)
					}
				}
				r.c.End()
			}
		})
	}
}
