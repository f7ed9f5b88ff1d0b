package evict

import (
	"slices"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// crushVectors are the hand-made head-behaviour vectors (bits of heads
// 0..3, written b0b1b2b3) of tokens 2..15; tokens 0 and 1 are the base's
// clear winners. Each head has exactly six ones among tokens 2..15, so
// that with tokens 0 and 1 its top half (8 of 16) is exactly its ones.
var crushVectors = map[int]string{
	2: "1111", 3: "1111",
	4: "1110", 5: "0111",
	6: "1100", 7: "0011", 8: "1001", 9: "0110",
	10: "1000", 11: "0001",
	12: "0000", 13: "0000", 14: "0000", 15: "0000",
}

// crushScores builds per-stream scores (4 rows of 16) realizing
// crushVectors: 1 + bit + i/1000 for token i, 100 for tokens 0 and 1.
func crushScores() []float32 {
	const H, m = 4, 16
	per := make([]float32, H*m)
	for h := 0; h < H; h++ {
		for i := 0; i < m; i++ {
			v := float32(100)
			if i >= 2 {
				v = 1 + float32(i)/1000
				if crushVectors[i][h] == '1' {
					v++
				}
			}
			per[h*m+i] = v
		}
	}
	return per
}

func bitString(vec []uint64, i, H int) string {
	b := make([]byte, H)
	for h := 0; h < H; h++ {
		b[h] = '0'
		if vec[i]>>h&1 == 1 {
			b[h] = '1'
		}
	}
	return string(b)
}

func TestKVCrushHeadBits(t *testing.T) {
	per := crushScores()
	vec := make([]uint64, 16)
	headBits(vec, per, 4, 16, false, make([]int32, 16), make([]bool, 16))
	for i := 0; i < 16; i++ {
		want := "1111"
		if i >= 2 {
			want = crushVectors[i]
		}
		if got := bitString(vec, i, 4); got != want {
			t.Errorf("median bits of token %d: %s, want %s", i, got, want)
		}
	}
	// With the mean rule the two dominant tokens lift every mean (about
	// 13.9) above all the others: every candidate's vector is zero.
	headBits(vec, per, 4, 16, true, make([]int32, 16), make([]bool, 16))
	for i := 0; i < 16; i++ {
		want := "0000"
		if i < 2 {
			want = "1111"
		}
		if got := bitString(vec, i, 4); got != want {
			t.Errorf("mean bits of token %d: %s, want %s", i, got, want)
		}
	}
	// More than 64 heads take more than one word.
	const H, m = 70, 4
	big := make([]float32, H*m)
	for h := 0; h < H; h++ {
		big[h*m+h%m] = 1
	}
	vb := make([]uint64, 2*m)
	headBits(vb, big, H, m, true, make([]int32, m), make([]bool, m))
	if vb[2*1] != 1<<1|1<<5|1<<9|1<<13|1<<17|1<<21|1<<25|1<<29|1<<33|1<<37|1<<41|1<<45|1<<49|1<<53|1<<57|1<<61 || vb[2*1+1] != 1<<(65-64)|1<<(69-64) {
		t.Errorf("token 1 over 70 heads: %x %x", vb[2], vb[3])
	}
}

func TestKVCrushAnchors(t *testing.T) {
	vec := make([]uint64, 16)
	headBits(vec, crushScores(), 4, 16, false, make([]int32, 16), make([]bool, 16))
	cands := []int32{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	want := map[string]string{"ones": "1111", "zeros": "0000", "alternate": "0101", "mean": "0000"}
	for kind, w := range want {
		a := make([]uint64, 1)
		anchorBits(a, kind, vec, 4, cands)
		if got := bitString(a, 0, 4); got != w {
			t.Errorf("anchor %s = %s, want %s", kind, got, w)
		}
	}
	// The mean anchor is the majority of the candidates: among 2..6 heads
	// 0, 1 and 2 are mostly set.
	a := make([]uint64, 1)
	anchorBits(a, "mean", vec, 4, []int32{2, 4, 5, 6, 10})
	if got := bitString(a, 0, 4); got != "1110" {
		t.Errorf("mean anchor of 2,4,5,6,10 = %s, want 1110", got)
	}
}

// TestKVCrushRoundRobin checks the representative picks on hand-made
// distances: one per bucket first (the most important of each), then
// round robin in increasing distance.
func TestKVCrushRoundRobin(t *testing.T) {
	imp := make([]float32, 16)
	for i := range imp {
		imp[i] = float32(i) // later tokens are more important
	}
	// Buckets by distance to ones: d0 {2,3}, d1 {4,5}, d2 {6..9},
	// d3 {10,11}, d4 {12..15}.
	dist := []uint16{0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4}
	cands := []int32{15, 2, 9, 4, 13, 6, 11, 3, 8, 12, 5, 7, 10, 14}
	cases := []struct {
		r    int
		want []int32
	}{
		{1, []int32{3}},
		{3, []int32{3, 5, 9}},
		{5, []int32{3, 5, 9, 11, 15}},
		{6, []int32{2, 3, 5, 9, 11, 15}},
		{9, []int32{2, 3, 4, 5, 8, 9, 10, 11, 15}},
		{11, []int32{2, 3, 4, 5, 7, 8, 9, 10, 11, 14, 15}},
		{13, []int32{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15}},
		{14, []int32{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{0, nil},
	}
	var rr roundRobin
	for _, c := range cases {
		got := slices.Clone(rr.pick(slices.Clone(cands), dist, imp, c.r, 4))
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("r=%d: picks %v, want %v", c.r, got, c.want)
		}
	}
}

// TestKVCrushSelect runs the whole selection on hand-made per-stream
// scores: the base keeps its top tokens and the representatives come
// from distinct behaviours, which the base alone would not keep.
func TestKVCrushSelect(t *testing.T) {
	cases := []struct {
		anchor string
		want   []int
	}{
		// Buckets to ones: d0 {2,3} d1 {4,5} d2 {6..9} d3 {10,11} d4
		// {12..15}; round 1 takes 3, 5, 9, 11, 15, round 2 starts with 2.
		{"ones", []int{0, 1, 2, 3, 5, 9, 11, 15}},
		{"zeros", []int{0, 1, 3, 5, 9, 11, 14, 15}},
		// To 0101: d1 {5,11} d2 {2,3,6,7,8,9,12..15} d3 {4,10}.
		{"alternate", []int{0, 1, 2, 3, 4, 5, 10, 11}},
		{"mean", []int{0, 1, 3, 5, 9, 11, 14, 15}},
	}
	for _, c := range cases {
		e := &KVCrush{Anchor: c.anchor, Threshold: "median", Scope: "layer"}
		mask := make([]bool, 16)
		e.crush(mask, crushScores(), 4, 2, 6)
		var got []int
		for i, k := range mask {
			if k {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("anchor %s keeps %v, want %v", c.anchor, got, c.want)
		}
	}
	// The base alone with the same 8 slots keeps the next most important
	// tokens instead: 4 and 5 (three heads), then 9 and 8.
	e := &KVCrush{Anchor: "ones", Threshold: "median"}
	mask := make([]bool, 16)
	e.crush(mask, crushScores(), 4, 8, 0)
	var got []int
	for i, k := range mask {
		if k {
			got = append(got, i)
		}
	}
	if want := []int{0, 1, 2, 3, 4, 5, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("base alone keeps %v, want %v", got, want)
	}
}

// crushPattern: four KV heads, one query head each. Every head's window
// queries (the last 8 of 128) point at the needle 50 (axis 1) and, with
// head-specific noise, spread the rest of their attention differently.
var crushPattern = pattern{
	key: func(l, h, p int) []float32 {
		if p == 50 {
			return spike(seed(l, 0, p), 1, 6)
		}
		return noise(seed(l, h, p), 10)
	},
	query: func(l, h, p int) []float32 {
		if p >= 120 {
			return spike(seed(l, h, p)+1<<50, 1, 3)
		}
		return noise(seed(l, h, p)+1<<50, 10)
	},
}

func crushRun(t *testing.T, e *KVCrush, pat pattern, heads, g, prompt, steps int) *rig {
	r := newRig(t, 1, heads, g, e, pat)
	r.prefill(prompt)
	for i := 0; i < steps; i++ {
		r.step()
	}
	return r
}

// crush wraps inner with KVCrush (alternate anchor, median threshold).
func crush(t testing.TB, inner kv.Evictor, split float64, scope string) *KVCrush {
	t.Helper()
	e, err := NewKVCrush(inner, split, "alternate", scope, "median")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func crushSnap(t testing.TB, budget int, split float64, scope string) *KVCrush {
	return crush(t, NewSnapKV(tokens(budget), 8, 7, "max"), split, scope)
}

func TestKVCrushOnSnapKVLayerScope(t *testing.T) {
	r := crushRun(t, crushSnap(t, 32, 0.75, "layer"), crushPattern, 4, 1, 128, 0)
	kept := r.checkAligned()[0]
	if len(kept) != 32 {
		t.Fatalf("keeps %d tokens, want 32", len(kept))
	}
	if !contains(kept, union(rangeInts(47, 54), rangeInts(120, 128))...) {
		t.Fatalf("lost the needle or the window: %v", kept)
	}
	// The base's own selection at its part of the budget is kept whole:
	// the window (8) and 0.75 of the other 24 tokens, 26 in all.
	base := crushRun(t, crushSnap(t, 26, 1, "layer"), crushPattern, 4, 1, 128, 0).checkAligned()[0]
	if len(base) != 26 || !contains(kept, base...) {
		t.Fatalf("base selection %v is not inside %v", base, kept)
	}
	// The representatives are not the base's next choices.
	more := crushRun(t, crushSnap(t, 32, 1, "layer"), crushPattern, 4, 1, 128, 0).checkAligned()[0]
	if slices.Equal(more, kept) {
		t.Fatalf("representatives equal the base's next tokens: %v", kept)
	}
	// Prefill only with base snapkv.
	r.step()
	if n := r.c.Stream(0, 0).Len(); n != 33 {
		t.Fatalf("decode step with base snapkv: %d tokens, want 33", n)
	}
}

// TestKVCrushOnSnapKVHeadScope: each stream keeps exactly what SnapKV
// alone keeps at the base's part of the budget (and with split 1 exactly
// what SnapKV keeps), and all streams add the
// same representatives, which SnapKV at the full budget would not pick.
func TestKVCrushOnSnapKVHeadScope(t *testing.T) {
	r := crushRun(t, crushSnap(t, 32, 0.75, "head"), crushPattern, 4, 1, 128, 0)
	// Base part: the window (8) and 0.75 of the other 24 tokens.
	snap := newRig(t, 1, 4, 1, NewSnapKV(tokens(26), 8, 7, "max"), crushPattern)
	snap.prefill(128)
	snap32 := newRig(t, 1, 4, 1, NewSnapKV(tokens(32), 8, 7, "max"), crushPattern)
	snap32.prefill(128)
	var reps []int
	same32 := true
	for h := 0; h < 4; h++ {
		kept, base := r.positions(0, h), snap.positions(0, h)
		if len(kept) != 32 || len(base) != 26 || !contains(kept, base...) {
			t.Fatalf("head %d keeps %v, not 32 tokens around SnapKV's %v", h, kept, base)
		}
		var extra []int
		for _, p := range kept {
			if !slices.Contains(base, p) {
				extra = append(extra, p)
			}
		}
		if h == 0 {
			reps = extra
		} else if !slices.Equal(extra, reps) {
			t.Fatalf("head %d's representatives %v differ from head 0's %v", h, extra, reps)
		}
		same32 = same32 && slices.Equal(kept, snap32.positions(0, h))
	}
	for h := 0; h < 4; h++ {
		one := crushRun(t, crushSnap(t, 32, 1, "head"), crushPattern, 4, 1, 128, 0)
		if !slices.Equal(one.positions(0, h), snap32.positions(0, h)) {
			t.Fatalf("split 1, head %d: %v, SnapKV %v", h, one.positions(0, h), snap32.positions(0, h))
		}
	}
	if len(reps) != 6 || same32 {
		t.Fatalf("representatives %v (want 6, not SnapKV's own next choices)", reps)
	}
	// Only tokens no head's base keeps become representatives.
	for h := 0; h < 4; h++ {
		for _, p := range reps {
			if slices.Contains(snap.positions(0, h), p) {
				t.Fatalf("representative %d is in head %d's base", p, h)
			}
		}
	}
}

func TestKVCrushOnH2O(t *testing.T) {
	for _, scope := range []string{"layer", "head"} {
		// Budget 12: the recent half (6), then 3 heavy hitters and 3
		// representatives.
		e := crush(t, NewH2O(tokens(12), 0.5), 0.5, scope)
		if e.Window() != -1 || !e.StepStats() {
			t.Fatal("base h2o needs all prompt queries and step statistics")
		}
		r := newRig(t, 1, 2, 2, e, h2oPattern)
		r.prefill(64)
		// After prefill, head scope keeps what H2O alone keeps at the base
		// part (9 = 6 recent + 3 heavy) in each stream.
		if scope == "head" {
			h := newRig(t, 1, 2, 2, NewH2O(tokens(9), 6.0/9), h2oPattern)
			h.prefill(64)
			for s := 0; s < 2; s++ {
				if !contains(r.positions(0, s), h.positions(0, s)...) {
					t.Fatalf("head %d keeps %v, not around H2O's %v", s, r.positions(0, s), h.positions(0, s))
				}
			}
		}
		// The representatives chosen after prefill are held while decoding.
		held := slices.Clone(e.held[0])
		if len(held) != 3 {
			t.Fatalf("%s scope: %d representatives held, want 3", scope, len(held))
		}
		for i := 0; i <= 10; i++ {
			for h := 0; h < 2; h++ {
				for _, p := range held {
					if !slices.Contains(r.positions(0, h), int(p)) {
						t.Fatalf("%s scope step %d: representative %d left head %d", scope, i, p, h)
					}
				}
			}
			recent := rangeInts(r.next-6, r.next)
			if scope == "layer" {
				kept := r.checkAligned()[0]
				// 6 recent tokens and 3 heavy hitters by the layer's
				// summed score (0 in both heads; 20 and 25 seen longer
				// than 40 and 45); 3 representatives.
				if len(kept) != 12 || !contains(kept, 0, 20, 25) || !contains(kept, recent...) {
					t.Fatalf("layer scope step %d keeps %v", i, kept)
				}
			} else {
				k0, k1 := r.positions(0, 0), r.positions(0, 1)
				if len(k0) != 12 || len(k1) != 12 || !contains(k0, append(h2oHeavy(0), recent...)...) || !contains(k1, append(h2oHeavy(1), recent...)...) {
					t.Fatalf("head scope step %d keeps %v and %v", i, k0, k1)
				}
				common := 0
				for _, p := range k0 {
					if slices.Contains(k1, p) {
						common++
					}
				}
				// The recent window, the shared sink and 3 representatives.
				if common < 6+1+3 {
					t.Fatalf("head scope step %d: streams share %d tokens: %v, %v", i, common, k0, k1)
				}
			}
			r.step()
		}
	}
}

// TestKVCrushFirstOverflow: a prompt that fits the budget is not
// selected; the first decode step over budget runs the selection.
func TestKVCrushFirstOverflow(t *testing.T) {
	e := crush(t, NewH2O(tokens(12), 0.5), 0.5, "head")
	r := newRig(t, 2, 2, 2, e, h2oPattern)
	r.prefill(8)
	for i := 0; i < 10; i++ {
		r.step()
		for l := 0; l < 2; l++ {
			if n := r.c.Stream(l, 0).Len(); n != min(12, 9+i) {
				t.Fatalf("step %d layer %d: %d tokens", i, l, n)
			}
		}
	}
	if len(e.held) != 2 || len(e.held[0]) != 3 || len(e.held[1]) != 3 {
		t.Fatalf("held %v, want 3 representatives in each of 2 layers", e.held)
	}
}

// TestKVCrushHeadScopeRollback: after a rollback the heads of a layer may
// hold different numbers of tokens; decoding goes on per head.
func TestKVCrushHeadScopeRollback(t *testing.T) {
	e := crush(t, NewH2O(tokens(12), 0.25), 0.5, "head")
	r := newRig(t, 1, 2, 2, e, h2oPattern)
	r.prefill(64)
	p0, p1 := r.positions(0, 0), r.positions(0, 1)
	// Cut where the heads hold different numbers of earlier tokens.
	below := func(ps []int, c int) int {
		n := 0
		for _, p := range ps {
			if p < c {
				n++
			}
		}
		return n
	}
	cut := -1
	for c := 1; c < 64; c++ {
		if below(p0, c) != below(p1, c) {
			cut = c
			break
		}
	}
	if cut < 0 {
		t.Fatalf("heads hold the same tokens: %v", p0)
	}
	r.c.Truncate(cut)
	r.next = cut
	if r.c.Stream(0, 0).Len() == r.c.Stream(0, 1).Len() {
		t.Fatalf("rollback to %d left both heads with %d tokens; the test wants them uneven", cut, r.c.Stream(0, 0).Len())
	}
	for i := 0; i < 20; i++ {
		r.step()
		for h := 0; h < 2; h++ {
			if n := r.c.Stream(0, h).Len(); n > 12 {
				t.Fatalf("step %d head %d holds %d tokens", i, h, n)
			}
		}
	}
}

// TestKVCrushWrapsAnyScorer: KVCrush over each ranking evictor keeps the
// evictor's budget after the prompt (per layer with PyramidKV), holds it
// at every step over an evictor that evicts at every step, keeps every
// generated token over one that does not, keeps its representatives while
// decoding, and in head scope keeps in each stream what the evictor alone
// keeps at the part of the budget Split gives it.
func TestKVCrushWrapsAnyScorer(t *testing.T) {
	const layers, heads, n, budget = 3, 4, 96, 24
	cases := []struct {
		name string
		base func(b int) *Ranked
		// part is the budget at which the evictor alone keeps what
		// KVCrush's base part keeps (its protected tokens and
		// round(0.75 × the rest)), or 0 to skip that check.
		part int
	}{
		{"tova", func(b int) *Ranked { return NewTOVA(tokens(b)) }, 0},
		{"knorm", func(b int) *Ranked { return NewKNorm(tokens(b)) }, 18},
		{"h2o", func(b int) *Ranked { return NewH2O(tokens(b), 0.5) }, 0},
		{"snapkv", func(b int) *Ranked { return NewSnapKV(tokens(b), 8, 7, "max") }, 8 + 12},
		{"pyramidkv", func(b int) *Ranked { return NewPyramidKV(tokens(b), 8, 7, "max", 20) }, 0},
		{"streaming", func(b int) *Ranked { return NewStreaming(tokens(b), 4) }, 0},
	}
	for _, c := range cases {
		for _, scope := range []string{"head", "layer"} {
			base := c.base(budget)
			e := crush(t, base, 0.75, scope)
			want := base.Bound()
			want.Rolling = false // KVCrush selects from the whole prompt
			if e.Window() != base.Window() || e.StepStats() != base.StepStats() || e.Bound() != want {
				t.Fatalf("%s+kvcrush: window, step stats or bound differ from the evictor's", c.name)
			}
			r := newRig(t, layers, heads, 2, e, spreadPattern)
			r.prefill(n)
			var alone *rig
			if c.part > 0 && scope == "head" {
				alone = newRig(t, layers, heads, 2, c.base(c.part), spreadPattern)
				alone.prefill(n)
			}
			for l := 0; l < layers; l++ {
				want := base.LayerBudget(budget, n, l, layers)
				for h := 0; h < heads; h++ {
					p := r.positions(l, h)
					if len(p) != want {
						t.Fatalf("%s+kvcrush %s scope: layer %d head %d keeps %d tokens, want %d", c.name, scope, l, h, len(p), want)
					}
					if alone != nil && !contains(p, alone.positions(l, h)...) {
						t.Fatalf("%s+kvcrush: layer %d head %d keeps %v, not around %s's own %v", c.name, l, h, p, c.name, alone.positions(l, h))
					}
				}
			}
			if scope == "layer" {
				r.checkAligned()
			}
			// Every layer holds representatives, except where PyramidKV's
			// top layers select too few tokens to split.
			held := make([][]int32, layers)
			for l := range held {
				held[l] = slices.Clone(e.held[l])
				if len(held[l]) == 0 && (c.name != "pyramidkv" || l == 0) {
					t.Fatalf("%s+kvcrush %s scope: layer %d holds no representatives", c.name, scope, l)
				}
			}
			for i := 1; i <= 12; i++ {
				r.step()
				for l := 0; l < layers; l++ {
					want := base.LayerBudget(budget, n, l, layers)
					if !base.Steady {
						want += i
					}
					for h := 0; h < heads; h++ {
						p := r.positions(l, h)
						if len(p) != want {
							t.Fatalf("%s+kvcrush %s scope step %d: layer %d head %d holds %d tokens, want %d", c.name, scope, i, l, h, len(p), want)
						}
						for _, x := range held[l] {
							if !slices.Contains(p, int(x)) {
								t.Fatalf("%s+kvcrush %s scope step %d: representative %d left layer %d head %d", c.name, scope, i, x, l, h)
							}
						}
					}
				}
			}
		}
	}
}
