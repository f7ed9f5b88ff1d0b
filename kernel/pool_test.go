package kernel

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// countJob records how often each index was visited.
type countJob struct{ seen []atomic.Int32 }

func (j *countJob) Run(_, lo, hi int) {
	for i := lo; i < hi; i++ {
		j.seen[i].Add(1)
	}
}

func TestPoolCoversEveryIndexOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 5} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 7, 64, 1000, 4097} {
			for _, grain := range []int{0, 1, 3, 64} {
				j := &countJob{seen: make([]atomic.Int32, n)}
				p.Run(n, grain, j)
				for i := range j.seen {
					if c := j.seen[i].Load(); c != 1 {
						t.Fatalf("threads=%d n=%d grain=%d: index %d visited %d times", threads, n, grain, i, c)
					}
				}
			}
		}
		p.Close()
	}
}

// TestMatMulDoesNotAllocate is the decode loop's allocation check: a
// matrix-vector product through the pool, workers included, allocates
// nothing.
func TestMatMulDoesNotAllocate(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range []gguf.TensorType{gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeF16, gguf.TypeF32} {
		cols := 1024
		m := randomMatrix(t, rng, typ, 512, cols)
		for _, n := range []int{1, 5} {
			x := randomFloats(rng, n*cols)
			out := make([]float32, n*m.Rows)
			scratch := make([]byte, m.ActivationBytes(n))
			if a := testing.AllocsPerRun(50, func() { m.MatMul(p, out, x, n, scratch) }); a != 0 {
				t.Errorf("%s n=%d: MatMul allocates %v times per call", typ, n, a)
			}
		}
	}
}

// nopJob measures the pool's own cost.
type nopJob struct{}

func (nopJob) Run(_, _, _ int) {}

// BenchmarkPoolRun is the fixed cost of one parallel step (waking the
// workers and waiting for them), paid by every matrix product.
func BenchmarkPoolRun(b *testing.B) {
	p := NewPool(0)
	defer p.Close()
	var j nopJob
	for b.Loop() {
		p.Run(1024, 16, j)
	}
}

// panicJob panics on the chunk that holds index at.
type panicJob struct{ at int }

func (j *panicJob) Run(_, lo, hi int) {
	if lo <= j.at && j.at < hi {
		panic("boom")
	}
}

// TestPanicInJobReachesCaller checks that a panic on any worker comes back
// to Run's caller, and that the pool still works afterwards.
func TestPanicInJobReachesCaller(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	for _, at := range []int{0, 500, 999} {
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("at %d: recovered %v, want boom", at, r)
				}
			}()
			p.Run(1000, 1, &panicJob{at: at})
		}()
	}
	var sum atomic.Int64
	p.For(1000, 1, func(lo, hi int) { sum.Add(int64(hi - lo)) })
	if sum.Load() != 1000 {
		t.Errorf("after panics the pool covered %d of 1000", sum.Load())
	}
}
