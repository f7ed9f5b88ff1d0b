package retrieve

import (
	"math"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// TestLocalAttentionIsNaive: the cache sums, per token and query head, the
// attention each prompt query gives to the tokens at most LocalWindow
// positions before it, as a naive softmax over every visible token does;
// the sums stay aligned with the tokens through deletion and fork.
func TestLocalAttentionIsNaive(t *testing.T) {
	const d, g, T, win = 8, 2, 150, 40
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
	a, _ := NewActQKV(kv.Budget{Tokens: 64}, 0, win, 64, 4, true, 0)
	r := newRig(t, shape, g, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: a})
	qs := map[int32][]float32{}
	r.prompt(T, nil, func(_, _ int, p int32) []float32 {
		qs[p] = r.randv(g*d, 1)
		return qs[p]
	})
	s := r.c.Stream(0, 0)
	want := make([]float64, T*g)
	k, v := make([]float32, d), make([]float32, d)
	scale := 1 / math.Sqrt(d)
	for p := int32(0); p < T; p++ {
		for j := 0; j < g; j++ {
			logits := make([]float64, p+1)
			m := math.Inf(-1)
			for i := range logits {
				s.Vector(i, k, v)
				for c := range k {
					logits[i] += float64(qs[p][j*d+c]) * float64(k[c])
				}
				logits[i] *= scale
				m = max(m, logits[i])
			}
			var z float64
			for i := range logits {
				logits[i] = math.Exp(logits[i] - m)
				z += logits[i]
			}
			for i := max(0, int(p)-win); i <= int(p); i++ {
				want[i*g+j] += logits[i] / z
			}
		}
	}
	loc, lg := s.LocalAttention()
	if lg != g || len(loc) != T*g {
		t.Fatalf("local attention of %d values for %d heads, want %d for %d", len(loc), lg, T*g, g)
	}
	for i := range want {
		if math.Abs(float64(loc[i])-want[i]) > 1e-4 {
			t.Fatalf("token %d head %d: local attention %g, naive %g", i/g, i%g, loc[i], want[i])
		}
	}
	f := r.c.Fork()
	keep := make([]bool, T)
	for i := range keep {
		keep[i] = i%3 != 0
	}
	s.Keep(keep)
	loc, _ = s.LocalAttention()
	w := 0
	for i := range keep {
		if keep[i] {
			for j := 0; j < g; j++ {
				if float64(loc[w*g+j]) != float64(float32(want[i*g+j])) && math.Abs(float64(loc[w*g+j])-want[i*g+j]) > 1e-4 {
					t.Fatalf("after deletion, token %d lost its local attention", i)
				}
			}
			w++
		}
	}
	if fl, _ := f.Stream(0, 0).LocalAttention(); len(fl) != T*g {
		t.Fatalf("the fork holds %d local attention values, want %d", len(fl), T*g)
	}
}

// TestActQKVWindowWeights: a window's Activation Bias weighs most the
// query furthest from the layer's running statistics; the weights sum to
// one; the running statistics are the exact mean and population variance
// of every query merged so far.
func TestActQKVWindowWeights(t *testing.T) {
	const D = 4
	rows := []float32{
		1, 0, 0, 1,
		1, 0.1, 0, 1,
		0.9, 0, 0.1, 1,
		8, -5, 3, 1, // the outlier
	}
	mean, vari := make([]float64, D), make([]float64, D)
	n := mergeStats(0, mean, vari, rows[:2*D], []int{0, 1}, D, 1e9)
	n = mergeStats(n, mean, vari, rows, []int{2, 3}, D, 1e9)
	if n != 4 {
		t.Fatalf("count %g after 4 tokens", n)
	}
	for d := 0; d < D; d++ {
		var m, v float64
		for t := 0; t < 4; t++ {
			m += float64(rows[t*D+d]) / 4
		}
		for t := 0; t < 4; t++ {
			e := float64(rows[t*D+d]) - m
			v += e * e / 4
		}
		if math.Abs(mean[d]-m) > 1e-9 || math.Abs(vari[d]-v) > 1e-9 {
			t.Fatalf("dim %d: running mean %g variance %g, want %g %g", d, mean[d], vari[d], m, v)
		}
	}
	w := make([]float64, 4)
	activationWeights(w, rows, []int{0, 1, 2, 3}, D, mean, vari)
	var sum float64
	for _, x := range w {
		sum += x
	}
	if math.Abs(sum-1) > 1e-12 || w[3] < 0.5 || w[3] < 3*w[0] {
		t.Fatalf("weights %v: the outlier should dominate and they should sum to 1", w)
	}
	// A constant dimension (variance 0) contributes nothing, not NaN.
	flat := []float32{1, 1, 1, 1}
	mv, vv := make([]float64, 1), make([]float64, 1)
	mergeStats(0, mv, vv, flat, []int{0, 1, 2, 3}, 1, 1e9)
	activationWeights(w, flat, []int{0, 1, 2, 3}, 1, mv, vv)
	for _, x := range w {
		if x != 0.25 {
			t.Fatalf("weights of identical queries %v, want 1/4 each", w)
		}
	}
}

// TestActQKVCutoffSharesTheBudget: a layer whose scores have the larger
// mean entropy takes the larger share of what the step has left, every
// share is clamped to [1, 2·topk], and the split is uniform until every
// layer has an entropy.
func TestActQKVCutoffSharesTheBudget(t *testing.T) {
	a, _ := NewActQKV(kv.Budget{Tokens: 512}, 32, 64, 256, 4, true, 0)
	a.layers = []*actLayer{{streams: make([]actStream, 1)}, {streams: make([]actStream, 1)}, {streams: make([]actStream, 1)}}
	a.heads = []actHead{{last: 3}}
	a.ready.Store(true)
	if k := a.share(0, 0, 30, 10); k != 10 {
		t.Fatalf("uniform split gives %d of 30 to the first of 3 layers, want 10", k)
	}
	for _, e := range []float32{0.9, 0.9} {
		a.layers[0].streams[0].push(e)
	}
	a.layers[1].streams[0].push(0.3)
	a.layers[2].streams[0].push(0.3)
	// ω_0 = 0.9 / 1.5 of 30 = 18, clamped to 2·topk = 16.
	if k := a.share(0, 0, 30, 8); k != 16 {
		t.Fatalf("layer 0 takes %d, want 16 (18 clamped)", k)
	}
	if k := a.share(1, 0, 14, 8); k != 7 {
		t.Fatalf("layer 1 takes %d of 14, want 7", k)
	}
	if k := a.share(2, 0, 0, 8); k != 1 {
		t.Fatalf("the last layer takes %d with nothing left, want 1", k)
	}
	// The history keeps the last 100.
	st := &a.layers[1].streams[0]
	for range 150 {
		st.push(0.5)
	}
	if st.entN != actHistory || math.Abs(st.mean()-0.5) > 1e-6 {
		t.Fatalf("history of %d with mean %g, want 100 and 0.5", st.entN, st.mean())
	}
}

// TestActQKVReadsItsBudget: over decode steps, every stream reads its
// sinks and local window, each layer between 1 and 2·topk chosen pages,
// and the layers of a KV head together about their share of the budget;
// a page that the prompt's queries attended and the decode query points
// at is read; the representatives count in the cache's bytes.
func TestActQKVReadsItsBudget(t *testing.T) {
	const d, g, T, needle = 16, 2, 1200, 390
	const budget = 320 // scaled: 32 sink tokens, 96 local, topk = 6 pages
	shape := kv.Shape{Layers: 3, KVHeads: 2, HeadDim: d}
	a, _ := NewActQKV(kv.Budget{Tokens: budget}, 64, 512, 256, 4, true, 0)
	rec := &recorder{Selector: a, last: map[[2]int][]bool{}}
	r := newRig(t, shape, g, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: &promptRecorder{rec, a}})
	dir := make([]float32, d)
	dir[5] = 1
	// The needle's key points along dir; the queries just after it (and
	// the decode queries) too, so it gets local attention.
	r.prompt(T, func(_, _ int, p int32) []float32 {
		k := r.randv(d, 0.3)
		if p == needle {
			k[5] = 6
		}
		return k
	}, func(_, _ int, p int32) []float32 {
		q := r.randv(g*d, 0.3)
		if p > needle && p < needle+20 {
			for j := 0; j < g; j++ {
				q[j*d+5] = 3
			}
		}
		return q
	})
	if a.Bytes() != 0 && r.c.Bytes() <= a.Bytes() {
		t.Fatal("cache bytes do not include the selector's")
	}
	for step := 0; step < 6; step++ {
		r.batch([]int32{r.next}, nil, func(_, _ int, _ int32) []float32 {
			q := r.randv(g*d, 0.3)
			for j := 0; j < g; j++ {
				q[j*d+5] = 3
			}
			return q
		})
		for h := 0; h < shape.KVHeads; h++ {
			total := 0
			for l := 0; l < shape.Layers; l++ {
				s := r.c.Stream(l, h)
				read := rec.last[[2]int{l, h}]
				if !read[0] || !read[len(read)-1] || !read[len(read)-3] {
					t.Fatalf("step %d layer %d head %d: sinks or local window not read", step, l, h)
				}
				if !read[needle/32] {
					t.Fatalf("step %d layer %d head %d: the needle's page is not read", step, l, h)
				}
				n := readTokens(s, read, pagesTokens(t, s))
				chosen := 0
				for i := 1; i < len(read)-4; i++ {
					if read[i] {
						chosen++
					}
				}
				if chosen < 1 || chosen > 12 {
					t.Fatalf("step %d layer %d head %d: %d pages chosen, want 1..12", step, l, h, chosen)
				}
				total += n
			}
			if total > 3*budget+3*32 || total < 3*budget-3*64 {
				t.Fatalf("step %d head %d: the layers read %d tokens, budget %d each", step, h, total, budget)
			}
		}
	}
	if a.Bytes() == 0 {
		t.Fatal("the representatives hold no bytes")
	}
}

// promptRecorder passes the prompt on to the ActQKV under a recorder.
type promptRecorder struct {
	*recorder
	a *ActQKV
}

func (p *promptRecorder) LocalWindow() int { return p.a.LocalWindow() }
func (p *promptRecorder) ReadPrompt(v *kv.SelectView, q []float32, g int, qpos int32) {
	p.a.ReadPrompt(v, q, g, qpos)
}
func (p *promptRecorder) EndPrompt(last bool) { p.a.EndPrompt(last) }
func (p *promptRecorder) Bytes() int64        { return p.a.Bytes() }

// TestActQKVActivationChangesOnlyTheCutoff: with the activation on and off
// (the mean query of InfLLM) the prompt's windows give different
// entropies, and a decode step's own scores are the same (P = q).
func TestActQKVActivationChangesOnlyTheCutoff(t *testing.T) {
	const d, g, T = 16, 2, 1100
	shape := kv.Shape{Layers: 2, KVHeads: 1, HeadDim: d}
	var hist [2][2]float64
	for i, on := range []bool{true, false} {
		a, _ := NewActQKV(kv.Budget{Tokens: 256}, 64, 512, 128, 4, on, 0)
		r := newRig(t, shape, g, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: a})
		r.prompt(T, nil, func(_, _ int, p int32) []float32 {
			q := r.randv(g*d, 1)
			if p%97 == 0 {
				for c := range q {
					q[c] *= 6 // an outlier the activation weighs
				}
			}
			return q
		})
		for l := 0; l < 2; l++ {
			st := &a.layers[l].streams[0]
			if st.entN == 0 {
				t.Fatalf("activation %v: layer %d has no entropy from the prompt's windows", on, l)
			}
			hist[i][l] = st.mean()
		}
	}
	if hist[0] == hist[1] {
		t.Fatalf("the activation did not change the windows' entropies: %v", hist)
	}
}

// TestActQKVDoesNotAllocate: a decode step's Select allocates nothing once
// the representatives are computed.
func TestActQKVDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops scratch under the race detector")
	}
	const d, g = 16, 2
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
	a, _ := NewActQKV(kv.Budget{Tokens: 256}, 64, 512, 256, 4, true, 0)
	r := newRig(t, shape, g, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: a})
	r.prompt(900, nil, nil)
	r.c.Begin([]int32{r.next})
	r.c.Store(0, r.randv(d, 1), r.randv(d, 1))
	q := r.randv(g*d, 1)
	out := make([]float32, g*d)
	r.c.Attend(0, 0, q, g, r.next, out, r.sc)
	if n := testing.AllocsPerRun(50, func() { r.c.Attend(0, 0, q, g, r.next, out, r.sc) }); n != 0 {
		t.Fatalf("a decode step with actqkv allocates %.1f times", n)
	}
	r.c.End()
}

// TestActQKVForksRunApart: a fork has its own selector state; the two
// caches decode at once (run with -race) and each gives the outputs it
// gives alone.
func TestActQKVForksRunApart(t *testing.T) {
	const d, g, H = 16, 2, 2
	shape := kv.Shape{Layers: 2, KVHeads: H, HeadDim: d}
	a, _ := NewActQKV(kv.Budget{Tokens: 192}, 64, 512, 256, 4, true, 0)
	r := newRig(t, shape, g, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: a})
	r.prompt(700, nil, nil)
	f := r.c.Fork()
	if f.Config().Selector == r.c.Config().Selector {
		t.Fatal("the fork shares the selector")
	}
	q := r.randv(H*g*d, 1)
	k, v := r.randv(H*d, 1), r.randv(H*d, 1)
	run := func(c *kv.Cache, out []float32) {
		sc := kv.NewScratch(g)
		for step := int32(0); step < 4; step++ {
			p := r.next + step
			if err := c.Begin([]int32{p}); err != nil {
				panic(err)
			}
			for l := 0; l < 2; l++ {
				c.Store(l, k, v)
				for h := 0; h < H; h++ {
					c.Attend(l, h, q[h*g*d:(h+1)*g*d], g, p, out[h*g*d:(h+1)*g*d], sc)
				}
			}
			c.End()
		}
	}
	alone := make([]float32, H*g*d)
	g2 := r.c.Fork()
	run(g2, alone)
	o1, o2 := make([]float32, H*g*d), make([]float32, H*g*d)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); run(r.c, o1) }()
	go func() { defer wg.Done(); run(f, o2) }()
	wg.Wait()
	for i := range alone {
		if o1[i] != alone[i] || o2[i] != alone[i] {
			t.Fatalf("output %d: %g and %g decoding together, %g alone", i, o1[i], o2[i], alone[i])
		}
	}
}

// TestActQKVRefusesBadSettings: settings out of range are errors.
func TestActQKVRefusesBadSettings(t *testing.T) {
	for _, c := range []struct{ sinks, local, window, repr, dense int }{
		{-1, 512, 256, 4, 0}, {64, 0, 256, 4, 0}, {64, 512, 0, 4, 0}, {64, 512, 256, 0, 0}, {64, 512, 256, 33, 0}, {64, 512, 256, 4, -1},
	} {
		if _, err := NewActQKV(kv.Budget{Tokens: 2048}, c.sinks, c.local, c.window, c.repr, true, c.dense); err == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
	if _, err := NewActQKV(kv.Budget{}, 64, 512, 256, 4, true, 0); err == nil {
		t.Fatal("no budget accepted")
	}
}

// TestActQKVGivesBackThePromptRows: once a prompt of whole windows is
// weighed, the selector holds no prompt queries, only what it keeps per
// page.
func TestActQKVGivesBackThePromptRows(t *testing.T) {
	const d, g = 16, 2
	shape := kv.Shape{Layers: 2, KVHeads: 1, HeadDim: d}
	a, _ := NewActQKV(kv.Budget{Tokens: 128}, 64, 512, 256, 4, true, 0)
	r := newRig(t, shape, g, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: a})
	r.prompt(512, nil, nil)
	for _, l := range a.layers {
		if cap(l.rows) != 0 {
			t.Fatalf("%d floats of prompt queries held after a prompt of two whole windows", cap(l.rows))
		}
	}
	// A prompt that ends within a window: its rows go when it ends, not
	// at the first decode step (a reply of one token has none).
	a2, _ := NewActQKV(kv.Budget{Tokens: 128}, 64, 512, 256, 4, true, 0)
	r2 := newRig(t, shape, g, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}, Selector: a2})
	r2.prompt(300, nil, nil)
	for _, l := range a2.layers {
		if cap(l.rows) != 0 || l.pending.Load() {
			t.Fatalf("%d floats of prompt queries held after the prompt ended mid-window", cap(l.rows))
		}
	}
	r.batch([]int32{r.next}, nil, nil)
	if b := a.Bytes(); b == 0 || b > int64(2*512/32*g*d*2+4096) {
		t.Fatalf("the selector holds %d bytes for 2 layers of 16 pages", b)
	}
}

// pairRoPE is a rotary encoding for tests: value pair (2i, 2i+1) turns by
// delta·θ_i, θ_i = 0.7^i.
type pairRoPE struct{}

func (pairRoPE) Rotate(_ int, x []float32, delta int32) {
	th := 1.0
	for i := 0; i+1 < len(x); i += 2 {
		s, c := math.Sincos(float64(delta) * th)
		a, b := float64(x[i]), float64(x[i+1])
		x[i], x[i+1] = float32(a*c-b*s), float32(a*s+b*c)
		th *= 0.7
	}
}

// TestActQKVScoresInOneFrame: with the model's RoPE, the page whose keys
// the decode query would attend most from Local positions away is read
// however far back it sits: representatives are compared at position 0
// and the query Local positions after them, as InfLLM places retrieved
// blocks (post-RoPE cosines would depend on how far back the page is).
func TestActQKVScoresInOneFrame(t *testing.T) {
	const d, g, T = 16, 1, 900
	dir := make([]float32, d)
	for c := range dir {
		dir[c] = float32(math.Cos(float64(c) * 1.3))
	}
	for _, needle := range []int32{100, 300, 600} {
		shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}
		a, _ := NewActQKV(kv.Budget{Tokens: 160}, 32, 64, 256, 4, true, 0)
		rec := &recorder{Selector: a, last: map[[2]int][]bool{}}
		r := newRig(t, shape, g, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, Selector: &promptRecorder{rec, a}, RoPE: pairRoPE{}})
		at := func(x []float32, p int32) []float32 {
			y := append([]float32(nil), x...)
			pairRoPE{}.Rotate(0, y, p)
			return y
		}
		r.prompt(T, func(_, _ int, p int32) []float32 {
			if p/32 == needle/32 {
				return at(dir, p) // the whole page points along dir
			}
			return r.randv(d, 1)
		}, nil)
		// The query that a key along dir answers best from Local (64)
		// positions away, at position T.
		r.batch([]int32{T}, nil, func(_, _ int, p int32) []float32 { return at(dir, p-64) })
		read := rec.last[[2]int{0, 0}]
		if !read[needle/32] {
			t.Fatalf("needle at %d: its page is not read (%v)", needle, read)
		}
	}
}
