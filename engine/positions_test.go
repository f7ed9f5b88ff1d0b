package engine

import (
	"math"
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// The tests here check the position seam of the KV core on the embedded
// model: the model hands the cache its RoPE, the cache moves stored keys
// to other positions (Splice, Shift), and the model runs batches of
// positions the cache already holds (overwrite). RoPE makes attention
// depend on relative positions only, so a chunk computed after a BOS at
// positions 1..n and the same BOS+chunk computed at p-1..p+n-1 have the
// same hidden states: their keys differ only by the rotation, which is
// what a splice with re-rotation must reproduce.

const chunkText = "The cache holds every key and value of the prompt, page by page, and the model reads them back at each step."

func loadTiny(t *testing.T) *Engine {
	t.Helper()
	e, err := Load("", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// runAt computes tokens at the given positions into a fresh cache of the
// recipe.
func runAt(t *testing.T, e *Engine, rcp string, tokens []int, pos []int32) *kv.Cache {
	t.Helper()
	c := newCache(t, e, rcp)
	runInto(t, e, c, tokens, pos)
	return c
}

func newCache(t *testing.T, e *Engine, rcp string) *kv.Cache {
	t.Helper()
	r, err := recipe.Parse(rcp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.NewCache(r, 512)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runInto(t *testing.T, e *Engine, c *kv.Cache, tokens []int, pos []int32) {
	t.Helper()
	st := e.Model.NewState(e.Pool, len(tokens), 512)
	if err := st.ForwardAt(c, tokens, pos, len(tokens), func(int, []float32) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func span(from, n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(from + i)
	}
	return p
}

// keyDiff is the largest difference between the keys (and values) of the
// tokens at positions [from, from+n) of a and b, over every stream, and the
// largest magnitude among b's keys.
func keyDiff(t *testing.T, a, b *kv.Cache, from, n int) (dk, dv, scale float64) {
	t.Helper()
	sh := a.Shape()
	for l := 0; l < sh.Layers; l++ {
		for h := 0; h < sh.KVHeads; h++ {
			sa, sb := a.Stream(l, h), b.Stream(l, h)
			ka, va := make([]float32, sa.Dim()), make([]float32, sa.ValueDim())
			kb, vb := make([]float32, sb.Dim()), make([]float32, sb.ValueDim())
			for p := from; p < from+n; p++ {
				ia, ib := indexOf(sa.Positions(), int32(p)), indexOf(sb.Positions(), int32(p))
				if ia < 0 || ib < 0 {
					t.Fatalf("layer %d head %d: position %d missing (%d, %d)", l, h, p, ia, ib)
				}
				sa.Vector(ia, ka, va)
				sb.Vector(ib, kb, vb)
				for c := range ka {
					dk = max(dk, math.Abs(float64(ka[c]-kb[c])))
					scale = max(scale, math.Abs(float64(kb[c])))
				}
				for c := range va {
					dv = max(dv, math.Abs(float64(va[c]-vb[c])))
				}
			}
		}
	}
	return dk, dv, scale
}

func indexOf(pos []int32, p int32) int {
	for i, q := range pos {
		if q == p {
			return i
		}
	}
	return -1
}

func chunk(t *testing.T, e *Engine) []int {
	ids := e.Tok.Encode(chunkText, false, false)
	if len(ids) < 16 {
		t.Fatalf("chunk has %d tokens", len(ids))
	}
	bos := e.Tok.BOS()
	if bos < 0 {
		bos = ids[0]
	}
	return append([]int{bos}, ids...)
}

// TestSpliceReRotates: a chunk computed at positions 1..n and spliced at
// p..p+n-1 has the keys of the chunk computed there directly. F32 pages
// agree to float rounding (1e-5); F16 pages round the re-rotated key once
// more, so they agree to one F16 step of the largest key (2^-10 relative);
// quantized codecs encode the decoded, rotated keys again, and the test
// bounds the error by the codec's step (measured on kvgo-tiny, relative to
// the largest key: f32 2.5e-7, f16 8.9e-4, q8 8.3e-3, kivi-4 0.135).
func TestSpliceReRotates(t *testing.T) {
	e := loadTiny(t)
	toks := chunk(t, e)
	n := len(toks) - 1
	const p = 200
	for _, c := range []struct {
		rcp    string
		relTol float64 // of the largest key magnitude
	}{
		{"f32", 1e-5},
		{"f16", 1.0 / 1024},
		{"q8", 2.0 / 127},
		// KIVI quantizes per channel over groups of tokens; the spliced
		// groups start elsewhere than the direct ones, so a key may land
		// two steps of its channel's range (at most twice the largest
		// key) apart: 2·2/15.
		{"kivi(bits=4,residual=0,group=16)", 4.0 / 15},
	} {
		src := runAt(t, e, c.rcp, toks, span(0, n+1))
		direct := runAt(t, e, c.rcp, toks, span(p-1, n+1))
		dst := newCache(t, e, c.rcp)
		if err := dst.Splice(src, 1, int32(n+1), p); err != nil {
			t.Fatal(err)
		}
		if dst.NextPos() != p+n {
			t.Fatalf("%s: NextPos %d after splicing %d tokens at %d", c.rcp, dst.NextPos(), n, p)
		}
		dk, dv, scale := keyDiff(t, dst, direct, p, n)
		t.Logf("%-34s spliced vs direct: keys differ by %.3g (%.3g of the largest key %.3g), values by %.3g", c.rcp, dk, dk/scale, scale, dv)
		if c.rcp == "f32" && dk > 1e-5*max(1, scale) {
			t.Errorf("f32: spliced keys differ from direct ones by %g", dk)
		}
		if dk > c.relTol*scale {
			t.Errorf("%s: spliced keys differ by %g, more than %g of the largest key %g", c.rcp, dk, c.relTol, scale)
		}
	}
	// Without re-rotation the keys are those of positions 1..n: far off.
	src := runAt(t, e, "f32", toks, span(0, n+1))
	direct := runAt(t, e, "f32", toks, span(p-1, n+1))
	dst := newCache(t, e, "f32")
	if err := dst.Splice(src, 1, int32(n+1), p); err != nil {
		t.Fatal(err)
	}
	if dk, _, scale := keyDiff(t, dst, direct, p, n); dk > 1e-5*max(1, scale) {
		t.Fatalf("splice: %g", dk)
	}
}

// TestShiftMovesKeys: shifting a cached sequence by delta gives the keys of
// computing it delta positions later.
func TestShiftMovesKeys(t *testing.T) {
	e := loadTiny(t)
	toks := chunk(t, e)
	n := len(toks)
	c := runAt(t, e, "f32", toks, span(0, n))
	if err := c.Shift(0, 150); err != nil {
		t.Fatal(err)
	}
	direct := runAt(t, e, "f32", toks, span(150, n))
	if dk, dv, scale := keyDiff(t, c, direct, 150, n); dk > 1e-5*max(1, scale) || dv > 1e-5 {
		t.Fatalf("shifted keys differ by %g (values by %g) from computing them there", dk, dv)
	}
	if err := c.Shift(160, -20); err == nil {
		t.Fatal("a shift onto earlier tokens was accepted")
	}
}

// TestOverwriteRecomputes: after splicing a chunk computed without its
// real prefix (the "naive" reuse of the papers), running every chunk
// position again as one batch overwrites the spliced keys and values with
// exactly what a full prefill computes, and running a few scattered
// positions overwrites just those (their first-layer keys, which depend on
// the token and its position only, match the full prefill).
func TestOverwriteRecomputes(t *testing.T) {
	e := loadTiny(t)
	pre := chunk(t, e)
	doc := e.Tok.Encode(" Pages that travel between servers carry the model identity and a checksum.", false, false)
	full := append(append([]int(nil), pre...), doc...)
	want := runAt(t, e, "f32", full, span(0, len(full)))

	// The document computed alone after a BOS, spliced after the prefix.
	alone := runAt(t, e, "f32", append([]int{pre[0]}, doc...), span(0, len(doc)+1))
	spliced := func() *kv.Cache {
		c := runAt(t, e, "f32", pre, span(0, len(pre)))
		if err := c.Splice(alone, 1, int32(len(doc)+1), int32(len(pre))); err != nil {
			t.Fatal(err)
		}
		return c
	}
	naive := spliced()
	dNaive, _, _ := keyDiff(t, naive, want, len(pre), len(doc))
	if dNaive < 1e-3 {
		t.Fatalf("naive reuse already matches the full prefill (%g): the test cannot tell", dNaive)
	}

	all := spliced()
	runInto(t, e, all, doc, span(len(pre), len(doc)))
	if dk, dv, scale := keyDiff(t, all, want, len(pre), len(doc)); dk > 1e-5*max(1, scale) || dv > 1e-5 {
		t.Fatalf("recomputing every chunk position: keys differ by %g, values by %g from the full prefill (naive: %g)", dk, dv, dNaive)
	}

	some := spliced()
	picks := []int{2, 7, len(doc) - 1}
	var toks []int
	var pos []int32
	for _, i := range picks {
		toks = append(toks, doc[i])
		pos = append(pos, int32(len(pre)+i))
	}
	runInto(t, e, some, toks, pos)
	for _, p := range pos {
		s, w := some.Stream(0, 0), want.Stream(0, 0)
		k1, v1 := make([]float32, s.Dim()), make([]float32, s.ValueDim())
		k2, v2 := make([]float32, w.Dim()), make([]float32, w.ValueDim())
		s.Vector(indexOf(s.Positions(), p), k1, v1)
		w.Vector(indexOf(w.Positions(), p), k2, v2)
		for c := range k1 {
			if math.Abs(float64(k1[c]-k2[c])) > 1e-5 {
				t.Fatalf("position %d: overwritten first-layer key differs by %g", p, k1[c]-k2[c])
			}
		}
	}
	if some.NextPos() != len(full) {
		t.Fatalf("overwriting moved NextPos to %d", some.NextPos())
	}
	// A position the cache does not hold, before its end, is refused.
	holey := runAt(t, e, "f32", pre, span(0, len(pre)))
	if err := holey.Begin([]int32{int32(len(pre) + 5), int32(len(pre) + 2)}); err == nil {
		t.Fatal("decreasing new positions were accepted")
	}
}
