package sched

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/offload"
	"github.com/kvgo/kvgo/kv/recipe"
)

// footprint predicts the KV bytes a sequence will hold, so that admission
// can reserve memory by what a recipe really costs instead of by the full
// cache. Predictions are upper bounds built from measurements, not from
// formulas that could drift from the kv package:
//
//   - Without an evictor every (layer, KV head) stream of a cache holds the
//     same tokens, so the bytes of the whole cache are Streams() times the
//     bytes of one stream. probeCodec measures one stream of the codec
//     token by token (Cache.Begin/Store/End on a 1x1 cache, exactly what a
//     decode step or a prefill chunk does to each stream) up to probeLen
//     tokens and extrapolates beyond by whole periods.
//   - With an evictor the prompt is first staged (the peak): in the
//     codec's own pages, or a group codec's F16 tail, plus the evictor's
//     per-token statistics; probeStaging measures that growth on a
//     one-stream cache of the same codec whose evictor keeps everything.
//     An evictor whose Bound is Rolling stages nothing: it holds at most
//     its budget plus one prefill chunk. After the prompt the evictor keeps
//     at most its budget per stream (kv.Bound), and from then on the real
//     cache.Bytes() is known and only the growth still to come is
//     predicted.
//
// footprint is safe for concurrent use: handlers ask it for a request's
// reservation before queueing, the scheduler as sequences advance.
type footprint struct {
	shape kv.Shape
	ctx   int
	chunk int // the most prompt tokens of a sequence in one pass
	// cold is the engine's cold tier, nil without one: a sequence then
	// holds at most plan.coldBound on the heap (offload.go).
	cold *offload.Options

	mu     sync.Mutex
	codecs map[string]*codecProbe
}

// probeLen is how many tokens a codec probe measures before it
// extrapolates; it is long enough that pages, key groups and residual
// tails have reached their periodic pattern.
const probeLen = 4096

// maxProbes bounds the memo of codec probes: recipes come from requests,
// and a client cycling through parameter values must not grow memory.
const maxProbes = 64

func newFootprint(shape kv.Shape, ctx, chunk int) *footprint {
	return &footprint{shape: shape, ctx: ctx, chunk: chunk, codecs: map[string]*codecProbe{}}
}

// codecProbe holds the measured bytes of one stream of a codec.
type codecProbe struct {
	at     []int64 // bytes after t tokens, t = 0..len-1
	peak   []int64 // running maximum of at
	period int     // tokens after which the layout repeats
	perP   int64   // bytes one period adds
	// staged[t] is the bytes of one stream holding t prompt tokens staged
	// for an evictor, t = 0..ctx (measured on first use).
	staged []int64
}

// bytes is an upper bound of the bytes one stream holds at any point while
// it grows to t tokens.
func (p *codecProbe) bytes(t int) int64 {
	last := len(p.at) - 1
	if t <= last {
		return p.peak[max(t, 0)]
	}
	periods := (t - last + p.period - 1) / p.period
	return p.peak[last] + int64(periods)*p.perP
}

// exact is the bytes of one stream holding t tokens grown one at a time
// (extrapolated beyond the probe).
func (p *codecProbe) exact(t int) int64 {
	if t < len(p.at) {
		return p.at[max(t, 0)]
	}
	return p.bytes(t)
}

// codec returns the probe of r's codec, measuring it on first use.
func (f *footprint) codec(r *recipe.Recipe) (*codecProbe, error) {
	key := r.Codec().String()
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.codecs[key]; ok {
		return p, nil
	}
	p, err := probeCodec(widest(f.shape), f.shape.ValueInKey, &recipe.Recipe{Terms: []*recipe.Term{r.Codec()}}, min(f.ctx, probeLen))
	if err != nil {
		return nil, err
	}
	if len(f.codecs) >= maxProbes {
		clear(f.codecs)
	}
	f.codecs[key] = p
	return p, nil
}

func probeCodec(d kv.Dims, valueInKey bool, r *recipe.Recipe, n int) (*codecProbe, error) {
	cfg, err := r.Config()
	if err != nil {
		return nil, fmt.Errorf("sched: probing codec %s: %w", r.Codec(), err)
	}
	c, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d.Key, ValueDim: d.Value, ValueInKey: valueInKey}, cfg, n)
	if err != nil {
		return nil, fmt.Errorf("sched: probing codec %s: %w", r.Codec(), err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	k, v := make([]float32, d.Key), make([]float32, d.Value)
	p := &codecProbe{at: make([]int64, n+1), peak: make([]int64, n+1)}
	pos := []int32{0}
	for t := 0; t < n; t++ {
		for i := range k {
			k[i] = rng.Float32()*2 - 1
		}
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		pos[0] = int32(t)
		if err := c.Begin(pos); err != nil {
			return nil, fmt.Errorf("sched: probing codec %s: %w", r.Codec(), err)
		}
		c.Store(0, k, v)
		c.End()
		p.at[t+1] = c.Bytes()
	}
	for t := range p.at {
		p.peak[t] = p.at[t]
		if t > 0 {
			p.peak[t] = max(p.peak[t], p.peak[t-1])
		}
	}
	// The layout repeats every lcm of the page sizes; four pages of the
	// larger unit is a multiple of both for every codec kvgo has (32-token
	// pages, group codecs with any group that divides or is a multiple of 32),
	// and a longer period only makes the extrapolation coarser, never low.
	g := max(kv.PageTokens, cfg.K.Group(), cfg.V.Group())
	p.period = 4 * g
	if n >= 2*p.period {
		p.perP = p.peak[n] - p.at[n-p.period]
	} else {
		// A context too short to see the period: charge a period as the
		// most bytes any period-long stretch of the probe added.
		p.perP = p.peak[n]
	}
	return p, nil
}

// stagedBytes is the bytes of one stream of codec probe p holding t
// prompt tokens staged for an evictor (kv.Cache.BeginPrefill), measured
// once per codec on a one-stream cache whose evictor keeps everything:
// staging depends on the codec, not on the evictor.
func (f *footprint) stagedBytes(r *recipe.Recipe, p *codecProbe, t int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.staged == nil {
		staged, err := probeStaging(widest(f.shape), f.shape.ValueInKey, r, f.ctx)
		if err != nil {
			// Cannot happen for a recipe that built a cache already; fall
			// back to a bound: F32 keys and values, Go's append at most
			// doubling the capacity, and per-token state.
			staged = make([]int64, f.ctx+1)
			for i := range staged {
				staged[i] = 2*int64(i)*int64(widest(f.shape).Key+widest(f.shape).Value)*4 + int64(i)*12
			}
		}
		p.staged = staged
	}
	return p.staged[min(max(t, 0), f.ctx)]
}

func probeStaging(d kv.Dims, valueInKey bool, r *recipe.Recipe, n int) ([]int64, error) {
	cfg, err := (&recipe.Recipe{Terms: []*recipe.Term{r.Codec()}}).Config()
	if err != nil {
		return nil, err
	}
	cfg.Evictor = keepAll{}
	c, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d.Key, ValueDim: d.Value, ValueInKey: valueInKey}, cfg, n)
	if err != nil {
		return nil, err
	}
	c.BeginPrefill(n)
	out := make([]int64, n+1)
	k, v := make([]float32, d.Key), make([]float32, d.Value)
	pos := []int32{0}
	for t := 0; t < n; t++ {
		pos[0] = int32(t)
		if err := c.Begin(pos); err != nil {
			return nil, err
		}
		c.Store(0, k, v)
		// The last token ends the prompt, after which the cache encodes
		// what it kept: the staged bytes are the peak just before.
		out[t+1] = c.Bytes()
		c.End()
	}
	return out, nil
}

// keepAll is an evictor that keeps every token; it makes a probe cache
// stage its prompt the way an evicting recipe's cache does.
type keepAll struct{}

func (keepAll) Name() string                    { return "keep-all" }
func (keepAll) Window() int                     { return 0 }
func (keepAll) StepStats() bool                 { return false }
func (keepAll) AfterPrefill(*kv.LayerView, int) {}
func (keepAll) AfterStep(*kv.LayerView)         {}
func (keepAll) Bound() kv.Bound                 { return kv.Bound{} }

// plan is how one recipe's memory is predicted.
type plan struct {
	f      *footprint
	recipe *recipe.Recipe
	codec  *codecProbe
	evicts bool
	// rolling: the evictor evicts while the prompt arrives (kv.Bound).
	rolling bool
	// stepEvicts: the evictor also deletes at every decode step, so a
	// stream never grows past its budget.
	stepEvicts bool
	hasBudget  bool
	budget     kv.Budget
	streams    int64
	tailSlack  int64 // per stream: F32 tail capacity a group codec may keep after eviction
}

func (f *footprint) plan(r *recipe.Recipe) (*plan, error) {
	cp, err := f.codec(r)
	if err != nil {
		return nil, err
	}
	p := &plan{f: f, recipe: r, codec: cp, streams: int64(f.shape.Streams())}
	if r.Evicts() {
		cfg, err := r.Config()
		if err != nil {
			return nil, err
		}
		// The evictor declares its bound; an evictor that declares none
		// is assumed to keep everything, which over-reserves but never
		// under-reserves.
		bd := cfg.Evictor.Bound()
		p.evicts = true
		p.stepEvicts = bd.Steady || bd.Rolling
		p.rolling = bd.Rolling
		p.budget, p.hasBudget = bd.Budget, !bd.Budget.IsZero()
		// A full F32 residual window twice over: the tail capacity a
		// group codec's stream may keep after Keep.
		p.tailSlack = int64(max(cfg.K.Residual(), cfg.V.Residual())) * int64(f.shape.HeadDim) * 8 * 2
	}
	return p, nil
}

// kept is how many tokens per stream survive the prompt of n tokens.
func (p *plan) kept(n int) int {
	if !p.evicts || !p.hasBudget {
		return n
	}
	return min(n, p.budget.Resolve(n))
}

// admit is the reservation of a sequence before it starts: the most bytes
// it may hold at any point of a prompt of n tokens (cached tokens
// included) followed by up to gen generated tokens.
func (p *plan) admit(n, gen int) int64 {
	// No stream ever holds more than the context: clamping keeps every
	// sum below 2*ctx, so no count wraps, whatever a caller asks.
	n, gen = min(max(n, 0), p.f.ctx), min(max(gen, 0), p.f.ctx)
	return min(p.admitMem(n, gen), p.coldBound(min(n+gen, p.f.ctx)))
}

// admitMem is admit for a cache held wholly in memory.
func (p *plan) admitMem(n, gen int) int64 {
	if !p.evicts {
		return p.streams * p.codec.bytes(n+gen)
	}
	k := p.kept(n)
	var staged int64
	if p.rolling && p.hasBudget {
		t := min(n, p.budget.Resolve(n)+p.f.chunk)
		staged = p.streams * (p.f.stagedBytes(p.recipe, p.codec, t) + p.slack(t))
	} else {
		staged = p.streams * p.f.stagedBytes(p.recipe, p.codec, n)
	}
	after := k + gen
	if p.stepEvicts && p.hasBudget {
		after = max(k, min(k+gen, p.budget.Resolve(n)))
	}
	return max(staged, p.streams*(p.codec.bytes(after)+p.slack(after)))
}

// running is the reservation of a sequence whose prompt is done: its real
// bytes now plus what the remaining rem tokens can add, given the fullest
// stream holds l tokens.
func (p *plan) running(actual int64, l, prompt, rem int) int64 {
	l, rem = min(max(l, 0), p.f.ctx), min(max(rem, 0), p.f.ctx)
	return min(p.runningMem(actual, l, prompt, rem), max(actual, p.coldBound(min(l+rem, p.f.ctx))))
}

// runningMem is running for a cache held wholly in memory.
func (p *plan) runningMem(actual int64, l, prompt, rem int) int64 {
	if !p.evicts {
		return max(actual, p.streams*p.codec.bytes(l+rem))
	}
	to := l + rem
	if p.stepEvicts && p.hasBudget {
		to = max(l, min(l+rem, p.budget.Resolve(prompt)))
	}
	grow := p.codec.bytes(to) - p.codec.exact(l)
	return actual + p.streams*(max(grow, 0)+p.slack(to))
}

// slack is what a stream of an evicting recipe holding up to k tokens can
// hold beyond their dense encoding: Stream.Keep deletes codes from pages
// and re-packs them only once about a quarter of the pages are wasted
// (kv.Stream.compact), and a decode step may open a page before the
// evictor deletes; so a quarter of the tokens plus three pages, and the
// residual tail capacity.
func (p *plan) slack(k int) int64 {
	return p.codec.bytes(k/4+3*kv.PageTokens) + p.tailSlack
}

// widest is the widths of the layer whose tokens take the most bytes:
// every stream is predicted as one of it, an upper bound when layers
// differ (kv.Shape.LayerDims) and exact when they do not.
func widest(s kv.Shape) kv.Dims {
	w := s.Dims(0)
	for l := 1; l < s.Layers; l++ {
		if d := s.Dims(l); d.Key+d.Value > w.Key+w.Value {
			w = d
		}
	}
	return w
}
