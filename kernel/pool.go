// Package kernel holds the numeric kernels of the forward pass (matrix
// products for every weight type, normalization, softmax, RoPE, SiLU) and
// the worker pool that runs them on several cores.
//
// On amd64 with AVX2, FMA and F16C the hot loops run in Go assembly (the
// *_amd64.s files); everywhere else, and when the environment variable
// KVGO_GENERIC=1 is set at start-up or the build tag kvgo_generic is given,
// the pure-Go versions run instead. The pure-Go versions are the reference
// the assembly is tested against (see the *_test.go files), and they in turn
// are tested against the slow, ggml-exact reference in package quant.
package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
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
// Work is handed out in chunks through an atomic counter rather than split
// into one fixed part per worker, so a worker whose core is busy with
// something else (another process, the garbage collector) does not hold up
// the others: the faster workers take more chunks.
type Pool struct {
	n    int
	wake []chan struct{} // one per worker 1..n-1
	done sync.WaitGroup
	once sync.Once

	// The job being run; written by Run before the workers are woken and
	// read by them afterwards (the channel send orders the two).
	job         Job
	size, chunk int
	chunks      int64
	next        atomic.Int64

	// Reusable jobs, so that the calls that build them do not allocate.
	fj  funcJob
	mm  matJob
	qa  quantJob
	tmp [][tileRows * 4]float32 // per-worker output tile of MatMul
}

// NewPool starts a pool of n workers (n <= 0 means GOMAXPROCS).
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n, tmp: make([][tileRows * 4]float32, n)}
	for w := 1; w < n; w++ {
		ch := make(chan struct{})
		p.wake = append(p.wake, ch)
		go func() {
			for range ch {
				p.work(w)
				p.done.Done()
			}
		}()
	}
	return p
}

// Threads is the number of workers, the caller included.
func (p *Pool) Threads() int { return p.n }

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	p.once.Do(func() {
		for _, ch := range p.wake {
			close(ch)
		}
	})
}

// chunksPerWorker bounds how finely Run cuts a range: enough chunks for
// the faster workers to make up for a slow one, few enough that the atomic
// counter costs nothing.
const chunksPerWorker = 8

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
	workers := min(p.n, chunks)
	if workers <= 1 {
		j.Run(0, 0, n)
		return
	}
	if limit := chunksPerWorker * workers; chunks > limit {
		grain *= (chunks + limit - 1) / limit
		chunks = (n + grain - 1) / grain
	}
	p.job, p.size, p.chunk, p.chunks = j, n, grain, int64(chunks)
	p.next.Store(0)
	p.done.Add(workers - 1)
	for w := 1; w < workers; w++ {
		p.wake[w-1] <- struct{}{}
	}
	p.work(0)
	p.done.Wait()
	p.job = nil
}

// work takes chunks of the current job until none are left.
func (p *Pool) work(w int) {
	for {
		c := p.next.Add(1) - 1
		if c >= p.chunks {
			return
		}
		lo := int(c) * p.chunk
		p.job.Run(w, lo, min(lo+p.chunk, p.size))
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
