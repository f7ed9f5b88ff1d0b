// Package mla converts GQA models to Multi-head Latent Attention with
// TransMLA's method (Meng et al., "TransMLA: Multi-head Latent Attention Is
// All You Need", arXiv:2502.07864; its public code fxmeng/TransMLA,
// transmla/{converter,partial_rope,lora_qkv}.py), and writes the result in
// llama.cpp's deepseek2 GGUF layout, which kvgo runs with a latent cache
// (model/mla.go). It also writes the plain low-rank baseline the method is
// measured against (LowRank) and compares a converted model with its source
// (Compare).
//
// The conversion, per layer, from kvgo's own forward pass:
//
//  1. Calibration: the pre-RoPE keys and values (model.State.Tap) of N
//     tokens of a text, in samples of 256 tokens each starting at position
//     0 (TransMLA: 128 samples of 256 tokens of WikiText-2), accumulated as
//     the uncentered covariance of [k; v] in float64.
//  2. Lift: the keys of all KV heads side by side form one key of
//     D = KV heads × head size, the values one value of D; query head h
//     reads its KV head's block (TransMLA's identity up-projections).
//  3. RoRoPE + FreqFold (roRoPE): an orthogonal rotation of the key that
//     commutes with RoPE puts most of its energy into d_R dimensions that
//     keep RoPE and become the shared rope key; the other D − d_R lose it.
//  4. BKV: the position-free key dimensions are divided by
//     α = mean‖k_nope,d‖ / (mean‖v_d‖ · balance) (norms over the
//     calibration tokens) so that keys and values weigh alike in the PCA;
//     the key up-projection is multiplied by α.
//  5. Joint PCA of [k_nope/α; v] to rank r: its top r components are the
//     latent c (attn_kv_a_mqa's first r rows, followed by the rope key's
//     d_R rows) and their loadings the up-projections (attn_kv_b: per head
//     W_UK = α·(its block of the nope rows)ᵀ·B_k, W_UV = its block of B_v).
//  6. Query: per head [W_q; P_rope·W_q] (q_nope is the source query, q_rope
//     its projection on the rope key), scaled by √((d + d_R)/d) so that the
//     softmax scale 1/√(d + d_R) of the deepseek2 layout gives the source's
//     logits; biases alike.
//
// With d_R = D and r = D the rewrite is exact: every key dimension keeps
// RoPE (with FreqFold 1 the rotation only mixes KV heads within a
// frequency) and the latent holds all of V.
//
// Choices where the paper and code are silent or differ from kvgo's needs:
// calibration activations come from the source model for both the RoRoPE
// and the joint PCA (TransMLA records k and v again on the model after
// RoRoPE, whose earlier layers already lost RoPE on their nope dims); q
// activations are not used (TransMLA records them for q-LoRA, which this
// converter does not do: the query stays one attn_q); freqfold "auto"
// keeps TransMLA's search (from the smallest fold, doubling while it
// improves) on held-out tokens of the calibration text, with two changes:
// each fold is measured at the requested rank (TransMLA measures the
// partial-RoPE model before the low-rank step), and by the mean KL
// divergence of the next-token distributions from the source's rather
// than by perplexity. On kvgo-tiny at d_R = r = 32 perplexity preferred
// freqfold 2 (33.69 against 33.96 for 1) where the KL divergence prefers
// freqfold 1 (0.039 against 0.048), and on the retrieval prompts of
// docs/MLA.md freqfold 1 is far closer to the source (0.29 against 0.53):
// a conversion should reproduce its source, which perplexity alone does
// not measure; no latent norm is written (TransMLA's default), which
// kvgo records as kvgo.mla.kv_a_norm = false.
package mla

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"github.com/kvgo/kvgo/internal/dist"
	"io"
	"math"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kernel"
	"github.com/kvgo/kvgo/model"
)

// builtinText is the default calibration text: documentation-style prose
// written for kvgo (no third-party text), in the register kvgo-tiny was
// trained on.
//
//go:embed calib.txt
var builtinText string

// Progress receives the work done, in tokens of forward passes plus one
// unit per converted layer; eval/report's bar satisfies it.
type Progress interface {
	Add(units float64, label string)
	Grow(units float64)
}

// Options of a conversion.
type Options struct {
	Rank     int // r: the latent's width
	RopeDims int // d_R: the shared rope key's width
	// FreqFold is the number of adjacent RoPE frequencies per fold; 0
	// searches as TransMLA's converter does.
	FreqFold int
	// Balance is TransMLA's balance_kv_ratio (1 by default); BKV off
	// skips the key/value norm balancing.
	Balance float64
	NoBKV   bool
	// NoRoRoPE keeps the KV heads' own rope pairs of most energy per
	// frequency instead of rotating them (an ablation; needs FreqFold 1).
	NoRoRoPE bool
	// CalibText is the calibration text ("" = the built-in prose) and
	// CalibTokens how many of its tokens to use (0 = 2048).
	CalibText   string
	CalibTokens int
	// Type of the rewritten attention matrices: "f32", "f16" or "same"
	// (the source's attn_q type; F16 where a row does not fit its blocks).
	Type     string
	Progress Progress
	// Log, when set, receives one line per decision (freqfold search).
	Log io.Writer
}

// Result describes a conversion.
type Result struct {
	FreqFold    int
	FoldKLD     map[int]float64 // the freqfold search's KL divergences from the source, when it ran
	CalibTokens int
	HeldOut     int       // tokens of the freqfold search
	Ratios      []float64 // BKV's α per layer
	// SourceKV and LatentKV are the bytes per token of an f16 cache:
	// 2·layers·KV heads·head size·2 and layers·(r + d_R)·2.
	SourceKV, LatentKV int64
}

// sampleLen is the calibration sample length (TransMLA's cal_max_seqlen).
const sampleLen = 256

// Convert rewrites the model of src as MLA and writes it to w.
func Convert(src *engine.Engine, opt Options, w io.Writer) (Result, error) {
	var res Result
	g, err := checkSource(src.Model.Config)
	if err != nil {
		return res, err
	}
	if err := checkDims(g, opt.Rank, opt.RopeDims); err != nil {
		return res, err
	}
	folds := freqFolds(g.d, opt.RopeDims)
	if opt.FreqFold != 0 && !contains(folds, opt.FreqFold) {
		return res, fmt.Errorf("freqfold %d does not fit %d rope dims in heads of %d (valid: %v)", opt.FreqFold, opt.RopeDims, g.d, folds)
	}
	if _, err := outType(src, opt.Type); err != nil {
		return res, err
	}
	calib, held, err := calibrationTokens(src, opt.CalibText, opt.CalibTokens)
	if err != nil {
		return res, err
	}
	res.CalibTokens = len(calib)
	auto := opt.FreqFold == 0 && len(folds) > 1
	if opt.Progress != nil {
		total := float64(len(calib) + src.Model.Config.Layers)
		if auto {
			total += float64(len(folds) * (len(held) + src.Model.Config.Layers))
		}
		opt.Progress.Grow(total)
	}
	covs, err := calibrate(src, calib, opt.Progress)
	if err != nil {
		return res, err
	}
	layers, err := sourceLayers(src, covs)
	if err != nil {
		return res, err
	}
	res.FreqFold = opt.FreqFold
	if opt.FreqFold == 0 {
		res.FreqFold = folds[0]
	}
	if auto {
		res.HeldOut = len(held)
		res.FoldKLD = map[int]float64{}
		best := math.Inf(1)
		for _, ff := range folds {
			// Each fold at the requested rank: the fold TransMLA's search
			// picks on the full-rank model need not be the best at r.
			d, err := candidateKLD(src, layers, g, opt, ff, opt.Rank, held)
			if err != nil {
				return res, err
			}
			res.FoldKLD[ff] = d
			if opt.Log != nil {
				fmt.Fprintf(opt.Log, "freqfold %d: mean KL divergence from the source %.5f at rank %d on %d held-out tokens\n", ff, d, opt.Rank, len(held))
			}
			if d >= best {
				break
			}
			best, res.FreqFold = d, ff
		}
	}
	lat, freq, err := build(layers, g, opt, res.FreqFold, opt.Rank, opt.Progress)
	if err != nil {
		return res, err
	}
	for _, l := range lat {
		res.Ratios = append(res.Ratios, l.ratio)
	}
	c := src.Model.Config
	res.SourceKV = int64(2 * c.Layers * c.KVHeads * c.HeadDim * 2)
	res.LatentKV = int64(c.Layers * (opt.Rank + opt.RopeDims) * 2)
	b, err := writeLatent(src, g, lat, freq, opt, res)
	if err != nil {
		return res, err
	}
	_, err = b.WriteTo(w)
	return res, err
}

// checkSource returns the geometry of a model the conversion accepts.
func checkSource(c model.Config) (geometry, error) {
	var g geometry
	switch {
	case c.IsMLA():
		return g, errors.New("the model already has latent attention")
	case c.QKNorm:
		return g, fmt.Errorf("%s normalizes each query and key head (QK-norm) before RoPE; that RMSNorm divides by a norm that changes per token, so it cannot be absorbed into a linear latent projection: convert llama, mistral or qwen2 models", c.Arch)
	case c.Arch != "llama" && c.Arch != "qwen2":
		return g, fmt.Errorf("architecture %q cannot be converted (llama, mistral, qwen2)", c.Arch)
	case c.RopeDims != c.HeadDim:
		return g, fmt.Errorf("RoPE turns %d of %d head dimensions; only fully rotary heads are supported", c.RopeDims, c.HeadDim)
	}
	g = geometry{E: c.Embd, H: c.Heads, nkv: c.KVHeads, d: c.HeadDim, D: c.KVHeads * c.HeadDim}
	for i := 0; i < g.d/2; i++ {
		if c.RopeMode == kernel.RopeNeox {
			g.pair = append(g.pair, [2]int{i, i + g.d/2})
		} else {
			g.pair = append(g.pair, [2]int{2 * i, 2*i + 1})
		}
	}
	return g, nil
}

// checkDims validates the rank and rope dimensions against the source.
func checkDims(g geometry, rank, ropeDims int) error {
	if ropeDims < 2 || ropeDims > g.D || ropeDims%2 != 0 {
		return fmt.Errorf("--rope-dims %d is out of range: it must be even, from 2 to %d (KV heads %d × head size %d)", ropeDims, g.D, g.nkv, g.d)
	}
	if max := 2*g.D - ropeDims; rank < 1 || rank > max {
		return fmt.Errorf("--rank %d is out of range 1..%d (keys and values of %d values each, minus %d rope dims)", rank, max, g.D, ropeDims)
	}
	return nil
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// calibrationTokens tokenizes the calibration text and returns up to n
// tokens for calibration and the tokens after them (at most 1024) for the
// freqfold search; when fewer than 256 tokens are left over, the search
// reads the last calibration tokens instead.
func calibrationTokens(src *engine.Engine, text string, n int) (calib, held []int, err error) {
	if text == "" {
		text = builtinText
	}
	if n == 0 {
		n = 2048
	}
	if n < 0 {
		return nil, nil, fmt.Errorf("--calib-tokens %d is negative", n)
	}
	toks := src.Tok.Encode(text, false, false)
	if len(toks) < 16 {
		return nil, nil, fmt.Errorf("the calibration text has %d tokens; at least 16 are needed", len(toks))
	}
	calib = toks[:min(n, len(toks))]
	held = toks[len(calib):min(len(toks), len(calib)+1024)]
	if len(held) < sampleLen {
		held = calib[max(0, len(calib)-1024):]
	}
	return calib, held, nil
}

// samples cuts tokens into sequences of at most sampleLen, each starting
// with BOS when the model adds one.
func samples(src *engine.Engine, toks []int) [][]int {
	var out [][]int
	step := sampleLen
	bos := src.Tok.AddBOS()
	if bos {
		step--
	}
	for i := 0; i < len(toks); i += step {
		s := toks[i:min(len(toks), i+step)]
		if bos {
			s = append([]int{src.Tok.BOS()}, s...)
		}
		out = append(out, s)
	}
	return out
}

// sourceLayer is one layer's attention of the source, in float64.
type sourceLayer struct {
	wq, wk, wv *mat.Dense // [H·d][E], [D][E], [D][E]
	bq, bk, bv []float64  // nil without biases
	cov        *mat.SymDense
}

func sourceLayers(src *engine.Engine, covs []*mat.SymDense) ([]sourceLayer, error) {
	m := src.Model
	out := make([]sourceLayer, len(m.Layers))
	for i := range m.Layers {
		l := &m.Layers[i]
		var err error
		s := &out[i]
		if s.wq, err = dense(l.Q); err != nil {
			return nil, err
		}
		if s.wk, err = dense(l.K); err != nil {
			return nil, err
		}
		if s.wv, err = dense(l.V); err != nil {
			return nil, err
		}
		s.bq, s.bk, s.bv = f64(l.QBias), f64(l.KBias), f64(l.VBias)
		s.cov = covs[i]
	}
	return out, nil
}

func dense(m *kernel.Matrix) (*mat.Dense, error) {
	d := mat.NewDense(m.Rows, m.Cols, nil)
	row := make([]float32, m.Cols)
	for r := 0; r < m.Rows; r++ {
		if err := m.Row(r, row); err != nil {
			return nil, err
		}
		for c, x := range row {
			d.Set(r, c, float64(x))
		}
	}
	return d, nil
}

func f64(x []float32) []float64 {
	if x == nil {
		return nil
	}
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// latentLayer is one converted layer in float64.
type latentLayer struct {
	q    *mat.Dense // [H·(d+dR)][E]
	qb   []float64
	kva  *mat.Dense // [r+dR][E]
	kvab []float64
	kvb  *mat.Dense // [H·2d][r]
	// ratio is BKV's α (1 when BKV is off or no key dimension is
	// position-free).
	ratio float64
}

// build converts every layer at freqfold ff and rank r.
func build(layers []sourceLayer, g geometry, opt Options, ff, r int, prog Progress) ([]latentLayer, []int, error) {
	out := make([]latentLayer, len(layers))
	var freq []int
	for i := range layers {
		var err error
		if out[i], freq, err = convertLayer(layers[i], g, opt, ff, r); err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if prog != nil {
			prog.Add(1, fmt.Sprintf("layer %d/%d converted", i+1, len(layers)))
		}
	}
	return out, freq, nil
}

// convertLayer is TransMLA's rewrite of one layer (the package comment's
// steps 3 to 6).
func convertLayer(s sourceLayer, g geometry, opt Options, ff, r int) (latentLayer, []int, error) {
	D, d, dR, E := g.D, g.d, opt.RopeDims, g.E
	nn := D - dR // position-free key dimensions
	covK := mat.NewSymDense(D, nil)
	for i := 0; i < D; i++ {
		for j := i; j < D; j++ {
			covK.SetSym(i, j, s.cov.At(i, j))
		}
	}
	P, freq, err := roRoPE(covK, g, dR, ff, !opt.NoRoRoPE)
	if err != nil {
		return latentLayer{}, nil, err
	}
	Pr := P.Slice(0, dR, 0, D)
	var Pn mat.Matrix
	if nn > 0 {
		Pn = P.Slice(dR, D, 0, D)
	}
	// BKV: α from the per-dimension norms of the position-free keys and of
	// the values over the calibration tokens.
	alpha := 1.0
	if nn > 0 && !opt.NoBKV {
		var t mat.Dense
		t.Mul(Pn, covK)
		var kn, vn float64
		for i := 0; i < nn; i++ {
			var dd float64
			for j := 0; j < D; j++ {
				dd += t.At(i, j) * Pn.At(i, j)
			}
			kn += math.Sqrt(max(dd, 0))
		}
		for i := 0; i < D; i++ {
			vn += math.Sqrt(max(s.cov.At(D+i, D+i), 0))
		}
		balance := opt.Balance
		if balance == 0 {
			balance = 1
		}
		if kn > 0 && vn > 0 {
			alpha = (kn / float64(nn)) / (vn / float64(D) * balance)
		}
	}
	// M maps [k; v] to [k_nope/α; v].
	M := mat.NewDense(nn+D, 2*D, nil)
	for i := 0; i < nn; i++ {
		for j := 0; j < D; j++ {
			M.Set(i, j, Pn.At(i, j)/alpha)
		}
	}
	for i := 0; i < D; i++ {
		M.Set(nn+i, D+i, 1)
	}
	var mc, cy mat.Dense
	mc.Mul(M, s.cov)
	cy.Mul(&mc, M.T())
	cys := mat.NewSymDense(nn+D, nil)
	for i := 0; i < nn+D; i++ {
		for j := i; j < nn+D; j++ {
			cys.SetSym(i, j, (cy.At(i, j)+cy.At(j, i))/2)
		}
	}
	_, vecs, err := eigenDesc(cys)
	if err != nil {
		return latentLayer{}, nil, err
	}
	B := vecs.Slice(0, nn+D, 0, r)
	// The latent: c = Bᵀ·M·[W_k; W_v]·h (+ the same of the biases).
	wkv := mat.NewDense(2*D, E, nil)
	wkv.Stack(s.wk, s.wv)
	var mw, wc mat.Dense
	mw.Mul(M, wkv)
	wc.Mul(B.T(), &mw)
	var wr mat.Dense
	wr.Mul(Pr, s.wk)
	out := latentLayer{ratio: alpha}
	out.kva = mat.NewDense(r+dR, E, nil)
	out.kva.Stack(&wc, &wr)
	if s.bk != nil {
		bkv := mat.NewVecDense(2*D, append(append([]float64(nil), s.bk...), s.bv...))
		var mb, bc, br mat.VecDense
		mb.MulVec(M, bkv)
		bc.MulVec(B.T(), &mb)
		br.MulVec(Pr, mat.NewVecDense(D, s.bk))
		out.kvab = append(append(out.kvab, bc.RawVector().Data...), br.RawVector().Data...)
	}
	// Up-projections per head: W_UK = α·(P_n's columns of the head's KV
	// block)ᵀ·B_k, W_UV = B_v's rows of that block.
	out.kvb = mat.NewDense(g.H*2*d, r, nil)
	for h := 0; h < g.H; h++ {
		kv := g.group(h)
		if nn > 0 {
			var uk mat.Dense
			uk.Mul(Pn.(*mat.Dense).Slice(0, nn, kv*d, (kv+1)*d).T(), B.(*mat.Dense).Slice(0, nn, 0, r))
			uk.Scale(alpha, &uk)
			out.kvb.Slice(h*2*d, h*2*d+d, 0, r).(*mat.Dense).Copy(&uk)
		}
		out.kvb.Slice(h*2*d+d, (h+1)*2*d, 0, r).(*mat.Dense).Copy(B.(*mat.Dense).Slice(nn+kv*d, nn+(kv+1)*d, 0, r))
	}
	// The query: per head [W_q; P_rope's block·W_q], scaled so that the
	// softmax scale 1/√(d+dR) reproduces 1/√d.
	scale := math.Sqrt(float64(d+dR) / float64(d))
	out.q = mat.NewDense(g.H*(d+dR), E, nil)
	if s.bq != nil {
		out.qb = make([]float64, g.H*(d+dR))
	}
	for h := 0; h < g.H; h++ {
		kv := g.group(h)
		wq := s.wq.Slice(h*d, (h+1)*d, 0, E)
		prb := Pr.(*mat.Dense).Slice(0, dR, kv*d, (kv+1)*d)
		var qr mat.Dense
		qr.Mul(prb, wq)
		dst := out.q.Slice(h*(d+dR), (h+1)*(d+dR), 0, E).(*mat.Dense)
		dst.Slice(0, d, 0, E).(*mat.Dense).Scale(scale, wq)
		dst.Slice(d, d+dR, 0, E).(*mat.Dense).Scale(scale, &qr)
		if s.bq != nil {
			bq := mat.NewVecDense(d, s.bq[h*d:(h+1)*d])
			var br mat.VecDense
			br.MulVec(prb, bq)
			for i := 0; i < d; i++ {
				out.qb[h*(d+dR)+i] = scale * s.bq[h*d+i]
			}
			for i := 0; i < dR; i++ {
				out.qb[h*(d+dR)+d+i] = scale * br.AtVec(i)
			}
		}
	}
	return out, freq, nil
}

// candidateKLD converts at freqfold ff and rank r in memory and measures
// the mean KL divergence of its next-token distributions from the
// source's on tokens, read as one sequence (up to the context): a fold's
// frequency error grows with the distance between tokens, so short
// samples would favour larger folds.
func candidateKLD(src *engine.Engine, layers []sourceLayer, g geometry, opt Options, ff, r int, tokens []int) (float64, error) {
	lat, freq, err := build(layers, g, opt, ff, r, opt.Progress)
	if err != nil {
		return 0, err
	}
	o := opt
	o.Rank, o.Type = r, "f32"
	b, err := writeLatent(src, g, lat, freq, o, Result{FreqFold: ff})
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return 0, err
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		return 0, err
	}
	defer f.Close()
	m, err := model.Load(f)
	if err != nil {
		return 0, err
	}
	seq := tokens[:min(len(tokens), m.ContextLen-1)]
	if src.Tok.AddBOS() {
		seq = append([]int{src.Tok.BOS()}, seq...)
	}
	d, err := kldFrom(src.Model, m, src.Pool, seq)
	if opt.Progress != nil {
		opt.Progress.Add(float64(len(seq)), "freqfold search")
	}
	return d, err
}

// kldFrom is the mean KL(ref ‖ m) of the next-token distributions over the
// positions of seq, both with f32 caches, in batches of 64 tokens so that
// only one batch of the reference's logits is held.
func kldFrom(ref, m *model.Model, pool *kernel.Pool, seq []int) (float64, error) {
	const batch = 64
	n := len(seq)
	rc, err := newCache(ref, n)
	if err != nil {
		return 0, err
	}
	mc, err := newCache(m, n)
	if err != nil {
		return 0, err
	}
	rs, ms := ref.NewState(pool, batch, n), m.NewState(pool, batch, n)
	V := ref.Vocab
	lpRef := make([]float64, batch*V)
	lp := make([]float64, V)
	var sum float64
	for at := 0; at < n; at += batch {
		part := seq[at:min(n, at+batch)]
		if err := rs.ForwardEach(rc, part, at, 0, func(i int, l []float32) error {
			dist.LogSoftmax(l, lpRef[i*V:(i+1)*V])
			return nil
		}); err != nil {
			return 0, err
		}
		if err := ms.ForwardEach(mc, part, at, 0, func(i int, l []float32) error {
			dist.LogSoftmax(l, lp)
			sum += dist.KLD(lpRef[i*V:(i+1)*V], lp)
			return nil
		}); err != nil {
			return 0, err
		}
	}
	return sum / float64(n), nil
}

// name is the converted model's general.name.
func name(src *engine.Engine, rank, ropeDims int) string {
	n, _ := src.File.String("general.name")
	if n == "" {
		n = strings.TrimSuffix(src.Source, ".gguf")
	}
	return fmt.Sprintf("%s (TransMLA r=%d d_R=%d)", n, rank, ropeDims)
}
