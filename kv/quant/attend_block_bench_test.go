package quant

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// BenchmarkAttendBlock is a prompt batch's attention over one (layer, KV
// head) stream: 512 new tokens after 3584 cached ones (qwen2.5-0.5b's
// d=64, g=7), token by token (block=1, Attend) against query blocks of
// 4 to 64 tokens (AttendBlock), per codec. ns/pair is per (query head,
// visible key): the work of one score and one weighted value; cpu-ns/pair
// counts the thread's CPU time only.
func BenchmarkAttendBlock(b *testing.B) {
	const d, g, depth, batch = 64, 7, 3584, 512
	k4, v4 := mustKIVI(b, 4, 32, 128)
	codecs := []struct {
		name string
		k, v kv.Codec
	}{
		{"f16", F16{}, F16{}},
		{"f32", F32{}, F32{}},
		{"q8", mustBlock(b, 8, 32, false), mustBlock(b, 8, 32, false)},
		{"kivi-4", k4, v4},
	}
	rng := rand.New(rand.NewPCG(3, 3))
	T := depth + batch
	k, v := keyData(rng, T, d), valueData(rng, T, d)
	q := keyData(rng, batch*g, d)
	for i := range q {
		q[i] *= 0.05
	}
	pos := make([]int32, batch)
	for i := range pos {
		pos[i] = int32(depth + i)
	}
	pairs := 0
	for _, p := range pos {
		pairs += g * (int(p) + 1)
	}
	for _, c := range codecs {
		cache, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}, kv.Config{K: c.k, V: c.v}, T)
		if err != nil {
			b.Fatal(err)
		}
		fillCache(b, cache, k[:depth*d], v[:depth*d], depth)
		if err := cache.Begin(pos); err != nil {
			b.Fatal(err)
		}
		cache.Store(0, k[depth*d:], v[depth*d:])
		sc := kv.NewScratch(g)
		out := make([]float32, batch*g*d)
		for _, blk := range []int{1, 4, 8, 16, 32, 64} {
			b.Run(fmt.Sprintf("%s/block=%d", c.name, blk), func(b *testing.B) {
				b.ReportAllocs()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0 := threadCPU()
				for b.Loop() {
					for i := 0; i < batch; i += blk {
						m := min(blk, batch-i)
						if blk == 1 {
							cache.Attend(0, 0, q[i*g*d:(i+1)*g*d], g, pos[i], out[i*g*d:(i+1)*g*d], sc)
							continue
						}
						cache.AttendBlock(0, 0, q[i*g*d:(i+m)*g*d], g*d, g, pos[i:i+m], out[i*g*d:(i+m)*g*d], g*d, sc)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(pairs), "ns/pair")
				b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/float64(b.N)/float64(pairs), "cpu-ns/pair")
			})
		}
	}
}

// BenchmarkAttendDecode is one decode step's attention over one (layer,
// KV head) stream of 8192 f16 tokens at qwen2.5-0.5b's d=64, g=7: the
// work of decode at depth 8192, per stream. cpu-ns/pair is the thread's
// CPU time per (query head, key).
func BenchmarkAttendDecode(b *testing.B) {
	const d, g, T = 64, 7, 8192
	rng := rand.New(rand.NewPCG(4, 4))
	k, v := keyData(rng, T, d), valueData(rng, T, d)
	q := keyData(rng, g, d)
	for i := range q {
		q[i] *= 0.05
	}
	cache, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: d}, kv.Config{K: F16{}, V: F16{}}, T)
	if err != nil {
		b.Fatal(err)
	}
	fillCache(b, cache, k, v, T)
	sc := kv.NewScratch(g)
	out := make([]float32, g*d)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	for b.Loop() {
		cache.Attend(0, 0, q, g, T-1, out, sc)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*T*g), "ns/pair")
	b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/float64(b.N*T*g), "cpu-ns/pair")
}
