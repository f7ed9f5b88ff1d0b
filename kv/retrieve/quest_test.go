package retrieve

import (
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
	ggml "github.com/kvgo/kvgo/quant"
)

// bound is Quest's score of page p computed from its decoded keys: for
// each head of the group Σ_d max(q_d·max_d, q_d·min_d), summed, with the
// per-channel minima and maxima rounded outward to halves as the cache
// keeps them (kv.Stream.PageBounds).
func bound(s *kv.Stream, p int, q []float32, g int) float64 {
	d := s.Dim()
	first := 0
	for i := 0; i < p; i++ {
		first += s.PageLen(i)
	}
	lo, hi := make([]float64, d), make([]float64, d)
	k, v := make([]float32, d), make([]float32, s.ValueDim())
	for t := 0; t < s.PageLen(p); t++ {
		s.Vector(first+t, k, v)
		for c, x := range k {
			if t == 0 || float64(x) < lo[c] {
				lo[c] = float64(x)
			}
			if t == 0 || float64(x) > hi[c] {
				hi[c] = float64(x)
			}
		}
	}
	for c := range lo {
		lo[c] = float64(ggml.F16ToF32(ggml.F32ToF16Down(float32(lo[c]))))
		hi[c] = float64(ggml.F16ToF32(ggml.F32ToF16Up(float32(hi[c]))))
	}
	var sum float64
	for j := 0; j < g; j++ {
		for c := 0; c < d; c++ {
			x := float64(q[j*d+c])
			sum += max(x*lo[c], x*hi[c])
		}
	}
	return sum
}

// TestQuestChoosesTheBestBoundedPages: at every decode step Quest reads the
// sink page, the newest page and the budget's number of pages of highest
// upper bound (computed here from the decoded keys), every other page
// stays unread but in the cache, and attention equals naive attention over
// exactly the tokens read.
func TestQuestChoosesTheBestBoundedPages(t *testing.T) {
	const d, g, T, budget = 16, 2, 700, 256
	shape := kv.Shape{Layers: 1, KVHeads: 2, HeadDim: d}
	qs, err := NewQuest(kv.Budget{Tokens: budget}, 32, 32, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Selector: qs, last: map[[2]int][]bool{}}
	r := newRig(t, shape, g, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: rec})
	r.prompt(T, nil, nil)
	for step := 0; step < 12; step++ {
		p := r.next
		if err := r.c.Begin([]int32{p}); err != nil {
			t.Fatal(err)
		}
		r.c.Store(0, r.randv(shape.KVHeads*d, 1), r.randv(shape.KVHeads*d, 1))
		for h := 0; h < shape.KVHeads; h++ {
			q := r.randv(g*d, 1)
			out := make([]float32, g*d)
			r.c.Attend(0, h, q, g, p, out, r.sc)
			s := r.c.Stream(0, h)
			read := rec.last[[2]int{0, h}]
			if s.Len() != int(p)+1 {
				t.Fatalf("the selector deleted tokens: %d held of %d", s.Len(), p+1)
			}
			// Always read: the sink page and the pages holding the newest
			// 32 tokens (two when the last page holds fewer).
			last := len(read) - 1
			if s.PageLen(last) < 32 {
				last--
			}
			spent := s.PageLen(0)
			for i := last; i < len(read); i++ {
				spent += s.PageLen(i)
				if !read[i] {
					t.Fatalf("step %d head %d: recent page %d is not read", step, h, i)
				}
			}
			if !read[0] {
				t.Fatalf("step %d head %d: the sink page is not read", step, h)
			}
			n := 0
			worstIn, bestOut := math.Inf(1), math.Inf(-1)
			for i := 1; i < last; i++ {
				b := bound(s, i, q, g)
				if read[i] {
					n++
					worstIn = min(worstIn, b)
				} else {
					bestOut = max(bestOut, b)
				}
			}
			if want := (budget - spent) / 32; n != want {
				t.Fatalf("step %d head %d: %d pages chosen, want %d", step, h, n, want)
			}
			if worstIn < bestOut-1e-4 {
				t.Fatalf("step %d head %d: a page of bound %g was read and one of %g was not", step, h, worstIn, bestOut)
			}
			want := naiveMasked(s, q, g, tokenMask(s, read))
			for i := range out {
				if math.Abs(float64(out[i]-want[i])) > 1e-4 {
					t.Fatalf("step %d head %d: attention %g, naive over the chosen pages %g", step, h, out[i], want[i])
				}
			}
		}
		r.c.End()
		r.next++
	}
}

// TestQuestFindsTheNeedle: a key planted in the middle of a long stream,
// aligned with the decode queries, is read at a budget of 8 pages out of
// 32, and attention is then close to full attention; the window selector
// at the same budget misses it.
func TestQuestFindsTheNeedle(t *testing.T) {
	const d, g, T, needle = 16, 2, 1024, 517
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
	dir := make([]float32, d)
	dir[3] = 1
	key := func(r *rig) func(_, _ int, p int32) []float32 {
		return func(_, _ int, p int32) []float32 {
			k := r.randv(d, 0.3)
			if p == needle {
				for c := range k {
					k[c] = 12 * dir[c]
				}
			}
			return k
		}
	}
	query := func(r *rig) func(_, _ int, _ int32) []float32 {
		return func(_, _ int, _ int32) []float32 {
			q := r.randv(g*d, 0.1)
			for j := 0; j < g; j++ {
				q[j*d+3] += 4
			}
			return q
		}
	}
	run := func(sel kv.Selector) []float32 {
		r := newRig(t, shape, g, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: sel})
		r.prompt(T, key(r), nil)
		q := query(r)(0, 0, 0)
		r.c.Begin([]int32{T})
		r.c.Store(0, r.randv(d, 0.3), r.randv(d, 1))
		out := make([]float32, g*d)
		r.c.Attend(0, 0, q, g, T, out, r.sc)
		r.c.End()
		return out
	}
	full := run(nil)
	qs, _ := NewQuest(kv.Budget{Tokens: 256}, 32, 32, 32, 0)
	got := run(qs)
	win := run(&Window{Pages: 8})
	dist := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			s += float64(a[i]-b[i]) * float64(a[i]-b[i])
		}
		return math.Sqrt(s)
	}
	if e, w := dist(got, full), dist(win, full); e > 0.05*w || e > 0.05 {
		t.Fatalf("quest is %.4f from full attention, the window %.4f: the needle was not read", e, w)
	}
}

// TestQuestBudgetCountsEveryToken: with KIVI (whose unsealed F16 tail is
// always read) and a fractional budget of the prompt, a decode step reads
// at most the budget and more than the budget less two pages; pages of 64
// tokens join two cache pages; the dense layers read everything.
func TestQuestBudgetCountsEveryToken(t *testing.T) {
	const d, g, T = 16, 1, 700
	kk, kvv, err := kvquant.NewKIVI(4, 32, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []int{32, 64} {
		shape := kv.Shape{Layers: 3, KVHeads: 1, HeadDim: d}
		qs, err := NewQuest(kv.Budget{Fraction: 0.5}, page, 64, 100, 1)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{Selector: qs, last: map[[2]int][]bool{}}
		r := newRig(t, shape, g, kv.Config{K: kk, V: kvv, Selector: rec})
		r.prompt(T, nil, nil)
		budget := kv.Budget{Fraction: 0.5}.Resolve(T)
		for step := 0; step < 40; step++ {
			r.batch([]int32{r.next}, nil, nil)
			for l := 0; l < shape.Layers; l++ {
				s := r.c.Stream(l, 0)
				read := rec.last[[2]int{l, 0}]
				n := readTokens(s, read, pagesTokens(t, s))
				if l == 0 {
					if n != s.Len() {
						t.Fatalf("page %d: dense layer 0 read %d of %d tokens", page, n, s.Len())
					}
					continue
				}
				// ⌊(budget − always read) / page⌋ Quest pages, one of
				// which may be short (the run before the recent window).
				if n > budget || n <= budget-2*page {
					t.Fatalf("page %d step %d layer %d: read %d tokens for a budget of %d", page, step, l, n, budget)
				}
			}
		}
		st := qs.Reads()
		if st.Calls != 40*3 || st.Read >= st.Held {
			t.Fatalf("page %d: read statistics %+v", page, st)
		}
	}
}

// TestQuestDoesNotAllocate: a decode step's Select allocates nothing once
// its scratch has grown.
func TestQuestDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops scratch under the race detector")
	}
	const d, g = 16, 2
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
	qs, _ := NewQuest(kv.Budget{Tokens: 128}, 32, 32, 32, 0)
	r := newRig(t, shape, g, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: qs})
	r.prompt(900, nil, nil)
	r.c.Begin([]int32{r.next})
	r.c.Store(0, r.randv(d, 1), r.randv(d, 1))
	q := r.randv(g*d, 1)
	out := make([]float32, g*d)
	r.c.Attend(0, 0, q, g, r.next, out, r.sc)
	if a := testing.AllocsPerRun(50, func() { r.c.Attend(0, 0, q, g, r.next, out, r.sc) }); a != 0 {
		t.Fatalf("a decode step with quest allocates %.1f times", a)
	}
	r.c.End()
}

// TestQuestParallelStreams: Select runs for many streams at once (as the
// model's workers call it, each with its own attention scratch) and gives
// the same outputs as one at a time; run with -race.
func TestQuestParallelStreams(t *testing.T) {
	const d, g, H = 16, 2, 8
	shape := kv.Shape{Layers: 1, KVHeads: H, HeadDim: d}
	qs, _ := NewQuest(kv.Budget{Tokens: 128}, 32, 32, 32, 0)
	r := newRig(t, shape, g, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: qs})
	r.prompt(800, nil, nil)
	r.c.Begin([]int32{r.next})
	r.c.Store(0, r.randv(H*d, 1), r.randv(H*d, 1))
	q := r.randv(H*g*d, 1)
	seq := make([]float32, H*g*d)
	for h := 0; h < H; h++ {
		r.c.Attend(0, h, q[h*g*d:(h+1)*g*d], g, r.next, seq[h*g*d:(h+1)*g*d], r.sc)
	}
	par := make([]float32, H*g*d)
	var wg sync.WaitGroup
	for h := 0; h < H; h++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := kv.NewScratch(g)
			for range 20 {
				r.c.Attend(0, h, q[h*g*d:(h+1)*g*d], g, r.next, par[h*g*d:(h+1)*g*d], sc)
			}
		}()
	}
	wg.Wait()
	r.c.End()
	for i := range seq {
		if seq[i] != par[i] {
			t.Fatalf("output %d: %g in parallel, %g alone", i, par[i], seq[i])
		}
	}
}

// TestQuestRefusesBadSettings: a page that is not a whole number of cache
// pages, or no budget, is an error naming the setting.
func TestQuestRefusesBadSettings(t *testing.T) {
	if _, err := NewQuest(kv.Budget{Tokens: 512}, 48, 32, 32, 2); err == nil {
		t.Fatal("page=48 accepted")
	}
	if _, err := NewQuest(kv.Budget{}, 32, 32, 32, 2); err == nil {
		t.Fatal("a zero budget accepted")
	}
	if _, err := NewQuest(kv.Budget{Tokens: 512}, 32, 32, 0, 2); err == nil {
		t.Fatal("recent=0 accepted: the newest token would not be read")
	}
}

// TestTopK: the quickselect keeps the k best (ties to the larger index)
// for every k, against sorting.
func TestTopK(t *testing.T) {
	r := newRig(t, kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 1}, 1, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}})
	for n := 1; n < 70; n += 7 {
		score := r.randv(n, 1)
		for i := 0; i < n; i += 3 {
			score[i] = 0.5 // ties
		}
		for k := 0; k <= n; k++ {
			idx := make([]int32, n)
			for i := range idx {
				idx[i] = int32(i)
			}
			topK(score, idx, k)
			in := make([]bool, n)
			for _, i := range idx[:k] {
				in[i] = true
			}
			for a := 0; a < n; a++ {
				for b := 0; b < n; b++ {
					if in[a] && !in[b] && better(score, int32(b), int32(a)) {
						t.Fatalf("n=%d k=%d: %d kept over the better %d", n, k, a, b)
					}
				}
			}
		}
	}
}

// TestBudgetsBeyondTheContext: a token budget larger than the cache's
// context is refused when the cache is made, with the numbers; one that
// fits, and any fraction, are accepted.
func TestBudgetsBeyondTheContext(t *testing.T) {
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 8}
	q, _ := NewQuest(kv.Budget{Tokens: 4096}, 32, 32, 32, 2)
	a, _ := NewActQKV(kv.Budget{Tokens: 4096}, 64, 512, 256, 4, true, 0)
	for _, sel := range []kv.Selector{q, a} {
		_, err := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: sel}, 2048)
		if err == nil || !strings.Contains(err.Error(), "4096") || !strings.Contains(err.Error(), "2048") {
			t.Fatalf("%s: budget 4096 in a context of 2048: %v", sel.Name(), err)
		}
		if _, err := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: sel}, 4096); err != nil {
			t.Fatalf("%s: budget 4096 in a context of 4096: %v", sel.Name(), err)
		}
	}
	f, _ := NewQuest(kv.Budget{Fraction: 1}, 32, 32, 32, 2)
	if _, err := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: f}, 16); err != nil {
		t.Fatalf("a fractional budget refused: %v", err)
	}
}

// TestQuestReadsPagesBeyondHalfRange: a key beyond the half range has an
// infinite bound, and a query whose channel there is zero would score its
// page NaN (0·∞), which no ranking can place; Quest reads such a page.
func TestQuestReadsPagesBeyondHalfRange(t *testing.T) {
	const d, T = 16, 640
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
	qs, err := NewQuest(kv.Budget{Tokens: 192}, 32, 32, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Selector: qs, last: map[[2]int][]bool{}}
	r := newRig(t, shape, 1, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: rec})
	huge := map[int32]float32{10*32 + 5: 1e5, 12*32 + 7: -1e5}
	r.prompt(T, func(_, _ int, p int32) []float32 {
		k := r.randv(d, 1)
		if x, ok := huge[p]; ok {
			k[0] = x
		}
		return k
	}, nil)
	for step := 0; step < 4; step++ {
		p := r.next
		if err := r.c.Begin([]int32{p}); err != nil {
			t.Fatal(err)
		}
		r.c.Store(0, r.randv(d, 1), r.randv(d, 1))
		q := r.randv(d, 1)
		q[0] = 0
		r.c.Attend(0, 0, q, 1, p, r.out, r.sc)
		read := rec.last[[2]int{0, 0}]
		if !read[10] || !read[12] {
			t.Fatalf("step %d: pages with keys beyond the half range read: %v, %v", step, read[10], read[12])
		}
		for i, x := range r.out {
			if x != x {
				t.Fatalf("step %d: output %d is NaN", step, i)
			}
		}
		r.c.End()
		r.next++
	}
}
