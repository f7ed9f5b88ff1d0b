package engine

import (
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// TestChunkStatsMatchReference: recorder.stats (blocks of tokens against
// tiles of keys, float32 scores, streams shared out on the pool) measures
// what statsReference, the definition key by key in float64, does, for
// every chunk of a prompt, the first one at position 0 included.
func TestChunkStatsMatchReference(t *testing.T) {
	e, err := Load("", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, bos := range []bool{true, false} {
		p := e.EncodeParts(ragParts([]int{2, 0, 3, 1}, "harbor"), bos, false)
		if !bos {
			// A chunk at position 0: the context before it is empty.
			p.Chunks = append([]Span{{0, p.Chunks[0].Start}}, p.Chunks...)
		}
		r, err := recipe.Parse("f16")
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.NewSession(r, 1024, len(p.Tokens))
		if err != nil {
			t.Fatal(err)
		}
		var segs []*segment
		for _, c := range p.Chunks {
			segs = append(segs, &segment{start: c.Start, end: c.End, chunk: true, hash: kv.TokenHash(p.Tokens[c.Start:c.End])})
		}
		rec := recordPrompt(t, e, s, p, segs)
		for i, m := range segs {
			got, want := rec.stats(s.Cache, m, segs), statsReference(rec, s.Cache, m, segs)
			if !slices.Equal(got.Before, want.Before) {
				t.Fatalf("chunk %d: Before %v, want %v", i, got.Before, want.Before)
			}
			for _, f := range []struct {
				name      string
				got, want []float32
			}{{"Inter", got.Inter, want.Inter}, {"A", got.A, want.A}, {"B", got.B, want.B}, {"Context", got.Context, want.Context}} {
				if len(f.got) != len(f.want) {
					t.Fatalf("chunk %d: %d values of %s, want %d", i, len(f.got), f.name, len(f.want))
				}
				for k := range f.got {
					if d := math.Abs(float64(f.got[k] - f.want[k])); d > 1e-5*max(1, math.Abs(float64(f.want[k]))) {
						t.Errorf("chunk %d: %s[%d] = %g, want %g", i, f.name, k, f.got[k], f.want[k])
					}
				}
			}
			if i > 0 && want.A[0] == 0 {
				t.Errorf("chunk %d: no attention to the chunks before it: the test cannot tell", i)
			}
		}
		s.Close()
	}
}

// recordPrompt prefills p into session s with a recorder of the chunks
// segs, as a chunked prefill records the chunks it computes.
func recordPrompt(t testing.TB, e *Engine, s *Session, p Prompt, segs []*segment) *recorder {
	pos := make([]int32, len(p.Tokens))
	for i := range pos {
		pos[i] = int32(i)
	}
	rec := newRecorder(e, pos, segs)
	s.State.Tap = rec.tap
	defer func() { s.State.Tap = nil }()
	if err := s.State.ForwardAt(s.Cache, p.Tokens, pos, len(p.Tokens), func(int, []float32) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return rec
}

// BenchmarkChunkStats: recorder.stats against the float64 definition key
// by key, for the last chunk of a kvgo-tiny RAG prompt (ns/op is wall
// time on all cores; the reference runs on one).
func BenchmarkChunkStats(b *testing.B) {
	e, err := Load("", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	p := e.EncodeParts(ragParts([]int{2, 0, 3, 1}, "harbor"), true, false)
	r, err := recipe.Parse("f16")
	if err != nil {
		b.Fatal(err)
	}
	s, err := e.NewSession(r, 1024, len(p.Tokens))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var segs []*segment
	for _, c := range p.Chunks {
		segs = append(segs, &segment{start: c.Start, end: c.End, chunk: true})
	}
	rec := recordPrompt(b, e, s, p, segs)
	m := segs[len(segs)-1]
	b.Run("blocked", func(b *testing.B) {
		for range b.N {
			rec.stats(s.Cache, m, segs)
		}
	})
	b.Run("reference", func(b *testing.B) {
		for range b.N {
			statsReference(rec, s.Cache, m, segs)
		}
	})
}

// statsReference is recorder.stats as its definition reads: for every
// layer, query head and token of chunk m, the softmax over the cached keys
// before it, computed key by key in float64 and summed by where each key
// lies.
func statsReference(r *recorder, c *kv.Cache, m *segment, chunks []*segment) *kv.ChunkStats {
	md := r.e.Model.Config
	sh := c.Shape()
	L, H, D := md.Layers, md.Heads, md.HeadDim
	group := H / sh.KVHeads
	n := m.end - m.start
	var prev []*segment
	for _, x := range chunks {
		if x.start < m.start {
			prev = append(prev, x)
		}
	}
	s := &kv.ChunkStats{Before: make([]kv.ChunkHash, len(prev)), Inter: make([]float32, len(prev)),
		A: make([]float32, L), B: make([]float32, L), Context: make([]float32, n)}
	for j, x := range prev {
		s.Before[j] = x.hash
	}
	scale := float64(sh.Scale)
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(sh.Dims(0).Key))
	}
	ctxSum := make([]float64, n)
	for l := 0; l < L; l++ {
		inter := make([]float64, len(prev))
		var intra float64
		for kh := 0; kh < sh.KVHeads; kh++ {
			st := c.Stream(l, kh)
			keys := st.Keys(nil)
			ps := st.Positions()
			dk := st.Dim()
			for g := 0; g < group; g++ {
				h := kh*group + g
				for tok := m.start; tok < m.end; tok++ {
					row := r.row[int32(tok)]
					q := r.q[l][row*H*D+h*D : row*H*D+(h+1)*D]
					T := sort.Search(len(ps), func(i int) bool { return ps[i] > int32(tok) })
					w := make([]float64, T)
					mx := math.Inf(-1)
					for i := 0; i < T; i++ {
						var d float64
						for x := range q {
							d += float64(q[x]) * float64(keys[i*dk+x])
						}
						w[i] = d * scale
						mx = max(mx, w[i])
					}
					var z float64
					for i := range w {
						w[i] = math.Exp(w[i] - mx)
						z += w[i]
					}
					for i := 0; i < T; i++ {
						p, a := ps[i], w[i]/z
						switch {
						case p >= int32(m.start):
							intra += a
						case p >= 1:
							ctxSum[tok-m.start] += a
						}
						for j, x := range prev {
							if p >= int32(x.start) && p < int32(x.end) {
								inter[j] += a
							}
						}
					}
				}
			}
		}
		var a float64
		for j, x := range prev {
			v := inter[j] / float64(H)
			s.Inter[j] += float32(v / float64(L))
			a += v / float64(n*(x.end-x.start))
		}
		s.A[l] = float32(a)
		s.B[l] = float32(intra / float64(H) / float64(n*n))
	}
	for i := range ctxSum {
		s.Context[i] = float32(ctxSum[i] / float64(L*H))
	}
	return s
}
