package kv_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// naiveAttention is softmax(q·k/sqrt(d))·v over the given keys and values.
func naiveAttention(q []float32, keys, vals [][]float32) []float32 {
	d := len(q)
	scores := make([]float64, len(keys))
	m := math.Inf(-1)
	for i, k := range keys {
		var s float64
		for c := range q {
			s += float64(q[c]) * float64(k[c])
		}
		scores[i] = s / math.Sqrt(float64(d))
		m = max(m, scores[i])
	}
	var sum float64
	for i := range scores {
		scores[i] = math.Exp(scores[i] - m)
		sum += scores[i]
	}
	out := make([]float32, d)
	for i, v := range vals {
		for c := range out {
			out[c] += float32(scores[i] / sum * float64(v[c]))
		}
	}
	return out
}

func randVec(rng *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// fill stores n tokens of random keys and values at positions 0..n-1 in
// batches of the given size, and returns them per (layer, head).
func fill(t *testing.T, c *kv.Cache, n, batch int, rng *rand.Rand) (keys, vals [][][]float32) {
	s := c.Shape()
	keys = make([][][]float32, s.Streams())
	vals = make([][][]float32, s.Streams())
	for start := 0; start < n; start += batch {
		b := min(batch, n-start)
		pos := make([]int32, b)
		for i := range pos {
			pos[i] = int32(start + i)
		}
		if err := c.Begin(pos); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < s.Layers; l++ {
			k := make([]float32, 0, b*s.KVHeads*s.HeadDim)
			v := make([]float32, 0, b*s.KVHeads*s.HeadDim)
			for i := 0; i < b; i++ {
				for h := 0; h < s.KVHeads; h++ {
					kk, vv := randVec(rng, s.HeadDim), randVec(rng, s.HeadDim)
					k, v = append(k, kk...), append(v, vv...)
					keys[l*s.KVHeads+h] = append(keys[l*s.KVHeads+h], kk)
					vals[l*s.KVHeads+h] = append(vals[l*s.KVHeads+h], vv)
				}
			}
			c.Store(l, k, v)
		}
		c.End()
	}
	return keys, vals
}

func maxDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestAttentionMatchesNaive checks the online softmax over many pages,
// GQA groups and the causal mask by position.
func TestAttentionMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shape := kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 16}
	c, err := kv.New(shape, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	const n = 150 // several pages of 32 and a partial one
	keys, vals := fill(t, c, n, 37, rng)
	g := 3
	sc := kv.NewScratch(g)
	for _, qpos := range []int32{0, 31, 32, 100, n - 1} {
		for l := 0; l < shape.Layers; l++ {
			for h := 0; h < shape.KVHeads; h++ {
				q := randVec(rng, g*shape.HeadDim)
				out := make([]float32, g*shape.HeadDim)
				c.Attend(l, h, q, g, qpos, out, sc)
				st := l*shape.KVHeads + h
				for j := 0; j < g; j++ {
					want := naiveAttention(q[j*16:(j+1)*16], keys[st][:qpos+1], vals[st][:qpos+1])
					if d := maxDiff(out[j*16:(j+1)*16], want); d > 1e-5 {
						t.Fatalf("qpos %d layer %d head %d query %d: diff %g", qpos, l, h, j, d)
					}
				}
			}
		}
	}
	if c.Len() != n || c.NextPos() != n {
		t.Errorf("Len %d NextPos %d, want %d", c.Len(), c.NextPos(), n)
	}
}

// TestKeepFreesMemoryAndKeepsPositions deletes tokens and checks that the
// bytes fall, positions survive and attention sees only what was kept.
func TestKeepFreesMemoryAndKeepsPositions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 8}
	for _, codec := range []kv.Codec{kvquant.F32{}, kvquant.F16{}} {
		c, _ := kv.New(shape, kv.Config{K: codec, V: codec}, 4096)
		keys, vals := fill(t, c, 2000, 512, rng)
		before := c.Bytes()
		s := c.Stream(0, 0)
		keep := make([]bool, s.Len())
		var kk, vv [][]float32
		var wantPos []int32
		for i := range keep {
			keep[i] = i < 4 || i%10 == 0 || i >= 1990 // sinks, every tenth, a recent window
			if keep[i] {
				kk, vv = append(kk, keys[0][i]), append(vv, vals[0][i])
				wantPos = append(wantPos, int32(i))
			}
		}
		s.Keep(keep)
		after := c.Bytes()
		ratio := float64(after) / float64(before)
		if s.Len() != len(wantPos) {
			t.Fatalf("%s: %d tokens left, want %d", codec.Name(), s.Len(), len(wantPos))
		}
		for i, p := range s.Positions() {
			if p != wantPos[i] {
				t.Fatalf("%s: position %d is %d, want %d", codec.Name(), i, p, wantPos[i])
			}
		}
		kept := float64(len(wantPos)) / 2000
		if ratio > kept*1.3 || ratio < kept*0.7 {
			t.Errorf("%s: bytes fell to %.3f of before, want about %.3f (kept fraction)", codec.Name(), ratio, kept)
		}
		q := randVec(rng, 8)
		out := make([]float32, 8)
		c.Attend(0, 0, q, 1, 1999, out, kv.NewScratch(1))
		tol := 1e-5
		if codec.Name() == "f16" {
			tol = 5e-3
		}
		if d := maxDiff(out, naiveAttention(q, kk, vv)); d > tol {
			t.Errorf("%s: attention after Keep differs by %g", codec.Name(), d)
		}
		// Decoded vectors are the kept ones.
		k, v := make([]float32, 8), make([]float32, 8)
		s.Vector(5, k, v)
		if maxDiff(k, kk[5]) > tol || maxDiff(v, vv[5]) > tol {
			t.Errorf("%s: Vector(5) is not the 6th kept token", codec.Name())
		}
	}
}

func TestTruncate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shape := kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 8}
	c, _ := kv.New(shape, kv.Config{K: kvquant.F32{}, V: kvquant.F32{}}, 512)
	fill(t, c, 100, 100, rng)
	c.Truncate(40)
	if c.Len() != 40 || c.NextPos() != 40 {
		t.Fatalf("after Truncate(40): Len %d NextPos %d", c.Len(), c.NextPos())
	}
	if err := c.Begin([]int32{512}); err == nil {
		t.Error("position beyond capacity accepted")
	}
}

func TestNewErrors(t *testing.T) {
	f := kvquant.F32{}
	if _, err := kv.New(kv.Shape{}, kv.Config{K: f, V: f}, 10); err == nil {
		t.Error("zero shape accepted")
	}
	if _, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 8}, kv.Config{K: f, V: f}, 0); err == nil {
		t.Error("zero capacity accepted")
	}
	if _, err := kv.New(kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 8}, kv.Config{}, 10); err == nil {
		t.Error("missing codecs accepted")
	}
}

// TestFullF16BytesIsTheF16Cache checks the baseline of compression ratios
// against an F16 cache's own accounting.
func TestFullF16BytesIsTheF16Cache(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	shape := kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 32}
	for _, n := range []int{1, 31, 32, 33, 200} {
		c, _ := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, 512)
		fill(t, c, n, 64, rng)
		if got, want := c.Bytes(), kv.FullF16Bytes(shape, n); got != want {
			t.Errorf("n=%d: F16 cache holds %d bytes, FullF16Bytes says %d", n, got, want)
		}
		var perLayer int64
		for l := 0; l < shape.Layers; l++ {
			perLayer += c.LayerBytes(l)
		}
		if perLayer != c.Bytes() {
			t.Errorf("n=%d: layers hold %d bytes in all, the cache %d", n, perLayer, c.Bytes())
		}
	}
}

// TestForkSharesPagesCopyOnWrite forks a cache, changes both copies and
// checks that each sees its own tokens while unchanged pages stay shared.
func TestForkSharesPagesCopyOnWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: 8}
	for _, codec := range []kv.Codec{kvquant.F32{}, kvquant.F16{}} {
		a, _ := kv.New(shape, kv.Config{K: codec, V: codec}, 1024)
		keys, vals := fill(t, a, 100, 100, rng) // 3 full pages + 4 tokens
		before := a.Bytes()
		b := a.Fork()
		if a.OwnedBytes()+b.OwnedBytes() > before+before/10 {
			t.Errorf("%s: forked caches own %d+%d bytes, want about %d in total", codec.Name(), a.OwnedBytes(), b.OwnedBytes(), before)
		}
		// Different continuations.
		extend := func(c *kv.Cache, seed uint64) ([]float32, []float32) {
			r := rand.New(rand.NewPCG(seed, 1))
			k, v := randVec(r, 8), randVec(r, 8)
			if err := c.Begin([]int32{100}); err != nil {
				t.Fatal(err)
			}
			c.Store(0, k, v)
			c.End()
			return k, v
		}
		ka, va := extend(a, 1)
		kb, vb := extend(b, 2)
		q := randVec(rng, 8)
		sc := kv.NewScratch(1)
		for _, x := range []struct {
			c    *kv.Cache
			k, v []float32
		}{{a, ka, va}, {b, kb, vb}} {
			out := make([]float32, 8)
			x.c.Attend(0, 0, q, 1, 100, out, sc)
			want := naiveAttention(q, append(append([][]float32{}, keys[0]...), x.k), append(append([][]float32{}, vals[0]...), x.v))
			tol := 1e-5
			if codec.Name() == "f16" {
				tol = 5e-3
			}
			if d := maxDiff(out, want); d > tol {
				t.Errorf("%s: forked cache attends to the wrong tokens (diff %g)", codec.Name(), d)
			}
		}
		// Truncating one fork leaves the other intact.
		b.Truncate(50)
		if b.Len() != 50 || a.Len() != 101 {
			t.Errorf("%s: after truncating the fork: %d and %d tokens", codec.Name(), a.Len(), b.Len())
		}
		k, v := make([]float32, 8), make([]float32, 8)
		a.Stream(0, 0).Vector(70, k, v)
		tol := 1e-6
		if codec.Name() == "f16" {
			tol = 5e-3
		}
		if maxDiff(k, keys[0][70]) > tol {
			t.Errorf("%s: truncating the fork changed the original", codec.Name())
		}
		b.Release()
		if a.OwnedBytes() != a.Bytes() {
			t.Errorf("%s: after the fork is released the original owns %d of %d bytes", codec.Name(), a.OwnedBytes(), a.Bytes())
		}
	}
}
