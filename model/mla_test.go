package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

// mlaSpec is a small random deepseek2 model for tests.
type mlaSpec struct {
	layers, embd, heads, ffn, vocab int
	rank, qRank, nope, rope, value  int
	kvNorm, bias, freqs             bool
}

// tensors of a random deepseek2 model, F32, by name, row-major [out][in].
type mlaWeights map[string][]float32

func (sp mlaSpec) random(seed uint64) mlaWeights {
	rng := rand.New(rand.NewPCG(seed, 9))
	w := mlaWeights{}
	mat := func(name string, rows, cols int) {
		x := make([]float32, rows*cols)
		for i := range x {
			x[i] = float32(rng.NormFloat64() / math.Sqrt(float64(cols)))
		}
		w[name] = x
	}
	vec := func(name string, n int, base, noise float64) {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(base + noise*rng.NormFloat64())
		}
		w[name] = x
	}
	hd := sp.nope + sp.rope
	mat("token_embd.weight", sp.vocab, sp.embd)
	mat("output.weight", sp.vocab, sp.embd)
	vec("output_norm.weight", sp.embd, 1, 0.1)
	if sp.freqs {
		vec("rope_freqs.weight", sp.rope/2, 1.5, 0.3)
	}
	for l := 0; l < sp.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		vec(p+"attn_norm.weight", sp.embd, 1, 0.1)
		if sp.qRank > 0 {
			mat(p+"attn_q_a.weight", sp.qRank, sp.embd)
			vec(p+"attn_q_a_norm.weight", sp.qRank, 1, 0.1)
			mat(p+"attn_q_b.weight", sp.heads*hd, sp.qRank)
			if sp.bias {
				vec(p+"attn_q_b.bias", sp.heads*hd, 0, 0.1)
			}
		} else {
			mat(p+"attn_q.weight", sp.heads*hd, sp.embd)
			if sp.bias {
				vec(p+"attn_q.bias", sp.heads*hd, 0, 0.1)
			}
		}
		mat(p+"attn_kv_a_mqa.weight", sp.rank+sp.rope, sp.embd)
		if sp.bias {
			vec(p+"attn_kv_a_mqa.bias", sp.rank+sp.rope, 0, 0.1)
		}
		if sp.kvNorm {
			vec(p+"attn_kv_a_norm.weight", sp.rank, 1, 0.1)
		}
		mat(p+"attn_kv_b.weight", sp.heads*(sp.nope+sp.value), sp.rank)
		mat(p+"attn_output.weight", sp.embd, sp.heads*sp.value)
		vec(p+"ffn_norm.weight", sp.embd, 1, 0.1)
		mat(p+"ffn_gate.weight", sp.ffn, sp.embd)
		mat(p+"ffn_up.weight", sp.ffn, sp.embd)
		mat(p+"ffn_down.weight", sp.embd, sp.ffn)
	}
	return w
}

// file writes the weights as a deepseek2 GGUF in memory.
func (sp mlaSpec) file(t testing.TB, w mlaWeights) *gguf.File {
	var b gguf.Builder
	a := "deepseek2."
	b.Set("general.architecture", "deepseek2")
	b.Set(a+"context_length", uint32(512))
	b.Set(a+"embedding_length", uint32(sp.embd))
	b.Set(a+"block_count", uint32(sp.layers))
	b.Set(a+"feed_forward_length", uint32(sp.ffn))
	b.Set(a+"attention.head_count", uint32(sp.heads))
	b.Set(a+"attention.head_count_kv", uint32(sp.heads))
	b.Set(a+"attention.layer_norm_rms_epsilon", float32(1e-5))
	b.Set(a+"attention.key_length", uint32(sp.nope+sp.rope))
	b.Set(a+"attention.value_length", uint32(sp.value))
	b.Set(a+"attention.kv_lora_rank", uint32(sp.rank))
	if sp.qRank > 0 {
		b.Set(a+"attention.q_lora_rank", uint32(sp.qRank))
	}
	b.Set(a+"rope.dimension_count", uint32(sp.rope))
	b.Set(a+"rope.freq_base", float32(10000))
	b.Set(a+"leading_dense_block_count", uint32(sp.layers))
	b.Set(KeyMLAKVANorm, sp.kvNorm)
	b.Set(KeyMLABias, sp.bias)
	for _, name := range sortedKeys(w) {
		x := w[name]
		data := make([]byte, 4*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		shape := []uint64{uint64(len(x))}
		if !strings.Contains(name, "norm") && !strings.HasSuffix(name, ".bias") && name != "rope_freqs.weight" {
			cols := sp.cols(name)
			shape = []uint64{uint64(cols), uint64(len(x) / cols)}
		}
		b.AddTensor(name, gguf.TypeF32, shape, data)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (sp mlaSpec) cols(name string) int {
	switch {
	case strings.HasSuffix(name, "attn_q_b.weight"):
		return sp.qRank
	case strings.HasSuffix(name, "attn_kv_b.weight"):
		return sp.rank
	case strings.HasSuffix(name, "attn_output.weight"):
		return sp.heads * sp.value
	case strings.HasSuffix(name, "ffn_down.weight"):
		return sp.ffn
	}
	return sp.embd
}

func sortedKeys(w mlaWeights) []string { return slices.Sorted(maps.Keys(w)) }

// reference is the deepseek2 forward pass as llama.cpp's build_deepseek2
// computes it, decompressed (every head's k_nope and v built from the
// latent), in float64: the logits of every token.
func (sp mlaSpec) reference(w mlaWeights, tokens []int) [][]float64 {
	E, H, r, dn, dR, dv := sp.embd, sp.heads, sp.rank, sp.nope, sp.rope, sp.value
	hd := dn + dR
	matvec := func(m []float32, rows int, x []float64) []float64 {
		cols := len(x)
		y := make([]float64, rows)
		for i := range y {
			var s float64
			for j := 0; j < cols; j++ {
				s += float64(m[i*cols+j]) * x[j]
			}
			y[i] = s
		}
		return y
	}
	rms := func(x []float64, wt []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+1e-5)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * sc * float64(wt[i])
		}
		return y
	}
	add := func(x []float64, b []float32) {
		for i := range x {
			x[i] += float64(b[i])
		}
	}
	rope := func(x []float64, pos int) { // one head of dR values, adjacent pairs
		for i := 0; i < dR/2; i++ {
			th := math.Pow(10000, -2*float64(i)/float64(dR))
			if sp.freqs {
				th /= float64(w["rope_freqs.weight"][i])
			}
			s, c := math.Sincos(float64(pos) * th)
			a, b := x[2*i], x[2*i+1]
			x[2*i], x[2*i+1] = a*c-b*s, a*s+b*c
		}
	}
	T := len(tokens)
	xs := make([][]float64, T)
	for t, tok := range tokens {
		xs[t] = make([]float64, E)
		for j := range xs[t] {
			xs[t][j] = float64(w["token_embd.weight"][tok*E+j])
		}
	}
	for l := 0; l < sp.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := 0; t < T; t++ {
			h := rms(xs[t], w[p+"attn_norm.weight"])
			var q []float64
			if sp.qRank > 0 {
				q = matvec(w[p+"attn_q_b.weight"], H*hd, rms(matvec(w[p+"attn_q_a.weight"], sp.qRank, h), w[p+"attn_q_a_norm.weight"]))
				if sp.bias {
					add(q, w[p+"attn_q_b.bias"])
				}
			} else {
				q = matvec(w[p+"attn_q.weight"], H*hd, h)
				if sp.bias {
					add(q, w[p+"attn_q.bias"])
				}
			}
			kva := matvec(w[p+"attn_kv_a_mqa.weight"], r+dR, h)
			if sp.bias {
				add(kva, w[p+"attn_kv_a_mqa.bias"])
			}
			c := kva[:r]
			if sp.kvNorm {
				c = rms(c, w[p+"attn_kv_a_norm.weight"])
			}
			kv := matvec(w[p+"attn_kv_b.weight"], H*(dn+dv), c)
			kr := append([]float64(nil), kva[r:]...)
			rope(kr, t)
			k, v := make([]float64, H*hd), make([]float64, H*dv)
			for hh := 0; hh < H; hh++ {
				rope(q[hh*hd+dn:(hh+1)*hd], t)
				copy(k[hh*hd:], kv[hh*(dn+dv):hh*(dn+dv)+dn])
				copy(k[hh*hd+dn:], kr)
				copy(v[hh*dv:], kv[hh*(dn+dv)+dn:(hh+1)*(dn+dv)])
			}
			qs[t], ks[t], vs[t] = q, k, v
		}
		for t := 0; t < T; t++ {
			out := make([]float64, H*dv)
			for hh := 0; hh < H; hh++ {
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for u := 0; u <= t; u++ {
					var d float64
					for j := 0; j < hd; j++ {
						d += qs[t][hh*hd+j] * ks[u][hh*hd+j]
					}
					sc[u] = d / math.Sqrt(float64(hd))
					mx = max(mx, sc[u])
				}
				var sum float64
				for u := range sc {
					sc[u] = math.Exp(sc[u] - mx)
					sum += sc[u]
				}
				for u := range sc {
					for j := 0; j < dv; j++ {
						out[hh*dv+j] += sc[u] / sum * vs[u][hh*dv+j]
					}
				}
			}
			o := matvec(w[p+"attn_output.weight"], E, out)
			for j := range o {
				xs[t][j] += o[j]
			}
			h := rms(xs[t], w[p+"ffn_norm.weight"])
			g := matvec(w[p+"ffn_gate.weight"], sp.ffn, h)
			u := matvec(w[p+"ffn_up.weight"], sp.ffn, h)
			for j := range g {
				g[j] = g[j] / (1 + math.Exp(-g[j])) * u[j]
			}
			d := matvec(w[p+"ffn_down.weight"], E, g)
			for j := range d {
				xs[t][j] += d[j]
			}
		}
	}
	out := make([][]float64, T)
	for t := range xs {
		out[t] = matvec(w["output.weight"], sp.vocab, rms(xs[t], w["output_norm.weight"]))
	}
	return out
}

var mlaSpecs = map[string]mlaSpec{
	"plain":      {layers: 2, embd: 32, heads: 4, ffn: 48, vocab: 64, rank: 24, nope: 8, rope: 8, value: 12},
	"kv_a_norm":  {layers: 2, embd: 32, heads: 4, ffn: 48, vocab: 64, rank: 24, nope: 8, rope: 8, value: 12, kvNorm: true},
	"q_lora":     {layers: 2, embd: 32, heads: 3, ffn: 48, vocab: 64, rank: 16, qRank: 20, nope: 6, rope: 4, value: 8, kvNorm: true},
	"bias_freqs": {layers: 2, embd: 32, heads: 4, ffn: 48, vocab: 64, rank: 20, nope: 8, rope: 12, value: 8, bias: true, freqs: true},
}

// TestLatentAttentionMatchesDecompressed: the absorbed MLA forward pass
// (latent cache, W_UKᵀ·q, W_UV after attention) gives the logits of the
// decompressed deepseek2 forward pass, in one prompt batch and token by
// token, for each variant of the layout (kv_a norm, q-LoRA, biases,
// rope_freqs).
func TestLatentAttentionMatchesDecompressed(t *testing.T) {
	for name, sp := range mlaSpecs {
		t.Run(name, func(t *testing.T) {
			w := sp.random(1)
			m, err := Load(sp.file(t, w))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.CacheShape(); got.KVHeads != 1 || got.Dims(0) != (kv.Dims{Key: sp.rank + sp.rope, Value: sp.rank}) || !got.ValueInKey {
				t.Fatalf("cache shape %+v", got)
			}
			rng := rand.New(rand.NewPCG(2, 3))
			tokens := make([]int, 40)
			for i := range tokens {
				tokens[i] = rng.IntN(sp.vocab)
			}
			want := sp.reference(w, tokens)
			pool := kernel.NewPool(2)
			defer pool.Close()
			for _, batch := range []int{len(tokens), 1} {
				cache, err := kv.New(m.CacheShape(), kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, RoPE: m.Rotary()}, 512)
				if err != nil {
					t.Fatal(err)
				}
				st := m.NewState(pool, batch, 512)
				var worst float64
				for done := 0; done < len(tokens); done += batch {
					err := st.ForwardEach(cache, tokens[done:done+batch], done, 0, func(i int, l []float32) error {
						for j, x := range l {
							worst = max(worst, math.Abs(float64(x)-want[done+i][j]))
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				t.Logf("batch %d: max abs logit difference to the decompressed float64 reference %.3g", batch, worst)
				if worst > 2e-5 {
					t.Errorf("batch %d: logits differ from the decompressed reference by %.3g", batch, worst)
				}
			}
		})
	}
}

// TestLatentCacheMoves: the MLA model's Rotary turns only the rope part of
// a cached key, so a chunk computed at positions 0.. and shifted by 7
// holds the keys of computing it at 7.. (f32 pages).
func TestLatentCacheMoves(t *testing.T) {
	sp := mlaSpecs["kv_a_norm"]
	m, err := Load(sp.file(t, sp.random(4)))
	if err != nil {
		t.Fatal(err)
	}
	pool := kernel.NewPool(2)
	defer pool.Close()
	tokens := []int{1, 5, 9, 13, 2, 7, 30, 41, 50, 3}
	cfg := kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, RoPE: m.Rotary()}
	a, _ := kv.New(m.CacheShape(), cfg, 64)
	b, _ := kv.New(m.CacheShape(), cfg, 64)
	st := m.NewState(pool, 16, 64)
	if _, err := st.Forward(a, tokens, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Forward(b, tokens[:1], 0); err != nil {
		t.Fatal(err)
	}
	// b holds token 0 at 0 and the rest at 8..16, as does a after the shift.
	if _, err := st.Forward(b, tokens[1:], 8); err != nil {
		t.Fatal(err)
	}
	if err := a.Shift(1, 7); err != nil {
		t.Fatal(err)
	}
	d := m.CacheShape().Dims(0)
	ka, kb, va, vb := make([]float32, d.Key), make([]float32, d.Key), make([]float32, d.Value), make([]float32, d.Value)
	var worst float64
	for l := 0; l < sp.layers; l++ {
		sa, sb := a.Stream(l, 0), b.Stream(l, 0)
		// Layer 0's keys depend only on the token; later layers see
		// attention over other positions, which the shift does not redo,
		// so only layer 0 is compared.
		if l > 0 {
			break
		}
		for i := range sa.Positions() {
			if sa.Positions()[i] != sb.Positions()[i] {
				t.Fatalf("position %d vs %d", sa.Positions()[i], sb.Positions()[i])
			}
			sa.Vector(i, ka, va)
			sb.Vector(i, kb, vb)
			for c := range ka {
				worst = max(worst, math.Abs(float64(ka[c]-kb[c])))
			}
		}
	}
	t.Logf("max abs key difference after the shift %.3g", worst)
	if worst > 1e-5 {
		t.Fatalf("a shifted latent cache differs from computing at the new positions by %.3g", worst)
	}
}

// TestLatentDecodeDoesNotAllocate: an MLA decode step allocates nothing.
func TestLatentDecodeDoesNotAllocate(t *testing.T) {
	sp := mlaSpecs["q_lora"]
	m, err := Load(sp.file(t, sp.random(5)))
	if err != nil {
		t.Fatal(err)
	}
	pool := kernel.NewPool(2)
	defer pool.Close()
	cache, _ := kv.New(m.CacheShape(), kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, 512)
	st := m.NewState(pool, 8, 512)
	pos := 0
	for ; pos < 40; pos++ {
		if _, err := st.Forward(cache, []int{pos % sp.vocab}, pos); err != nil {
			t.Fatal(err)
		}
	}
	tok := make([]int, 1)
	allocs := testing.AllocsPerRun(20, func() {
		tok[0] = pos % sp.vocab
		if _, err := st.Forward(cache, tok, pos); err != nil {
			t.Fatal(err)
		}
		pos++
	})
	if allocs != 0 {
		t.Errorf("an MLA decode step allocates %.1f times", allocs)
	}
}

// TestMLAConfigErrors: files the MLA loader must refuse, each with an error
// that names the problem.
func TestMLAConfigErrors(t *testing.T) {
	sp := mlaSpecs["kv_a_norm"]
	w := sp.random(6)
	delete(w, "blk.1.attn_kv_a_norm.weight")
	if _, err := Load(sp.file(t, w)); err == nil || !strings.Contains(err.Error(), "attn_kv_a_norm") {
		t.Errorf("a missing latent norm gave %v", err)
	}
	sp.kvNorm = false // kvgo.mla.kv_a_norm=false: the norm may be absent
	if _, err := Load(sp.file(t, w)); err != nil {
		t.Errorf("kvgo.mla.kv_a_norm=false: %v", err)
	}
}

// BenchmarkLatentPrefillForms measures the attention of one MLA layer over
// a prompt of n tokens computed in one batch, in the two forms a prefill
// can take (projections to q, the latent and the FFN are the same in both
// and left out), on the converted qwen2.5-0.5b shape of docs/MLA.md: 14
// heads of 64, latent r=96 plus a rope key of 32.
//
//   - absorbed: every query becomes W_UKᵀ·q_nope (r values) and the rope
//     part, attends over the one-head latent cache (key r+d_R, value the
//     latent), and W_UV turns the result into the head's value;
//   - decompressed: every token's latent becomes per-head k_nope and v
//     (H·(d_nope+d_v)·r), stored in an H-head cache of key d_nope+d_R and
//     value d_v, then ordinary attention per head.
//
// Both use the same cache, codec (f16) and kernels.
func BenchmarkLatentPrefillForms(b *testing.B) {
	const H, dn, dR, dv, r = 14, 64, 32, 64, 96
	for _, n := range []int{512, 2048} {
		rng := rand.New(rand.NewPCG(1, 2))
		randv := func(k int) []float32 {
			x := make([]float32, k)
			for i := range x {
				x[i] = float32(rng.NormFloat64()) * 0.3
			}
			return x
		}
		ukt, uv := randv(H*r*dn), randv(H*dv*r)
		q := randv(n * H * (dn + dR))
		lat := randv(n * (r + dR))
		pool := kernel.NewPool(2)
		sc := []*kv.Scratch{kv.NewScratch(H), kv.NewScratch(H)}
		pos := make([]int32, n)
		for i := range pos {
			pos[i] = int32(i)
		}
		b.Run(fmt.Sprintf("absorbed/n=%d", n), func(b *testing.B) {
			shape := kv.Shape{Layers: 1, KVHeads: 1, HeadDim: r + dR, ValueDim: r, ValueInKey: true}
			qa, o, att := make([]float32, n*H*(r+dR)), make([]float32, n*H*r), make([]float32, n*H*dv)
			for b.Loop() {
				c, _ := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, n)
				c.Begin(pos)
				c.Store(0, lat, nil)
				pool.ForWorker(n, 1, func(w, lo, hi int) {
					for i := lo; i < hi; i++ {
						for h := 0; h < H; h++ {
							dst := qa[(i*H+h)*(r+dR) : (i*H+h+1)*(r+dR)]
							qn := q[(i*H+h)*(dn+dR) : (i*H+h)*(dn+dR)+dn]
							for k := 0; k < r; k++ {
								dst[k] = kernel.Dot(ukt[(h*r+k)*dn:(h*r+k+1)*dn], qn)
							}
							copy(dst[r:], q[(i*H+h)*(dn+dR)+dn:(i*H+h+1)*(dn+dR)])
						}
						c.Attend(0, 0, qa[i*H*(r+dR):(i+1)*H*(r+dR)], H, pos[i], o[i*H*r:(i+1)*H*r], sc[w])
						for h := 0; h < H; h++ {
							for k := 0; k < dv; k++ {
								att[(i*H+h)*dv+k] = kernel.Dot(uv[(h*dv+k)*r:(h*dv+k+1)*r], o[(i*H+h)*r:(i*H+h+1)*r])
							}
						}
					}
				})
				c.End()
			}
		})
		b.Run(fmt.Sprintf("decompressed/n=%d", n), func(b *testing.B) {
			shape := kv.Shape{Layers: 1, KVHeads: H, HeadDim: dn + dR, ValueDim: dv}
			k, v, att := make([]float32, n*H*(dn+dR)), make([]float32, n*H*dv), make([]float32, n*H*dv)
			for b.Loop() {
				c, _ := kv.New(shape, kv.Config{K: kvquant.F16{}, V: kvquant.F16{}}, n)
				pool.ForWorker(n, 1, func(_, lo, hi int) {
					for i := lo; i < hi; i++ {
						li := lat[i*(r+dR) : i*(r+dR)+r]
						for h := 0; h < H; h++ {
							kh := k[(i*H+h)*(dn+dR) : (i*H+h+1)*(dn+dR)]
							for d := 0; d < dn; d++ { // W_UK[h]·c, from the same numbers laid out by row
								kh[d] = kernel.Dot(ukt[(h*r)*dn+d*r:(h*r)*dn+(d+1)*r], li)
							}
							copy(kh[dn:], lat[i*(r+dR)+r:(i+1)*(r+dR)])
							for d := 0; d < dv; d++ {
								v[(i*H+h)*dv+d] = kernel.Dot(uv[(h*dv+d)*r:(h*dv+d+1)*r], li)
							}
						}
					}
				})
				c.Begin(pos)
				c.Store(0, k, v)
				pool.ForWorker(n*H, 1, func(w, lo, hi int) {
					for x := lo; x < hi; x++ {
						i, h := x/H, x%H
						qh := q[(i*H+h)*(dn+dR) : (i*H+h+1)*(dn+dR)]
						c.Attend(0, h, qh, 1, pos[i], att[(i*H+h)*dv:(i*H+h+1)*dv], sc[w])
					}
				})
				c.End()
			}
		})
		pool.Close()
	}
}
