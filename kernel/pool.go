package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Job is work over an index range [0, n) that a Pool splits between its
// workers. Run is called with disjoint sub-ranges [lo, hi) that together
// cover [0, n), possibly several times per worker; worker (0 ..
// Pool.Threads()-1) says which worker runs it, so a Job can give each
// worker its own scratch memory.
//
// A Job is an interface rather than a closure so that the decode loop does
// not allocate: a closure that captures variables escapes to the heap when
// it is handed to another goroutine, while a pointer to a long-lived struct
// (kept in the caller's state and refilled for each call) converts to a Job
// without allocating.
type Job interface {
	Run(worker, lo, hi int)
}

// Pool is a fixed set of worker goroutines that split index ranges between
// them. Workers live as long as the pool, so a decode step starts no
// goroutines, and Run allocates nothing. The calling goroutine is worker 0.
//
// A Pool runs one job at a time: Run, For, ForWorker and Matrix.MatMul must
// not be called concurrently on the same Pool, nor from inside a job.
//
// Work is handed out in chunks that workers claim from an atomic counter,
// rather than in one fixed part per worker, so a worker whose core is busy
// with something else (another process, the garbage collector) holds up
// nobody: the caller and the other workers take its chunks, and Run never
// waits for a worker that has not started.
//
// Between jobs a worker spins for a short while (spinFor) before it parks
// on a channel: a decode step runs a few hundred short jobs back to back,
// and waking a parked goroutine costs microseconds each time, while a
// spinning one starts at once. The spin is short so that an idle pool, or
// one on a machine shared with other work, gives its cores back.
type Pool struct {
	n       int
	workers []*worker // workers 1..n-1
	once    sync.Once
	closed  atomic.Bool

	// state packs the job generation (high 32 bits), the job's chunk
	// count (16 bits) and the next unclaimed chunk (low 16 bits). A
	// worker claims a chunk by incrementing it with a compare-and-swap
	// that also checks the generation, and may read the job fields below
	// while it holds a claimed chunk: Run does not change them until every
	// chunk is finished.
	state    atomic.Uint64
	finished atomic.Int64 // chunks of the current job completed
	waiting  atomic.Bool  // Run parked on done
	done     chan struct{}

	job         Job
	size, chunk int
	panicked    atomic.Pointer[any] // first panic of the current job

	// Reusable jobs, so that the calls that build them do not allocate.
	fj  funcJob
	mm  matJob
	qa  quantJob
	tmp [][tileRows * 8]float32 // per-worker output tile of MatMul
}

// worker is the parking state of one worker goroutine.
type worker struct {
	parked atomic.Bool
	wake   chan struct{} // capacity 1: a wake-up is never lost or blocking
}

// spinFor is how long an idle worker (and Run waiting for the last chunks)
// polls before parking.
const spinFor = 30 * time.Microsecond

// NewPool starts a pool of n workers (n <= 0 means GOMAXPROCS).
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n, tmp: make([][tileRows * 8]float32, n), done: make(chan struct{}, 1)}
	for id := 1; id < n; id++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(id, w)
	}
	return p
}

// loop is the life of worker id: wait for a new job, take chunks of it,
// repeat.
func (p *Pool) loop(id int, w *worker) {
	var gen uint32
	for {
		gen = p.waitJob(gen, w)
		if p.closed.Load() {
			return
		}
		p.work(id, gen)
	}
}

// waitJob returns the generation of the current job once it differs from
// seen, spinning first and then parking on w.wake.
func (p *Pool) waitJob(seen uint32, w *worker) uint32 {
	gen := func() uint32 { return uint32(p.state.Load() >> 32) }
	if spinUntil(func() bool { return gen() != seen }) {
		return gen()
	}
	for {
		w.parked.Store(true)
		// Check again after announcing the park: Run publishes a job
		// before it looks at parked, so one of the two sees the other.
		if g := gen(); g != seen {
			if !w.parked.CompareAndSwap(true, false) {
				<-w.wake // Run saw us parked and sent a wake-up: take it
			}
			return g
		}
		<-w.wake
		if g := gen(); g != seen || p.closed.Load() {
			return g
		}
	}
}

// spinUntil polls cond for up to spinFor and reports whether it held.
func spinUntil(cond func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i&127 == 127 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > spinFor {
				return false
			}
		}
	}
}

// Threads is the number of workers, the caller included.
func (p *Pool) Threads() int { return p.n }

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	p.once.Do(func() {
		p.closed.Store(true)
		p.state.Add(1 << 32)
		for _, w := range p.workers {
			if w.parked.CompareAndSwap(true, false) {
				w.wake <- struct{}{}
			}
		}
	})
}

// maxChunks bounds how finely Run cuts a range: enough chunks for the
// faster workers to make up for a slow one, few enough that claiming them
// costs nothing (and that the count fits the state word).
func (p *Pool) maxChunks() int { return 8 * p.n }

// Run calls j.Run on disjoint sub-ranges that cover [0, n), in parallel,
// and returns when all are done. Sub-ranges are multiples of grain (except
// the last) so that work split by rows never separates what belongs
// together; with more than a few chunks of grain per worker, Run makes the
// chunks larger.
func (p *Pool) Run(n, grain int, j Job) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := (n + grain - 1) / grain
	if p.n <= 1 || chunks <= 1 {
		j.Run(0, 0, n)
		return
	}
	if limit := p.maxChunks(); chunks > limit {
		grain *= (chunks + limit - 1) / limit
		chunks = (n + grain - 1) / grain
	}
	p.job, p.size, p.chunk = j, n, grain
	p.finished.Store(0)
	gen := uint32(p.state.Load()>>32) + 1
	p.state.Store(uint64(gen)<<32 | uint64(chunks)<<16)
	for _, w := range p.workers[:min(len(p.workers), chunks-1)] {
		if w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	p.work(0, gen)
	all := int64(chunks)
	if !spinUntil(func() bool { return p.finished.Load() == all }) {
		p.waiting.Store(true)
		if p.finished.Load() == all {
			// The last chunk finished between the spin and now; if its
			// worker also saw waiting, it sent on done: drain that.
			if !p.waiting.CompareAndSwap(true, false) {
				<-p.done
			}
		} else {
			<-p.done
		}
	}
	p.job = nil
	if v := p.panicked.Swap(nil); v != nil {
		panic(*v)
	}
}

// runChunk runs one chunk of the current job. A panic in the job is kept
// (the first one wins) and raised again by Run in its caller once every
// chunk is done, so that a failing job fails the call that ran it — which
// a server can recover from — instead of killing the process from a
// worker goroutine, and the pool stays usable.
func (p *Pool) runChunk(w, lo, hi int) {
	defer func() {
		if r := recover(); r != nil {
			p.keepPanic(r)
		}
	}()
	p.job.Run(w, lo, hi)
}

// keepPanic records the first panic of a job. It is a separate function so
// that only a panicking chunk allocates the saved value.
func (p *Pool) keepPanic(r any) {
	v := r
	p.panicked.CompareAndSwap(nil, &v)
}

// work claims and runs chunks of job gen until none are left.
func (p *Pool) work(w int, gen uint32) {
	for {
		s := p.state.Load()
		if uint32(s>>32) != gen {
			return
		}
		c, chunks := int(s&0xffff), int(s>>16&0xffff)
		if c >= chunks {
			return
		}
		if !p.state.CompareAndSwap(s, s+1) {
			continue
		}
		lo := c * p.chunk
		p.runChunk(w, lo, min(lo+p.chunk, p.size))
		if p.finished.Add(1) == int64(chunks) && w != 0 && p.waiting.CompareAndSwap(true, false) {
			p.done <- struct{}{}
		}
	}
}

// funcJob adapts a closure to Job.
type funcJob struct {
	fn func(worker, lo, hi int)
	f  func(lo, hi int)
}

func (j *funcJob) Run(w, lo, hi int) {
	if j.fn != nil {
		j.fn(w, lo, hi)
	} else {
		j.f(lo, hi)
	}
}

// For calls fn on disjoint sub-ranges that cover [0, n), in parallel, and
// returns when all are done; see Run. A closure that captures variables is
// allocated on the heap at each call, so loops that must not allocate use
// Run with a Job instead.
func (p *Pool) For(n, grain int, fn func(lo, hi int)) {
	p.fj = funcJob{f: fn}
	p.Run(n, grain, &p.fj)
	p.fj = funcJob{}
}

// ForWorker is For that also tells fn which worker (0..Threads()-1) runs
// it, so callers can give each worker its own scratch memory.
func (p *Pool) ForWorker(n, grain int, fn func(worker, lo, hi int)) {
	p.fj = funcJob{fn: fn}
	p.Run(n, grain, &p.fj)
	p.fj = funcJob{}
}
