package quant

import (
	"bufio"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/model"
	"github.com/kvgo/kvgo/tokenizer"
)

// codecUnderTest is a recipe codec compared with the F32 cache, with its
// tolerances:
//
//   - random, real: the largest error of an attention output, ||o - o_f32||
//     in units of the RMS norm of the stored value vectors (per head), on
//     the synthetic keys/values of TestCacheAttentionRandom and on
//     kvgo-tiny's real keys/values in TestCacheAttentionRealKV. Units of a
//     value vector rather than of ||o_f32||, because a diffuse attention
//     averages values towards zero and would make any error look large.
//   - kl: the mean KL divergence of kvgo-tiny's next-token distributions
//     against the F32 cache's over a 500-token prompt (TestModelFidelity).
//   - exact: how far attention read from the codes may be from float64
//     attention over the decoded vectors, in value norms. 5e-6 (float32
//     rounding) unless the keys are KIVI's: their Dot rounds the query,
//     with the page's per-channel scales folded in, to 16 bits, which moves
//     each score by up to max|q·s|/65534·Σu (see kiviKeyPage.Dot); 4e-4
//     is about twice the worst this test measures, and a mis-read code or
//     stride moves outputs by whole value norms.
//
// The tolerances are about 1.5x the worst measured (the tests are seeded),
// and their order follows the formats: 8-bit ~1-2% of a value's norm,
// 4-bit per-token blocks ~15-30% on keys with outlier channels (the case
// KIVI's per-channel keys fix: 4-bit KIVI is ~2x better), 2-bit KIVI
// ~50-75% in the worst head while its mean error on real data is ~10%.
type codecUnderTest struct {
	testCodec
	random, real, kl float64
	exact            float64
}

func codecsUnderTest(t testing.TB) []codecUnderTest {
	k2, v2 := mustKIVI(t, 2, 32, 128)
	k4, v4 := mustKIVI(t, 4, 32, 128)
	k2s, v2s := mustKIVI(t, 2, 32, 16) // short residual: most tokens quantized
	q8, q8a := mustBlock(t, 8, 32, false), mustBlock(t, 8, 32, true)
	q4, q4a := mustBlock(t, 4, 32, false), mustBlock(t, 4, 32, true)
	return []codecUnderTest{
		{testCodec{"f16", F16{}, F16{}}, 1e-3, 1e-3, 1e-5, 5e-6},
		{testCodec{"q8", q8, q8}, 0.03, 0.02, 1e-4, 5e-6},
		{testCodec{"q8-asym", q8a, q8a}, 0.03, 0.015, 1e-4, 5e-6},
		{testCodec{"q4", q4, q4}, 0.45, 0.25, 0.01, 5e-6},
		{testCodec{"q4-asym", q4a, q4a}, 0.45, 0.2, 0.01, 5e-6},
		{testCodec{"kivi-4", k4, v4}, 0.25, 0.16, 0.002, 4e-4},
		{testCodec{"kivi-2", k2, v2}, 0.85, 1.1, 0.03, 4e-4},
		{testCodec{"kivi-2-r16", k2s, v2s}, 0.9, 1.1, 0.12, 4e-4},
	}
}

// l2 is ||a-b||.
func l2(a, b []float32) float64 {
	var s float64
	for i := range a {
		e := float64(a[i]) - float64(b[i])
		s += e * e
	}
	return math.Sqrt(s)
}

// fillCache stores T tokens one step at a time (the decode path: every
// token is encoded as it arrives, KIVI seals groups as they leave the
// residual) into a 1-layer cache of kvHeads heads.
func fillCache(t testing.TB, c *kv.Cache, k, v []float32, T int) {
	t.Helper()
	row := len(k) / T
	for i := 0; i < T; i++ {
		if err := c.Begin([]int32{int32(i)}); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < c.Shape().Layers; l++ {
			c.Store(l, k[i*row:(i+1)*row], v[i*row:(i+1)*row])
		}
		c.End()
	}
}

// TestCacheAttentionRandom compares attention through whole caches (pages
// of every codec, online softmax across pages and the F32 tail) with the
// F32 cache on keys and values with outlier channels, for diffuse queries
// and for queries aimed at one stored key, at several query positions; and
// with exact attention over the cache's own decoded vectors, which it must
// equal to float32 rounding.
func TestCacheAttentionRandom(t *testing.T) {
	const T, H, g = 300, 2, 3
	for _, d := range []int{32, 64, 128} {
		rng := rand.New(rand.NewPCG(uint64(d), 13))
		shape := kv.Shape{Layers: 1, KVHeads: H, HeadDim: d}
		k := keyData(rng, T*H, d)
		v := valueData(rng, T*H, d)
		ref, _ := kv.New(shape, kv.Config{K: F32{}, V: F32{}}, T)
		fillCache(t, ref, k, v, T)
		vrms := math.Sqrt(dot64(v, v) / float64(T*H))
		// Queries: diffuse (normal noise) and aimed (a scaled stored key of
		// the same head plus noise, so a few tokens dominate).
		type query struct {
			pos int32
			h   int
			q   []float32
		}
		var qs []query
		for n := 0; n < 24; n++ {
			pos := int32(rng.IntN(T))
			if n%4 == 0 {
				pos = T - 1
			}
			h := rng.IntN(H)
			q := make([]float32, g*d)
			for j := range q {
				q[j] = float32(rng.NormFloat64())
			}
			if n%2 == 1 {
				target := rng.IntN(int(pos) + 1)
				kt := k[(target*H+h)*d : (target*H+h+1)*d]
				for j := 0; j < g; j++ {
					for c := 0; c < d; c++ {
						q[j*d+c] = 0.3*q[j*d+c] + kt[c]
					}
				}
			}
			// Scale each head's query so its logits over the visible tokens
			// have a standard deviation of 2.5, as real attention logits do
			// (an aimed query then gives its target a margin of several
			// units, a diffuse one spreads its weight).
			for j := 0; j < g; j++ {
				qj := q[j*d : (j+1)*d]
				var s1, s2 float64
				for i := 0; i <= int(pos); i++ {
					l := dot64(qj, k[(i*H+h)*d:(i*H+h+1)*d]) / math.Sqrt(float64(d))
					s1, s2 = s1+l, s2+l*l
				}
				m := float64(pos + 1)
				sd := math.Sqrt(max(s2/m-(s1/m)*(s1/m), 1e-12))
				for c := range qj {
					qj[c] *= float32(2.5 / sd)
				}
			}
			qs = append(qs, query{pos, h, q})
		}
		sc := kv.NewScratch(g)
		want := make([][]float32, len(qs))
		for i, q := range qs {
			want[i] = make([]float32, g*d)
			ref.Attend(0, q.h, q.q, g, q.pos, want[i], sc)
		}
		for _, c := range codecsUnderTest(t) {
			cache, err := kv.New(shape, kv.Config{K: c.k, V: c.v}, T)
			if err != nil {
				t.Fatal(err)
			}
			fillCache(t, cache, k, v, T)
			if cache.Bytes() >= ref.Bytes() {
				t.Errorf("%s d=%d: %d bytes, F32 cache %d", c.name, d, cache.Bytes(), ref.Bytes())
			}
			worst, exact := 0.0, 0.0
			got := make([]float32, g*d)
			for i, q := range qs {
				cache.Attend(0, q.h, q.q, g, q.pos, got, sc)
				worst = max(worst, l2(got, want[i])/(math.Sqrt(float64(g))*vrms))
				dec := decodedAttention(cache.Stream(0, q.h), q.q, g, q.pos)
				for j := range got {
					exact = max(exact, math.Abs(float64(got[j])-dec[j])/vrms)
				}
			}
			// The cache's attention (pages read from their codes, online
			// softmax across pages and the F32 tail) must equal float64
			// attention over the decoded vectors up to float32 rounding.
			if exact > c.exact || math.IsNaN(exact) {
				t.Errorf("%s d=%d: attention differs from attention over the decoded vectors by %.3g value norms", c.name, d, exact)
			}
			t.Logf("%-10s d=%3d: worst attention error %.4f value norms (tolerance %g), %d bytes (F32 %d)", c.name, d, worst, c.random, cache.Bytes(), ref.Bytes())
			if worst > c.random || math.IsNaN(worst) {
				t.Errorf("%s d=%d: attention error %.4f > %g", c.name, d, worst, c.random)
			}
		}
	}
}

// decodedAttention is causal softmax attention in float64 over the
// decoded keys and values of a stream (1/sqrt(d) scaling, as kv.Cache).
func decodedAttention(s *kv.Stream, q []float32, g int, qpos int32) []float64 {
	d, T := s.Dim(), s.Len()
	ks, vs := make([]float32, T*d), make([]float32, T*d)
	for i := 0; i < T; i++ {
		s.Vector(i, ks[i*d:(i+1)*d], vs[i*d:(i+1)*d])
	}
	out := make([]float64, g*d)
	for j := 0; j < g; j++ {
		qj := q[j*d : (j+1)*d]
		l := make([]float64, T)
		m := math.Inf(-1)
		for i := range l {
			l[i] = math.Inf(-1)
			if s.Positions()[i] <= qpos {
				l[i] = dot64(qj, ks[i*d:(i+1)*d]) / math.Sqrt(float64(d))
			}
			m = math.Max(m, l[i])
		}
		var z float64
		for i := range l {
			w := math.Exp(l[i] - m)
			z += w
			for c := 0; c < d; c++ {
				out[j*d+c] += w * float64(vs[i*d+c])
			}
		}
		for c := 0; c < d; c++ {
			out[j*d+c] /= z
		}
	}
	return out
}

// tinyModel opens kvgo-tiny and its tokenizer, or skips.
func tinyModel(t *testing.T) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "models", "kvgo-tiny.gguf")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("kvgo-tiny model not found at %s (shared test data absent): %v", path, err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// passkeyCases returns the first n 512-token passkey cases of the shared
// retrieval set (none when it is absent).
func passkeyCases(n int) (prompts, answers []string) {
	f, err := os.Open(filepath.Join("..", "..", "..", "shared", "eval", "retrieval-dev.jsonl"))
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() && len(prompts) < n {
		var c struct {
			Task    string `json:"task"`
			Context int    `json:"context_tokens"`
			Prompt  string `json:"prompt"`
			Answer  string `json:"answer"`
		}
		if json.Unmarshal(sc.Bytes(), &c) == nil && c.Task == "passkey" && c.Context == 512 {
			prompts, answers = append(prompts, c.Prompt), append(answers, c.Answer)
		}
	}
	return prompts, answers
}

// softmax64 returns the softmax of logits in float64.
func softmax64(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	p := make([]float64, len(x))
	var s float64
	for i, v := range x {
		p[i] = math.Exp(float64(v) - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

func argmax(x []float32) int {
	b := 0
	for i, v := range x {
		if v > x[b] {
			b = i
		}
	}
	return b
}

// TestModelFidelity runs kvgo-tiny over a ~500-token passkey prompt (the
// first 512-token case of the shared retrieval set that the F32 cache
// answers) with each codec, compares every position's next-token
// distribution with the F32 cache's (mean KL divergence against the
// codec's kl tolerance; top-1 agreement and the largest logit change are
// reported), and decodes the answer greedily: every codec must retrieve
// the passkey, except 2-bit KIVI with a 16-token residual, which is only
// reported.
func TestModelFidelity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kvgo-tiny over 500 tokens ten times")
	}
	m, tok := tinyModel(t)
	prompts, answers := passkeyCases(4)
	if len(prompts) == 0 {
		t.Skip("shared/eval/retrieval-dev.jsonl absent")
	}
	const gen = 6
	pool := kernel.NewPool(2)
	defer pool.Close()
	run := func(ids []int, cfg kv.Config) (logits [][]float32, out string, bytes int64) {
		ctx := len(ids) + gen
		cache, err := kv.New(m.CacheShape(), cfg, ctx)
		if err != nil {
			t.Fatal(err)
		}
		st := m.NewState(pool, 64, ctx)
		err = st.ForwardEach(cache, ids, 0, 0, func(_ int, l []float32) error {
			logits = append(logits, append([]float32(nil), l...))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		next := argmax(logits[len(logits)-1])
		var outIDs []int
		for i := 0; i < gen; i++ {
			outIDs = append(outIDs, next)
			l, err := st.Forward(cache, []int{next}, len(ids)+i)
			if err != nil {
				t.Fatal(err)
			}
			next = argmax(l)
		}
		return logits, tok.Decode(outIDs, true), cache.Bytes()
	}
	var ids []int
	var ref [][]float32
	var refOut string
	var refBytes int64
	for i, p := range prompts {
		ids = tok.Encode(p, true, false)
		ref, refOut, refBytes = run(ids, kv.Config{K: F32{}, V: F32{}})
		if strings.HasPrefix(strings.TrimSpace(refOut), answers[i]) {
			t.Logf("case %d: %d prompt tokens; F32 cache answers %q (expected %q), %d KV bytes", i, len(ids), refOut, answers[i], refBytes)
			break
		}
		t.Logf("case %d: F32 cache answers %q, expected %q; trying the next case", i, refOut, answers[i])
		if i == len(prompts)-1 {
			t.Skip("kvgo-tiny answers none of the passkey cases with the F32 cache")
		}
	}
	for _, c := range codecsUnderTest(t) {
		got, out, bytes := run(ids, kv.Config{K: c.k, V: c.v})
		var kl, klMax, dMax float64
		agree := 0
		for i := range ref {
			p, q := softmax64(ref[i]), softmax64(got[i])
			var s float64
			for j := range p {
				if p[j] > 0 {
					s += p[j] * (math.Log(p[j]) - math.Log(max(q[j], 1e-300)))
				}
				dMax = max(dMax, math.Abs(float64(ref[i][j])-float64(got[i][j])))
			}
			kl += s
			klMax = max(klMax, s)
			if argmax(ref[i]) == argmax(got[i]) {
				agree++
			}
		}
		kl /= float64(len(ref))
		t.Logf("%-10s mean KL %.5f (tolerance %g), max KL %.4f, top-1 %.1f%%, max |Δlogit| %.3f, answer %q, %d bytes (%.2fx less than F32)",
			c.name, kl, c.kl, klMax, 100*float64(agree)/float64(len(ref)), dMax, out, bytes, float64(refBytes)/float64(bytes))
		if kl > c.kl || math.IsNaN(kl) {
			t.Errorf("%s: mean KL divergence %.5f > %g", c.name, kl, c.kl)
		}
		if c.name != "kivi-2-r16" && out != refOut {
			t.Errorf("%s: greedy answer %q, F32 cache answers %q", c.name, out, refOut)
		}
	}
}

// TestCacheAttentionRealKV replays the keys and values kvgo-tiny stored
// for a real prompt into caches of each codec and compares attention with
// the F32 cache in every (layer, KV head), using the real keys of the last
// positions as queries (keys and queries share RoPE'd space, and real keys
// carry the outlier channels that make key quantization hard).
func TestCacheAttentionRealKV(t *testing.T) {
	m, tok := tinyModel(t)
	prompts, _ := passkeyCases(1)
	if len(prompts) == 0 {
		t.Skip("shared/eval/retrieval-dev.jsonl absent")
	}
	ids := tok.Encode(prompts[0], true, false)
	T := len(ids)
	pool := kernel.NewPool(2)
	defer pool.Close()
	shape := m.CacheShape()
	ref, _ := kv.New(shape, kv.Config{K: F32{}, V: F32{}}, T)
	if _, err := m.NewState(pool, 64, T).Forward(ref, ids, 0); err != nil {
		t.Fatal(err)
	}
	// Gather the stored K/V as rows of KVHeads*HeadDim per token per layer.
	d, H, L := shape.HeadDim, shape.KVHeads, shape.Layers
	ks := make([][]float32, L)
	vs := make([][]float32, L)
	for l := 0; l < L; l++ {
		ks[l] = make([]float32, T*H*d)
		vs[l] = make([]float32, T*H*d)
		for h := 0; h < H; h++ {
			s := ref.Stream(l, h)
			for i := 0; i < T; i++ {
				off := (i*H + h) * d
				s.Vector(i, ks[l][off:off+d], vs[l][off:off+d])
			}
		}
	}
	const g = 2
	sc := kv.NewScratch(g)
	for _, c := range codecsUnderTest(t) {
		cache, _ := kv.New(shape, kv.Config{K: c.k, V: c.v}, T)
		for i := 0; i < T; i++ {
			cache.Begin([]int32{int32(i)})
			for l := 0; l < L; l++ {
				cache.Store(l, ks[l][i*H*d:(i+1)*H*d], vs[l][i*H*d:(i+1)*H*d])
			}
			cache.End()
		}
		var vrms float64
		for l := 0; l < L; l++ {
			vrms += dot64(vs[l], vs[l])
		}
		vrms = math.Sqrt(vrms / float64(L*T*H))
		worst, sum, n := 0.0, 0.0, 0
		want, got := make([]float32, g*d), make([]float32, g*d)
		for l := 0; l < L; l++ {
			for h := 0; h < H; h++ {
				for _, pos := range []int{T - 1, T - 2, T - 3, T / 2} {
					q := make([]float32, g*d)
					for j := 0; j < g; j++ {
						copy(q[j*d:], ks[l][((pos-j)*H+h)*d:((pos-j)*H+h+1)*d])
					}
					ref.Attend(l, h, q, g, int32(pos), want, sc)
					cache.Attend(l, h, q, g, int32(pos), got, sc)
					e := l2(got, want) / (math.Sqrt(g) * vrms)
					worst, sum, n = max(worst, e), sum+e, n+1
				}
			}
		}
		t.Logf("%-10s real K/V: attention error mean %.4f, worst %.4f value norms (tolerance %g)", c.name, sum/float64(n), worst, c.real)
		if worst > c.real || math.IsNaN(worst) {
			t.Errorf("%s: attention error on real K/V %.4f > %g", c.name, worst, c.real)
		}
	}
}
