package mla

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// geometry is the attention shape of a source model as the conversion
// sees it: H query heads of d values, nkv KV heads, a lifted key and value
// of D = nkv·d values each, and where RoPE's pairs sit inside a head.
type geometry struct {
	E, H, nkv, d, D int
	// pair[i] are the two dimensions of a head that RoPE turns together
	// by the angle of frequency i: (2i, 2i+1) for llama.cpp's llama
	// layout, (i, i+d/2) for Qwen2's.
	pair [][2]int
}

// group is the KV head that query head h reads.
func (g geometry) group(h int) int { return h / (g.H / g.nkv) }

// roRoPE is TransMLA's RoRoPE with FreqFold (arXiv:2502.07864, section 4.2;
// partial_rope.py's joint_complex_pca and rotate_k_proj) for one layer: an
// orthogonal D×D matrix P whose first dR rows are the new rotary
// dimensions of the shared rope key, as adjacent pairs (llama.cpp's
// deepseek2 layout), and whose other rows are position-free; freq[p] is
// the source frequency pair p of the rope key turns with.
//
// RoPE turns the pair i of every KV head by the same angle, so any
// orthogonal mixing of those nkv pairs that acts alike on both halves of a
// pair commutes with it. Per fold of ff adjacent frequencies, the pairs of
// all KV heads form nkv·ff features whose covariance takes both halves of
// each pair as samples (real and imaginary parts); its top components keep
// RoPE and collect most of the keys' energy, the rest lose it. With ff = 1
// the kept components rotate exactly like the source pairs; with ff > 1
// component j of a fold (of kf kept) turns with the fold's frequency
// f·ff + ⌊j·ff/kf⌋, TransMLA's every-collapse-th frequency, which is exact
// only where the fold's frequencies are equal.
//
// Choices where TransMLA's code is silent or differs: the covariance is
// accumulated in float64 from kvgo's own activations, uncentered as
// TransMLA's (its 1% diagonal damping changes eigenvalues, not
// eigenvectors, and is left out); kf = dR/2 / folds may be more than
// TransMLA's ff/collapse, so that dR up to D works (dR = D with ff = 1 is
// an exact rewrite, TransMLA needs dR ≤ d); the position-free rows are the
// remaining components, fold by fold, real halves then imaginary ones
// (their order does not matter: the joint PCA that follows rotates them
// again).
//
// With rotate false (the ablation of docs/MLA.md) the features are not
// mixed: per frequency (ff must be 1) the kept rope pairs are the KV heads'
// own pairs of most energy, which keep their exact frequency.
func roRoPE(cov mat.Symmetric, g geometry, dR, ff int, rotate bool) (P *mat.Dense, freq []int, err error) {
	half := g.d / 2
	folds := half / ff
	if half%ff != 0 || (dR/2)%folds != 0 {
		return nil, nil, fmt.Errorf("freqfold %d does not fit: %d frequencies in folds of %d must split %d rope pairs evenly", ff, half, ff, dR/2)
	}
	if !rotate && ff != 1 {
		return nil, nil, fmt.Errorf("keeping the heads' own rope pairs (no RoRoPE) needs freqfold 1, so every kept pair has its own frequency: --rope-dims must be a multiple of %d", 2*half)
	}
	kf := dR / 2 / folds
	m := g.nkv * ff
	P = mat.NewDense(g.D, g.D, nil)
	freq = make([]int, dR/2)
	nope := dR
	for f := 0; f < folds; f++ {
		// feature u = (head, pair): head u/ff, pair f·ff + u%ff.
		dim := func(u, part int) int { return (u/ff)*g.d + g.pair[f*ff+u%ff][part] }
		c := mat.NewSymDense(m, nil)
		for u := 0; u < m; u++ {
			for w := u; w < m; w++ {
				c.SetSym(u, w, cov.At(dim(u, 0), dim(w, 0))+cov.At(dim(u, 1), dim(w, 1)))
			}
		}
		var vecs *mat.Dense
		if rotate {
			if _, vecs, err = eigenDesc(c); err != nil {
				return nil, nil, err
			}
		} else {
			vecs = byEnergy(c)
		}
		for j := 0; j < m; j++ {
			var re, im int
			if j < kf {
				p := f*kf + j
				re, im = 2*p, 2*p+1
				freq[p] = f*ff + j*ff/kf
			} else {
				re, im = nope, nope+1
				nope += 2
			}
			for u := 0; u < m; u++ {
				P.Set(re, dim(u, 0), vecs.At(u, j))
				P.Set(im, dim(u, 1), vecs.At(u, j))
			}
		}
	}
	return P, freq, nil
}

// eigenDesc is the eigendecomposition of a symmetric matrix with the
// eigenvalues in descending order and the eigenvectors as the columns of
// vecs in the same order.
func eigenDesc(a mat.Symmetric) (vals []float64, vecs *mat.Dense, err error) {
	var es mat.EigenSym
	if !es.Factorize(a, true) {
		return nil, nil, fmt.Errorf("eigendecomposition of a %d×%d covariance failed", a.SymmetricDim(), a.SymmetricDim())
	}
	asc := es.Values(nil)
	var q mat.Dense
	es.VectorsTo(&q)
	n := len(asc)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return asc[idx[a]] > asc[idx[b]] })
	vals = make([]float64, n)
	vecs = mat.NewDense(n, n, nil)
	for j, i := range idx {
		vals[j] = asc[i]
		for r := 0; r < n; r++ {
			vecs.Set(r, j, q.At(r, i))
		}
	}
	for _, v := range vals {
		if math.IsNaN(v) {
			return nil, nil, fmt.Errorf("the covariance has NaN eigenvalues (NaN activations in calibration?)")
		}
	}
	return vals, vecs, nil
}

// freqFolds lists the FreqFold sizes that fit dR rope dimensions in
// heads of d, smallest first: powers of two dividing d/2 whose folds split
// the dR/2 rope pairs evenly.
func freqFolds(d, dR int) []int {
	var out []int
	for ff := 1; ff <= d/2; ff *= 2 {
		if (d/2)%ff == 0 && (dR/2)%((d/2)/ff) == 0 {
			out = append(out, ff)
		}
	}
	return out
}

// byEnergy is the permutation matrix whose columns are the unit vectors of
// the features in descending order of their energy (diagonal).
func byEnergy(c *mat.SymDense) *mat.Dense {
	m := c.SymmetricDim()
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return c.At(idx[a], idx[a]) > c.At(idx[b], idx[b]) })
	p := mat.NewDense(m, m, nil)
	for j, i := range idx {
		p.Set(i, j, 1)
	}
	return p
}
