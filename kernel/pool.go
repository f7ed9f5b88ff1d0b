// Package kernel holds the numeric kernels of the forward pass (matrix
// products for every weight type, normalization, softmax, RoPE, SiLU) and
// the worker pool that runs them on several cores.
package kernel

import (
	"runtime"
	"sync"
)

// Pool is a fixed set of worker goroutines that split index ranges between
// them. Workers live as long as the pool, so a decode step starts no
// goroutines. A Pool runs one job at a time; For must not be called
// concurrently on the same Pool.
type Pool struct {
	n     int
	tasks []chan task
	wg    sync.WaitGroup
	once  sync.Once
}

type task struct {
	fn     func(worker, lo, hi int)
	worker int
	lo, hi int
}

// NewPool starts a pool of n workers (n <= 0 means GOMAXPROCS).
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n}
	// Worker 0 is the calling goroutine; the others wait on channels.
	for i := 1; i < n; i++ {
		ch := make(chan task)
		p.tasks = append(p.tasks, ch)
		go func() {
			for t := range ch {
				t.fn(t.worker, t.lo, t.hi)
				p.wg.Done()
			}
		}()
	}
	return p
}

// Threads is the number of workers, the caller included.
func (p *Pool) Threads() int { return p.n }

// Close stops the workers.
func (p *Pool) Close() {
	p.once.Do(func() {
		for _, ch := range p.tasks {
			close(ch)
		}
	})
}

// For calls fn on disjoint sub-ranges that cover [0, n), in parallel, and
// returns when all are done. Ranges are multiples of grain (except the last)
// so that work split by rows never separates what belongs together.
func (p *Pool) For(n, grain int, fn func(lo, hi int)) {
	p.ForWorker(n, grain, func(_, lo, hi int) { fn(lo, hi) })
}

// ForWorker is For that also tells fn which worker (0..Threads()-1) runs
// it, so callers can give each worker its own scratch memory.
func (p *Pool) ForWorker(n, grain int, fn func(worker, lo, hi int)) {
	if grain < 1 {
		grain = 1
	}
	chunks := (n + grain - 1) / grain
	workers := min(p.n, chunks)
	if workers <= 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	per := (chunks + workers - 1) / workers * grain
	p.wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		lo := min(w*per, n)
		hi := min(lo+per, n)
		p.tasks[w-1] <- task{fn, w, lo, hi}
	}
	fn(0, 0, min(per, n))
	p.wg.Wait()
}
