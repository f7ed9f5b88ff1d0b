// Package sched runs many sequences on one model at once: continuous
// batching with chunked prefill, admission by KV-cache bytes, a bounded
// queue, cancellation and draining. It is the engine of `kvgo serve`.
//
// # Design
//
// One goroutine (the loop) owns the model's State, every running
// sequence's kv.Cache and the prefix cache; nothing else touches them, so
// none of them needs a lock. Handlers talk to the loop through Submit (a
// queue under a mutex) and a Handle (a per-sequence event queue).
//
// Each loop iteration is one step:
//
//  1. reap: sequences that were cancelled (client gone), stopped (a stop
//     string matched) or aborted leave, and their caches are released
//     before anything else happens, so their bytes are free for step 2;
//  2. admit: queued sequences join in FIFO order while their reservation
//     fits in the KV budget (the prefix cache is shrunk to make room
//     first) and fewer than MaxSeqs run;
//  3. batch: every decoding sequence contributes its last token; the rest
//     of the batch (at most PrefillChunk tokens) goes to prompts in
//     admission order, so a long prompt is fed in chunks between decode
//     steps and running streams keep flowing;
//  4. one model.State.ForwardSeqs pass over the weights for all of them;
//  5. each sequence samples from its logits and emits its token.
//
// # Memory
//
// Admission is by bytes, not by sequence count, which is what turns KV
// compression into more concurrent users. A sequence reserves an upper
// bound of the bytes it can ever hold, predicted from its recipe (see
// footprint), and once its prompt is in, its reservation follows the real
// cache.Bytes() plus the growth still to come. The sum of reservations
// (plus the prefix cache's bytes) never exceeds the budget, and as each
// reservation bounds its real bytes, neither do the real bytes. Should a
// prediction ever be wrong, the loop notices the real total over budget
// after a step and fails the newest sequence (ErrKVExhausted) rather than
// break the budget.
package sched

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/offload"
	"github.com/kvgo/kvgo/kv/recipe"
	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
	"github.com/kvgo/kvgo/model"
	"github.com/kvgo/kvgo/sample"
)

// Errors returned by Submit and carried by failed sequences' final events.
var (
	// ErrQueueFull: the wait queue holds MaxQueue requests (HTTP 429).
	ErrQueueFull = errors.New("sched: the request queue is full")
	// ErrDraining: the scheduler is shutting down and takes no new work (HTTP 503).
	ErrDraining = errors.New("sched: the server is shutting down")
	// ErrTooLarge: the request alone needs more KV memory than the budget (HTTP 400).
	ErrTooLarge = errors.New("sched: the request needs more KV memory than the server's budget")
	// ErrContext: prompt plus generated tokens exceed the context (HTTP 400).
	ErrContext = engine.ErrContext
	// ErrInvalid: the request is malformed (HTTP 400).
	ErrInvalid = errors.New("sched: invalid request")
	// ErrShutdown ends sequences still running when the drain timeout passed.
	ErrShutdown = errors.New("sched: the server shut down before the sequence finished")
	// ErrKVExhausted fails a sequence when the real KV bytes outgrew the
	// budget (a prediction was wrong); it protects the budget.
	ErrKVExhausted = errors.New("sched: KV memory exhausted")
	// ErrInternal wraps a panic or model error that failed a sequence.
	ErrInternal = errors.New("sched: internal error")
)

// Config configures a Scheduler. Zero values take the defaults noted.
type Config struct {
	// KVBudget is the most bytes of KV cache all sequences and the prefix
	// cache may hold together (required).
	KVBudget int64
	// MaxQueue is how many requests may wait for admission (default 64);
	// Submit refuses more with ErrQueueFull.
	MaxQueue int
	// MaxSeqs bounds the sequences running at once (default 32). Each
	// decode step feeds one token per running sequence, so MaxSeqs must be
	// smaller than Batch.
	MaxSeqs int
	// Batch is the most tokens of one forward pass (default 256).
	Batch int
	// PrefillChunk is the most prompt tokens fed in one step (default
	// 128): the bound on how long a new prompt can stall running streams.
	PrefillChunk int
	// Context is each sequence's capacity in tokens (default: the model's
	// training context).
	Context int
	// Prefix, if set, supplies caches that already hold a prompt's
	// beginning (recipes without an evictor only), e.g. a prefix.Store.
	// New then computes the engine's Identity to key it (a pass over the
	// weights), so that a prefix cache never mixes models.
	Prefix PrefixCache
	// Chunks, if set, keeps chunk caches for requests whose recipe has a
	// repair policy that reuses them (chunks.go).
	Chunks *kvchunk.Store
	// Logf receives messages about recovered panics and budget
	// violations (default: discarded).
	Logf func(format string, args ...any)

	// Test seams: wrap the model pass, and run a hook at the start of each
	// sequence's post-forward work (to inject failures).
	wrapForward func(forwarder) forwarder
	advanceHook func(id uint64)
}

// Request is one generation.
type Request struct {
	Prompt    []int
	MaxTokens int // at least 1; prompt plus MaxTokens must fit the context
	Sampling  sample.Params
	Recipe    *recipe.Recipe // nil: the full F16 cache
	StopAtEOG bool           // end at an end-of-generation token (not emitted)
	// Tenant keys everything the request may reuse or leave behind (the
	// prefix cache; chunk caches): requests of different tenants never
	// share cached tokens.
	Tenant string
	// Chunks are the token ranges of Prompt that are reusable chunks
	// (engine.EncodeParts), in order.
	Chunks []engine.Span
	// Inspect shows the sequence to Scheduler.Inspect (inspect.go) while it
	// runs and keeps its final snapshot when it ends.
	Inspect bool
}

// Finish says why a sequence ended.
type Finish string

// Finish reasons. Stop and Length are OpenAI's finish_reason values.
const (
	FinishStop      Finish = "stop"      // end-of-generation token, or Handle.Stop
	FinishLength    Finish = "length"    // MaxTokens or the context reached
	FinishCancelled Finish = "cancelled" // the request's context ended
	FinishError     Finish = "error"     // see Event.Err
)

// Event is what a Handle receives: one token per generated token, then a
// final event with Done set.
type Event struct {
	Token  int
	Done   bool
	Finish Finish
	Err    error
	// On the final event: prompt tokens taken from the prefix cache,
	// tokens generated, and the most KV bytes the sequence's cache held
	// (kv.Cache.PeakBytes; 0 if it never started).
	Cached    int
	Generated int
	KVBytes   int64
}

// Stats is a snapshot of the scheduler's state.
type Stats struct {
	Budget   int64 // KVBudget
	InUse    int64 // real KV bytes: running sequences plus the prefix cache
	Reserved int64 // reservations of running sequences
	Peak     int64 // largest InUse seen
	// FullEquivalent is what full F16 caches would hold for the running
	// sequences' tokens: FullEquivalent / (InUse - PrefixBytes) is the
	// compression ratio.
	FullEquivalent int64
	SeqBytes       int64 // real KV bytes of running sequences
	PrefixBytes    int64
	Queued         int
	Running        int
	Steps          uint64
	PrefixQueries  uint64 // admissions that asked the prefix cache
	PrefixHits     uint64 // admissions that got a cached prefix
	PrefixTokens   uint64 // prompt tokens not computed thanks to it
	Preempted      uint64 // sequences failed with ErrKVExhausted
	Panics         uint64 // sequences failed by a recovered panic
}

// forwarder is the model pass; tests wrap it to inject failures.
type forwarder interface {
	ForwardSeqs(seqs []model.Seq) ([][]float32, error)
}

// Scheduler runs sequences on one engine. Create it with New and stop it
// with Close.
type Scheduler struct {
	cfg  Config
	eng  *engine.Engine
	fp   *footprint
	fwd  forwarder
	ctx  int
	logf func(string, ...any)

	mu       sync.Mutex
	queue    []*seq
	draining bool
	abortErr error
	stats    Stats
	nextID   uint64

	wake chan struct{} // cap 1: something changed for the loop
	quit chan struct{}
	done chan struct{}

	// model is the engine's Identity when a prefix cache or a chunk
	// store is set: the model half of every key.
	model  string
	chunks chunkState
	insp   inspector // Inspect's questions (inspect.go)

	// Loop-owned.
	running  []*seq
	reserved int64
	peak     int64
}

// New starts a scheduler on e.
func New(e *engine.Engine, cfg Config) (*Scheduler, error) {
	if cfg.KVBudget <= 0 {
		return nil, fmt.Errorf("sched: KV budget %d must be positive", cfg.KVBudget)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxQueue, 64)
	def(&cfg.MaxSeqs, 32)
	def(&cfg.Batch, 256)
	def(&cfg.PrefillChunk, 128)
	switch {
	case cfg.MaxQueue < 0:
		return nil, fmt.Errorf("sched: queue size %d must be positive", cfg.MaxQueue)
	case cfg.MaxSeqs < 1 || cfg.Batch < 2 || cfg.PrefillChunk < 1:
		return nil, fmt.Errorf("sched: max sequences %d, batch %d and prefill chunk %d must be positive", cfg.MaxSeqs, cfg.Batch, cfg.PrefillChunk)
	case cfg.MaxSeqs >= cfg.Batch:
		return nil, fmt.Errorf("sched: max sequences %d must be smaller than the batch of %d tokens (each running sequence feeds one token per step)", cfg.MaxSeqs, cfg.Batch)
	}
	ctx, err := e.ContextFor(cfg.Context)
	if err != nil {
		return nil, fmt.Errorf("sched: %w", err)
	}
	s := &Scheduler{
		cfg: cfg, eng: e, ctx: ctx,
		fp:   newFootprint(e.Model.CacheShape(), ctx, cfg.PrefillChunk),
		logf: cfg.Logf,
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	s.fp.cold = e.Offload
	if cfg.Prefix != nil || cfg.Chunks != nil {
		s.model = e.Identity()
	}
	s.chunks.init(e, cfg, ctx)
	s.fwd = e.Model.NewState(e.Pool, cfg.Batch, ctx)
	if cfg.wrapForward != nil {
		s.fwd = cfg.wrapForward(s.fwd)
	}
	s.stats.Budget = cfg.KVBudget
	go s.loop()
	return s, nil
}

// Context is each sequence's capacity in tokens.
func (s *Scheduler) Context() int { return s.ctx }

// Budget is the KV memory budget in bytes.
func (s *Scheduler) Budget() int64 { return s.cfg.KVBudget }

// Stats returns a snapshot of the scheduler's state.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.queue)
	return st
}

// Reservation is the KV bytes a request would reserve on admission, the
// number admission compares with the budget.
func (s *Scheduler) Reservation(r *recipe.Recipe, promptTokens, maxTokens int) (int64, error) {
	r, err := orDefault(r)
	if err != nil {
		return 0, err
	}
	p, err := s.fp.plan(r)
	if err != nil {
		return 0, err
	}
	return p.admit(promptTokens, maxTokens), nil
}

func orDefault(r *recipe.Recipe) (*recipe.Recipe, error) {
	if r != nil {
		return r, nil
	}
	return recipe.Parse("")
}

// seq is one sequence. Fields without a comment are owned by the loop.
type seq struct {
	id        uint64
	req       Request
	recipe    *recipe.Recipe
	key       prefix.Key // model identity and canonical recipe
	plan      *plan
	sampler   *sample.Sampler
	prompt    []int
	cache     *kv.Cache
	store     *offload.Store // the cache's cold tier (engine.Engine.Offload), nil without one
	fed       int            // prompt tokens in the cache (cached prefix included)
	cached    int            // prompt tokens taken from the prefix cache
	pos       int            // position of the next token to feed
	last      [1]int
	generated []int
	decoding  bool
	reserve   int64
	actual    int64

	cancelled atomic.Bool // the request's context ended
	stopReq   atomic.Bool // Handle.Stop
	finished  atomic.Bool // the final event was sent
	unwatch   func() bool // stops the context watch
	first     []float32   // logits of a prompt prefilled with chunk reuse, to sample from
	out       outbox
}

// Handle is the requester's side of a sequence.
type Handle struct {
	s *Scheduler
	q *seq
}

// Submit queues a request. The sequence is cancelled when ctx ends. It
// fails at once with ErrInvalid, ErrContext, ErrTooLarge, ErrQueueFull or
// ErrDraining (wrapped with details).
func (s *Scheduler) Submit(ctx context.Context, req Request) (*Handle, error) {
	n := len(req.Prompt)
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: the prompt is empty", ErrInvalid)
	case req.MaxTokens < 1:
		return nil, fmt.Errorf("%w: max tokens %d must be at least 1", ErrInvalid, req.MaxTokens)
	case n >= s.ctx:
		return nil, fmt.Errorf("%w: the prompt has %d tokens, the context holds %d", ErrContext, n, s.ctx)
	case req.MaxTokens > s.ctx-n: // not n+MaxTokens > ctx, which wraps for MaxTokens near 2^63
		return nil, fmt.Errorf("%w: %d prompt tokens plus %d tokens to generate exceed the context of %d tokens", ErrContext, n, req.MaxTokens, s.ctx)
	}
	vocab := s.eng.Model.Vocab
	for i, id := range req.Prompt {
		if id < 0 || id >= vocab {
			return nil, fmt.Errorf("%w: token %d at prompt index %d is outside the vocabulary [0, %d)", ErrInvalid, id, i, vocab)
		}
	}
	r, err := orDefault(req.Recipe)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p, err := s.fp.plan(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	need := p.admit(n, req.MaxTokens)
	if need > s.cfg.KVBudget {
		return nil, fmt.Errorf("%w: %d prompt tokens and %d to generate with recipe %s need up to %d bytes of KV cache; the budget is %d bytes", ErrTooLarge, n, req.MaxTokens, r, need, s.cfg.KVBudget)
	}
	sm, err := sample.New(req.Sampling)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	q := &seq{req: req, recipe: r, key: prefix.Key{Model: s.model, Recipe: r.String(), Tenant: req.Tenant}, plan: p, sampler: sm, prompt: req.Prompt, reserve: need}
	q.out.sig = make(chan struct{}, 1)
	// Watch ctx before the loop can see q, so that q.unwatch is set
	// before anything reads it; a ctx that is already done cancels q as
	// soon as it is admitted.
	q.unwatch = context.AfterFunc(ctx, func() { s.cancel(q) })
	s.mu.Lock()
	switch {
	case s.draining:
		s.mu.Unlock()
		q.unwatch()
		return nil, ErrDraining
	case len(s.queue) >= s.cfg.MaxQueue:
		s.mu.Unlock()
		q.unwatch()
		return nil, fmt.Errorf("%w (%d waiting)", ErrQueueFull, s.cfg.MaxQueue)
	}
	s.nextID++
	q.id = s.nextID
	s.queue = append(s.queue, q)
	s.mu.Unlock()
	s.poke()
	return &Handle{s: s, q: q}, nil
}

// poke wakes the loop.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// cancel ends a sequence whose requester went away: a queued one leaves
// the queue at once, a running one at the start of the next step, when its
// cache is released.
func (s *Scheduler) cancel(q *seq) {
	q.cancelled.Store(true)
	s.mu.Lock()
	i := slices.Index(s.queue, q)
	if i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
	}
	s.mu.Unlock()
	if i >= 0 {
		s.send(q, Event{Done: true, Finish: FinishCancelled})
		return
	}
	s.poke()
}

// send delivers an event; the final event is delivered once.
func (s *Scheduler) send(q *seq, e Event) {
	if e.Done {
		if q.finished.Swap(true) {
			return
		}
		if q.unwatch != nil {
			q.unwatch()
		}
		e.Cached, e.Generated = q.cached, len(q.generated)
	}
	q.out.push(e)
}

// ID identifies the sequence in logs.
func (h *Handle) ID() uint64 { return h.q.id }

// Recv returns the next event, waiting for it until ctx ends.
func (h *Handle) Recv(ctx context.Context) (Event, error) { return h.q.out.recv(ctx) }

// Stop ends generation normally (finish reason "stop"), e.g. when the
// requester found a stop string. Events already produced stay queued.
func (h *Handle) Stop() {
	h.q.stopReq.Store(true)
	h.s.poke()
}

// Cancel ends the sequence as if its context had ended.
func (h *Handle) Cancel() { h.s.cancel(h.q) }

// Drain makes Submit refuse new work with ErrDraining; queued and running
// sequences go on.
func (s *Scheduler) Drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// Abort ends every queued and running sequence with err (ErrShutdown when
// nil) and refuses new work. Running sequences end at the next step.
func (s *Scheduler) Abort(err error) {
	if err == nil {
		err = ErrShutdown
	}
	s.mu.Lock()
	s.draining = true
	s.abortErr = err
	queued := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, q := range queued {
		s.send(q, Event{Done: true, Finish: FinishError, Err: err})
	}
	s.poke()
}

// Idle reports whether nothing is queued or running.
func (s *Scheduler) Idle() bool {
	st := s.Stats()
	return st.Queued == 0 && st.Running == 0
}

// Close aborts all work, stops the loop and releases every cache.
func (s *Scheduler) Close() {
	s.Abort(nil)
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

func (s *Scheduler) loop() {
	defer close(s.done)
	defer func() {
		// finish removes each sequence from s.running: walk a copy, as
		// reap does.
		for _, q := range slices.Clone(s.running) {
			s.finish(q, Event{Done: true, Finish: FinishError, Err: ErrShutdown})
		}
		if p := s.cfg.Prefix; p != nil {
			p.Shrink(1 << 62)
		}
		s.publish()
	}()
	for {
		s.reap()
		s.admit()
		s.publish()
		s.serveInspect() // one atomic load unless someone asked
		if len(s.running) == 0 {
			select {
			case <-s.wake:
				continue
			case <-s.quit:
				return
			}
		}
		select {
		case <-s.quit:
			return
		default:
		}
		s.step()
	}
}

// reap removes sequences that were cancelled, stopped or aborted.
func (s *Scheduler) reap() {
	s.mu.Lock()
	abort := s.abortErr
	s.mu.Unlock()
	for _, q := range slices.Clone(s.running) {
		switch {
		case abort != nil:
			s.finish(q, Event{Done: true, Finish: FinishError, Err: abort})
		case q.cancelled.Load():
			s.finish(q, Event{Done: true, Finish: FinishCancelled})
		case q.stopReq.Load():
			s.finish(q, Event{Done: true, Finish: FinishStop})
		}
	}
}

// finish sends q's final event and gives back its memory: its cache goes
// to the prefix cache when it is intact and reusable, else it is released.
func (s *Scheduler) finish(q *seq, e Event) {
	if q.cache != nil {
		e.KVBytes = q.cache.PeakBytes()
	}
	s.send(q, e)
	if i := slices.Index(s.running, q); i >= 0 {
		s.running = slices.Delete(s.running, i, i+1)
		s.reserved -= q.reserve
	}
	if q.cache == nil {
		return
	}
	if q.req.Inspect {
		s.keepInspected(q)
	}
	c := q.cache
	q.cache = nil
	if p := s.cfg.Prefix; p != nil && e.Finish != FinishError && !q.plan.evicts && !c.Prefilling() && q.store == nil {
		tokens := append(slices.Clip(q.prompt[:q.fed]), q.generated...)
		p.Offer(q.key, tokens, c)
		return
	}
	c.Release()
	s.closeStore(q) // offload.go
}

// admit moves queued sequences into the running set while they fit.
func (s *Scheduler) admit() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || len(s.running) >= s.cfg.MaxSeqs || s.abortErr != nil {
			s.mu.Unlock()
			return
		}
		q := s.queue[0]
		if !s.fits(q.reserve) {
			s.mu.Unlock()
			return
		}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if q.cancelled.Load() {
			s.send(q, Event{Done: true, Finish: FinishCancelled})
			continue
		}
		if err := s.start(q); err != nil {
			s.send(q, Event{Done: true, Finish: FinishError, Err: err})
			continue
		}
		s.running = append(s.running, q)
		if q.first != nil {
			first := q.first
			q.first = nil
			s.reserved += q.reserve
			s.advance(q, 0, first)
			continue
		}
		s.reserved += q.reserve
	}
}

// fits reports whether a reservation of need bytes fits now, shrinking the
// prefix cache to make room if that helps.
func (s *Scheduler) fits(need int64) bool {
	var held int64
	if p := s.cfg.Prefix; p != nil {
		held = p.Bytes()
	}
	over := s.reserved + held + need - s.cfg.KVBudget
	if over <= 0 {
		return true
	}
	if p := s.cfg.Prefix; p != nil && held > 0 {
		p.Shrink(over)
		return s.reserved+p.Bytes()+need <= s.cfg.KVBudget
	}
	return false
}

// start gives an admitted sequence its cache: a fork of a cached prefix
// when the prefix cache has one, else an empty cache from the recipe.
func (s *Scheduler) start(q *seq) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.recovered(q, r)
		}
	}()
	if s.startChunks(q) {
		return nil
	}
	if p := s.cfg.Prefix; p != nil && !q.plan.evicts && reusesPrefix(q.recipe) {
		c, n := p.Acquire(q.key, q.prompt)
		s.mu.Lock()
		s.stats.PrefixQueries++
		if c != nil {
			q.cache, q.fed, q.cached, q.pos = c, n, n, n
			s.stats.PrefixHits++
			s.stats.PrefixTokens += uint64(n)
		}
		s.mu.Unlock()
	}
	if q.cache == nil {
		if q.cache, err = s.newCache(q); err != nil { // inspect_reads.go
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if q.plan.evicts {
			q.cache.BeginPrefill(len(q.prompt))
		}
	}
	for _, id := range q.prompt {
		q.sampler.Accept(id)
	}
	return nil
}

// recovered turns a panic that failed one sequence into its error.
func (s *Scheduler) recovered(q *seq, r any) error {
	s.mu.Lock()
	s.stats.Panics++
	s.mu.Unlock()
	s.logf("sched: sequence %d: panic: %v\n%s", q.id, r, debug.Stack())
	return fmt.Errorf("%w: panic: %v", ErrInternal, r)
}

// step runs one forward pass for every running sequence and advances them.
func (s *Scheduler) step() {
	batch := make([]model.Seq, 0, len(s.running))
	who := make([]*seq, 0, len(s.running))
	for _, q := range s.running {
		if q.decoding {
			batch = append(batch, model.Seq{Cache: q.cache, Tokens: q.last[:], Start: q.pos, Logits: true})
			who = append(who, q)
		}
	}
	room := min(s.cfg.Batch-len(batch), s.cfg.PrefillChunk)
	for _, q := range s.running {
		if q.decoding || room == 0 {
			continue
		}
		n := min(len(q.prompt)-q.fed, room)
		room -= n
		end := q.fed + n
		batch = append(batch, model.Seq{Cache: q.cache, Tokens: q.prompt[q.fed:end], Start: q.fed, Logits: end == len(q.prompt)})
		who = append(who, q)
	}
	if len(batch) == 0 {
		return
	}
	logits := s.forward(batch, who)
	for i, q := range who {
		if q.finished.Load() || s.coldFailed(q) { // offload.go
			continue // failed in the forward pass
		}
		s.advance(q, len(batch[i].Tokens), logits[i])
	}
	s.account()
	s.mu.Lock()
	s.stats.Steps++
	s.mu.Unlock()
}

// forward runs the batch, isolating a failure: when the joint pass fails
// (an error or a panic), every sequence's cache is rolled back to before
// the pass and each runs alone, so only the sequence that fails alone
// fails. Per-sequence logits are returned (nil for failed ones).
func (s *Scheduler) forward(batch []model.Seq, who []*seq) [][]float32 {
	out, err := s.safeForward(batch)
	if err == nil {
		// A prompt is largest just before its evictor chose, which the
		// cache did at the end of the pass that completed it: count a
		// prefilling sequence at its peak.
		var total int64
		for _, q := range s.running {
			switch {
			case q.cache == nil:
			case q.plan.evicts && !q.decoding:
				total += q.cache.PeakBytes()
			default:
				total += q.cache.OwnedBytes()
			}
		}
		if p := s.cfg.Prefix; p != nil {
			total += p.Bytes()
		}
		s.peak = max(s.peak, total)
		return out
	}
	if len(batch) == 1 {
		s.finish(who[0], Event{Done: true, Finish: FinishError, Err: err})
		return make([][]float32, 1)
	}
	s.logf("sched: a batch of %d sequences failed (%v); retrying each alone", len(batch), err)
	res := make([][]float32, len(batch))
	for i := range batch {
		batch[i].Cache.Truncate(batch[i].Start)
	}
	for i := range batch {
		o, err := s.safeForward(batch[i : i+1])
		if err != nil {
			s.finish(who[i], Event{Done: true, Finish: FinishError, Err: err})
			continue
		}
		if o[0] != nil {
			res[i] = slices.Clone(o[0])
		}
	}
	return res
}

func (s *Scheduler) safeForward(batch []model.Seq) (out [][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.mu.Lock()
			s.stats.Panics++
			s.mu.Unlock()
			s.logf("sched: forward pass panic: %v\n%s", r, debug.Stack())
			err = fmt.Errorf("%w: panic in the forward pass: %v", ErrInternal, r)
		}
	}()
	out, err = s.fwd.ForwardSeqs(batch)
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrInternal, err)
	}
	return out, err
}

// advance moves q past the tokens it just fed and, when logits came back,
// samples and emits its next token. A panic fails q alone.
func (s *Scheduler) advance(q *seq, fed int, logits []float32) {
	defer func() {
		if r := recover(); r != nil {
			s.finish(q, Event{Done: true, Finish: FinishError, Err: s.recovered(q, r)})
		}
	}()
	if s.cfg.advanceHook != nil {
		s.cfg.advanceHook(q.id)
	}
	q.pos += fed
	if !q.decoding {
		q.fed += fed
		if q.fed < len(q.prompt) {
			return
		}
		if q.plan.evicts {
			q.actual = q.cache.OwnedBytes()
		}
		q.decoding = true
	}
	if logits == nil {
		s.finish(q, Event{Done: true, Finish: FinishError, Err: fmt.Errorf("%w: no logits", ErrInternal)})
		return
	}
	id := q.sampler.Sample(logits)
	q.sampler.Accept(id)
	if q.req.StopAtEOG && s.eng.Tok.IsEOG(id) {
		s.finish(q, Event{Done: true, Finish: FinishStop})
		return
	}
	q.generated = append(q.generated, id)
	s.send(q, Event{Token: id})
	if len(q.generated) >= q.req.MaxTokens || q.pos >= s.ctx {
		s.finish(q, Event{Done: true, Finish: FinishLength})
		return
	}
	q.last[0] = id
}

// account recomputes reservations from the real bytes, enforces the
// budget and publishes the totals.
func (s *Scheduler) account() {
	var prefix int64
	if p := s.cfg.Prefix; p != nil {
		prefix = p.Bytes()
	}
	for {
		var inUse int64
		s.reserved = 0
		for _, q := range s.running {
			q.actual = q.cache.OwnedBytes()
			rem := q.req.MaxTokens - len(q.generated)
			if q.decoding {
				q.reserve = q.plan.running(q.actual, q.cache.Len(), len(q.prompt), rem)
			} else {
				q.reserve = max(q.reserve, q.actual)
			}
			s.reserved += q.reserve
			inUse += q.actual
		}
		if inUse+prefix <= s.cfg.KVBudget || len(s.running) == 0 {
			break
		}
		if p := s.cfg.Prefix; p != nil && prefix > 0 {
			p.Shrink(inUse + prefix - s.cfg.KVBudget)
			prefix = p.Bytes()
			continue
		}
		// A prediction fell short: fail the newest sequence to keep the
		// budget rather than let memory grow past it.
		q := s.running[len(s.running)-1]
		s.logf("sched: KV bytes %d exceed the budget %d; failing sequence %d", inUse+prefix, s.cfg.KVBudget, q.id)
		s.mu.Lock()
		s.stats.Preempted++
		s.mu.Unlock()
		s.finish(q, Event{Done: true, Finish: FinishError, Err: fmt.Errorf("%w: the server's KV memory budget is in use; retry later", ErrKVExhausted)})
	}
}

// publish copies the loop's totals into the stats snapshot.
func (s *Scheduler) publish() {
	var seqBytes, full, reserved int64
	for _, q := range s.running {
		if q.cache == nil {
			continue
		}
		seqBytes += q.actual
		full += s.eng.FullCacheBytes(q.cache.NextPos())
		reserved += q.reserve
	}
	var prefix int64
	if p := s.cfg.Prefix; p != nil {
		prefix = p.Bytes()
	}
	s.peak = max(s.peak, seqBytes+prefix)
	s.mu.Lock()
	s.stats.InUse = seqBytes + prefix
	s.stats.SeqBytes = seqBytes
	s.stats.PrefixBytes = prefix
	s.stats.Reserved = reserved
	s.stats.FullEquivalent = full
	s.stats.Running = len(s.running)
	s.stats.Peak = s.peak
	s.mu.Unlock()
}

// outbox is a sequence's unbounded event queue: the loop never blocks on
// a slow reader.
type outbox struct {
	mu  sync.Mutex
	evs []Event
	sig chan struct{} // cap 1
}

func (o *outbox) push(e Event) {
	o.mu.Lock()
	o.evs = append(o.evs, e)
	o.mu.Unlock()
	select {
	case o.sig <- struct{}{}:
	default:
	}
}

func (o *outbox) recv(ctx context.Context) (Event, error) {
	for {
		o.mu.Lock()
		if len(o.evs) > 0 {
			e := o.evs[0]
			o.evs = o.evs[1:]
			if len(o.evs) == 0 {
				o.evs = nil
			}
			o.mu.Unlock()
			return e, nil
		}
		o.mu.Unlock()
		select {
		case <-o.sig:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}
