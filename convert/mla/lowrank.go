package mla

import (
	"fmt"
	"io"

	"gonum.org/v1/gonum/mat"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/gguf"
)

// LowRankOptions of the plain low-rank baseline.
type LowRankOptions struct {
	// Rank is the latent per token and layer, split between keys
	// (⌈Rank/2⌉) and values (the rest), unless RankK and RankV are set.
	Rank, RankK, RankV int
	CalibText          string
	CalibTokens        int
	Type               string
	Progress           Progress
}

// LowRank writes the plain low-rank baseline TransMLA's RoRoPE and BKV are
// measured against (docs/MLA.md): the pre-RoPE keys of all KV heads and
// the values are each projected on their own top principal components
// (uncentered PCA of the same calibration activations, no RoRoPE, no
// balancing), as Palu (Chang et al., arXiv:2407.21118) caches a low-rank
// latent per layer and reconstructs the keys before RoPE. Joint across
// heads (Palu's j-LRD) and with the rank split evenly between keys and
// values; Palu's Fisher-information rank search and per-group variants
// are not done. The file keeps the source architecture with
// W_k ← U_k·U_kᵀ·W_k and W_v ← U_v·U_vᵀ·W_v (biases alike): its outputs are
// exactly those of a cache holding U_kᵀ·k and U_vᵀ·v, whose size, layers ×
// Rank values per token, the file records (kvgo.lowrank.*) and Compare
// reports in place of the reconstructed cache it runs with.
func LowRank(src *engine.Engine, opt LowRankOptions, w io.Writer) (rk, rv int, err error) {
	g, err := checkSource(src.Model.Config)
	if err != nil {
		return 0, 0, err
	}
	rk, rv = (opt.Rank+1)/2, opt.Rank/2
	if opt.RankK > 0 || opt.RankV > 0 {
		rk, rv = opt.RankK, opt.RankV
	}
	if rk < 1 || rv < 1 || rk > g.D || rv > g.D {
		return 0, 0, fmt.Errorf("ranks %d (keys) and %d (values) are out of range 1..%d: --rank must be 2..%d", rk, rv, g.D, 2*g.D)
	}
	typ, err := outType(src, opt.Type)
	if err != nil {
		return 0, 0, err
	}
	calib, _, err := calibrationTokens(src, opt.CalibText, opt.CalibTokens)
	if err != nil {
		return 0, 0, err
	}
	if opt.Progress != nil {
		opt.Progress.Grow(float64(len(calib) + src.Model.Config.Layers))
	}
	covs, err := calibrate(src, calib, opt.Progress)
	if err != nil {
		return 0, 0, err
	}
	layers, err := sourceLayers(src, covs)
	if err != nil {
		return 0, 0, err
	}
	c := src.Model.Config
	var b gguf.Builder
	n, _ := src.File.String("general.name")
	copyMetadata(&b, src, c.Arch, fmt.Sprintf("%s (low-rank K %d + V %d)", n, rk, rv), nil)
	b.Set(KeyLowRankK, uint32(rk))
	b.Set(KeyLowRankV, uint32(rv))
	b.Set(KeyCalibTokens, uint32(len(calib)))
	type proj struct {
		w    *mat.Dense
		bias []float64
	}
	out := make(map[string]proj)
	for i, l := range layers {
		p := fmt.Sprintf("blk.%d.", i)
		for _, part := range []struct {
			name string
			off  int
			rank int
			w    *mat.Dense
			bias []float64
		}{{"attn_k", 0, rk, l.wk, l.bk}, {"attn_v", g.D, rv, l.wv, l.bv}} {
			cov := mat.NewSymDense(g.D, nil)
			for a := 0; a < g.D; a++ {
				for bb := a; bb < g.D; bb++ {
					cov.SetSym(a, bb, l.cov.At(part.off+a, part.off+bb))
				}
			}
			_, vecs, err := eigenDesc(cov)
			if err != nil {
				return 0, 0, fmt.Errorf("layer %d: %w", i, err)
			}
			U := vecs.Slice(0, g.D, 0, part.rank)
			var uut, nw mat.Dense
			uut.Mul(U, U.T())
			nw.Mul(&uut, part.w)
			pr := proj{w: &nw}
			if part.bias != nil {
				var nb mat.VecDense
				nb.MulVec(&uut, mat.NewVecDense(g.D, part.bias))
				pr.bias = nb.RawVector().Data
			}
			out[p+part.name] = pr
		}
		if opt.Progress != nil {
			opt.Progress.Add(1, fmt.Sprintf("layer %d/%d", i+1, len(layers)))
		}
	}
	for i := range src.File.Tensors {
		t := &src.File.Tensors[i]
		var base string
		switch {
		case len(t.Name) > 7 && t.Name[len(t.Name)-7:] == ".weight":
			base = t.Name[:len(t.Name)-7]
		case len(t.Name) > 5 && t.Name[len(t.Name)-5:] == ".bias":
			base = t.Name[:len(t.Name)-5]
		}
		pr, ok := out[base]
		switch {
		case !ok:
			b.AddTensor(t.Name, t.Type, t.Shape, src.File.TensorData(t))
		case t.Name == base+".weight":
			tt, shape, data, err := encode(pr.w, typ)
			if err != nil {
				return 0, 0, err
			}
			b.AddTensor(t.Name, tt, shape, data)
		default:
			b.AddTensor(t.Name, gguf.TypeF32, t.Shape, f32Bytes(pr.bias))
		}
	}
	_, err = b.WriteTo(w)
	return rk, rv, err
}
