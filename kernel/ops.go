package kernel

import (
	"math"

	"github.com/kvgo/kvgo/quant"
)

// RMSNorm writes x / sqrt(mean(x²) + eps) * w into out (out may alias x).
// The sum of squares is accumulated in float64, as ggml does; each output
// is (x·scale)·w rounded after each product on both paths, so the paths
// differ only where the float64 sum's order moves scale by an ulp.
func RMSNorm(out, x, w []float32, eps float32) {
	out, w = out[:len(x)], w[:len(x)]
	n8 := 0
	var ss float64
	if useAVX2 && len(x) >= 8 {
		n8 = len(x) &^ 7
		ss = sumSquaresAVX2(&x[0], n8)
	}
	for _, v := range x[n8:] {
		ss += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	if n8 > 0 {
		scaleMulAVX2(&out[0], &x[0], &w[0], scale, n8)
	}
	for i := n8; i < len(x); i++ {
		out[i] = x[i] * scale * w[i]
	}
}

// Softmax replaces x by its softmax in place. -Inf entries get probability
// 0. The exponentials are summed in float64. The AVX2 path computes e^x
// with a polynomial accurate to about one ulp rather than math.Exp.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := Max(x)
	i := 0
	var sum float64
	if useAVX2 && len(x) >= 8 {
		i = len(x) &^ 7
		sum = expSubAVX2(&x[0], m, i)
	}
	for ; i < len(x); i++ {
		e := float32(math.Exp(float64(x[i] - m)))
		x[i] = e
		sum += float64(e)
	}
	Scale(x, float32(1/sum))
}

// Max is the largest value of x, -Inf for an empty x; NaNs are skipped.
func Max(x []float32) float32 {
	m := float32(math.Inf(-1))
	i := 0
	if useAVX2 && len(x) >= 8 {
		i = len(x) &^ 7
		m = maxAVX2(&x[0], i)
	}
	for _, v := range x[i:] {
		if v > m {
			m = v
		}
	}
	return m
}

// Scale multiplies x by a in place.
func Scale(x []float32, a float32) {
	i := 0
	if useAVX2 && len(x) >= 8 {
		i = len(x) &^ 7
		scaleAVX2(&x[0], a, i)
	}
	for ; i < len(x); i++ {
		x[i] *= a
	}
}

// SiLU returns x·sigmoid(x).
func SiLU(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// SwiGLU writes silu(gate[i]) * up[i] into gate. The AVX2 path computes
// e^-x with a polynomial accurate to about one ulp rather than math.Exp.
func SwiGLU(gate, up []float32) {
	up = up[:len(gate)]
	i := 0
	if useAVX2 && len(gate) >= 8 {
		i = len(gate) &^ 7
		swigluAVX2(&gate[0], &up[0], i)
	}
	for ; i < len(gate); i++ {
		gate[i] = SiLU(gate[i]) * up[i]
	}
}

// Add adds src into dst.
func Add(dst, src []float32) {
	dst = dst[:len(src)]
	i := 0
	if useAVX2 && len(src) >= 8 {
		i = len(src) &^ 7
		addAVX2(&dst[0], &src[0], i)
	}
	for ; i < len(src); i++ {
		dst[i] += src[i]
	}
}

// Dot is the float32 inner product of two equal-length vectors.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	if useAVX2 && len(a) > 0 {
		var s float32
		dotF32x1AVX2(&a[0], 0, 1, &b[0], len(a), &s)
		return s
	}
	return dotGo(a, b)
}

// DotF16 is the inner product of a float32 query q with a half-precision
// key k of the same length (attention scores over an F16 cache).
func DotF16(q []float32, k []uint16) float32 {
	k = k[:len(q)]
	if useAVX2 && len(q) > 0 {
		var s float32
		dotF16x1AVX2(&k[0], 0, 1, &q[0], len(q), &s)
		return s
	}
	return dotF16Go(q, k)
}

// Dots sets out[i] = q · k[i*stride : i*stride+len(q)] for every i <
// len(out): the attention scores of one query over len(out) keys stored
// stride values apart, in one call.
func Dots(out, q, k []float32, stride int) {
	if len(q) == 0 {
		clear(out)
		return
	}
	if len(out) == 0 {
		return
	}
	_ = k[(len(out)-1)*stride+len(q)-1]
	if useAVX2 {
		dotF32x1AVX2(&k[0], 4*stride, len(out), &q[0], len(q), &out[0])
		return
	}
	for i := range out {
		out[i] = dotGo(q, k[i*stride:i*stride+len(q)])
	}
}

// DotsF16 is Dots for half-precision keys.
func DotsF16(out, q []float32, k []uint16, stride int) {
	if len(q) == 0 {
		clear(out)
		return
	}
	if len(out) == 0 {
		return
	}
	_ = k[(len(out)-1)*stride+len(q)-1]
	if useAVX2 {
		dotF16x1AVX2(&k[0], 2*stride, len(out), &q[0], len(q), &out[0])
		return
	}
	for i := range out {
		out[i] = dotF16Go(q, k[i*stride:i*stride+len(q)])
	}
}

// DotsGroup is Dots for the g query heads that share one key head
// (grouped-query attention): q holds g queries of d = len(q)/g values, and
// out[j*n+i] = q_j · k[i*stride : i*stride+d] for the n = len(out)/g keys.
// Four queries at a time go through each key, so a key is loaded and
// converted once for four heads.
func DotsGroup(out, q []float32, g int, k []float32, stride int) {
	_, n := groupShape(out, q, g, stride, len(k))
	DotsGroupTo(out, n, q, g, k, stride, n)
}

// DotsGroupTo is DotsGroup writing head j's n scores to out[j*ldo:] (ldo
// >= n): the scores of a run of a page's tokens land in the page's rows
// without a copy.
func DotsGroupTo(out []float32, ldo int, q []float32, g int, k []float32, stride, n int) {
	if g <= 0 || len(q)%g != 0 || ldo < n || n < 0 {
		panic("kernel: DotsGroupTo: bad shape")
	}
	if n == 0 {
		return
	}
	d := len(q) / g
	_ = out[(g-1)*ldo+n-1]
	if d > 0 && (n-1)*stride+d > len(k) {
		panic("kernel: DotsGroupTo: keys out of range")
	}
	j := 0
	if useAVX2 && d > 0 {
		for ; j+4 <= g; j += 4 {
			dotF32x4AVX2(&k[0], 4*stride, n, &q[j*d], 4*d, d, &out[j*ldo], 4, 4*ldo)
		}
		if j > 0 && j < g {
			// The last g%4 heads: one more four-head pass ending at head
			// g-1 (see DotsF16Group).
			j = g - 4
			dotF32x4AVX2(&k[0], 4*stride, n, &q[j*d], 4*d, d, &out[j*ldo], 4, 4*ldo)
			j = g
		}
	}
	for ; j < g; j++ {
		Dots(out[j*ldo:j*ldo+n], q[j*d:(j+1)*d], k, stride)
	}
}

// WeightedSumHeads is WeightedSum for g heads over the same n = len(v)/d
// rows of d values (no stride): head j adds Σ_i p[j*ldp+i]·v_i into
// out[j*d:(j+1)*d]. One bounds check for all heads. Heads go three at a
// time through one pass over the rows, which loads each value once for the
// three and keeps more independent sums in flight than one head can (see
// WSUM3 in fdot_amd64.s); a row whose weight is zero in every head is
// skipped, and a head's zero weight on a row another head uses adds 0·v,
// exact for finite v. Attention zeroes the same rows (masked tokens) in
// all heads.
func WeightedSumHeads(out, p []float32, ldp, g int, v []float32, d int) {
	n, ok := headsShape(out, p, ldp, g, len(v), d)
	if !ok {
		return
	}
	if useAVX2 && d%8 == 0 {
		j := 0
		for ; j+3 <= g; j += 3 {
			wsum3F32AVX2(&out[j*d], 4*d, &p[j*ldp], 4*ldp, &v[0], 4*d, n, d)
		}
		for ; j < g; j++ {
			wsumF32AVX2(&out[j*d], &p[j*ldp], &v[0], 4*d, n, d)
		}
		return
	}
	for j := 0; j < g; j++ {
		WeightedSum(out[j*d:(j+1)*d], p[j*ldp:j*ldp+n], v, d)
	}
}

// WeightedSumHeadsF16 is WeightedSumHeads for half-precision values: an
// F16 page serves all its heads with one pass per three heads, converting
// each value once for the three.
func WeightedSumHeadsF16(out, p []float32, ldp, g int, v []uint16, d int) {
	n, ok := headsShape(out, p, ldp, g, len(v), d)
	if !ok {
		return
	}
	if useAVX2 && d%8 == 0 {
		j := 0
		for ; j+3 <= g; j += 3 {
			wsum3F16AVX2(&out[j*d], 4*d, &p[j*ldp], 4*ldp, &v[0], 2*d, n, d)
		}
		for ; j < g; j++ {
			wsumF16AVX2(&out[j*d], &p[j*ldp], &v[0], 2*d, n, d)
		}
		return
	}
	for j := 0; j < g; j++ {
		WeightedSumF16(out[j*d:(j+1)*d], p[j*ldp:j*ldp+n], v, d)
	}
}

// headsShape checks the operands of WeightedSumHeads (nv values in rows of
// d) and returns the number of rows; ok is false when there is nothing to
// do.
func headsShape(out, p []float32, ldp, g, nv, d int) (n int, ok bool) {
	if g <= 0 || d <= 0 {
		return 0, false
	}
	n = nv / d
	if n == 0 {
		return 0, false
	}
	if ldp < n {
		panic("kernel: WeightedSumHeads: ldp < rows")
	}
	_, _ = out[g*d-1], p[(g-1)*ldp+n-1]
	return n, true
}

// DotsF16Group is DotsGroup for half-precision keys.
func DotsF16Group(out, q []float32, g int, k []uint16, stride int) {
	d, n := groupShape(out, q, g, stride, len(k))
	if n == 0 {
		return
	}
	j := 0
	if useAVX2 && d > 0 {
		for ; j+4 <= g; j += 4 {
			dotF16x4AVX2(&k[0], 2*stride, n, &q[j*d], 4*d, d, &out[j*n], 4, 4*n)
		}
		if j > 0 && j < g {
			// The last g%4 heads (qwen2.5's g=7: 3) go through one more
			// four-head pass ending at head g-1, which computes up to
			// three heads again (the same sums, written again), instead
			// of a single-head pass each that converts every key again:
			// in decode profiles at depth 8192 the three single-head
			// passes took more time than the four-head one.
			j = g - 4
			dotF16x4AVX2(&k[0], 2*stride, n, &q[j*d], 4*d, d, &out[j*n], 4, 4*n)
			j = g
		}
	}
	for ; j < g; j++ {
		DotsF16(out[j*n:(j+1)*n], q[j*d:(j+1)*d], k, stride)
	}
}

// groupShape checks DotsGroup's arguments and returns the head size d and
// the number of keys n. (It used to take the per-format loops as closures,
// which made callers' stack buffers escape to the heap.)
func groupShape(out, q []float32, g, stride, klen int) (d, n int) {
	if g <= 0 || len(q)%g != 0 || len(out)%g != 0 {
		panic("kernel: DotsGroup: q and out must hold g equal parts")
	}
	d, n = len(q)/g, len(out)/g
	if n > 0 && d > 0 && (n-1)*stride+d > klen {
		panic("kernel: DotsGroup: keys out of range")
	}
	return d, n
}

func dotGo(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(a) &^ 3
	b = b[:len(a)]
	for i := 0; i < n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for i := n; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotF16Go is the pure-Go inner product of float32 q with half-precision k.
func dotF16Go(q []float32, k []uint16) float32 {
	var s0, s1, s2, s3 float32
	n := len(q) &^ 3
	k = k[:len(q)]
	for i := 0; i < n; i += 4 {
		s0 += q[i] * quant.F16ToF32(k[i])
		s1 += q[i+1] * quant.F16ToF32(k[i+1])
		s2 += q[i+2] * quant.F16ToF32(k[i+2])
		s3 += q[i+3] * quant.F16ToF32(k[i+3])
	}
	for i := n; i < len(q); i++ {
		s0 += q[i] * quant.F16ToF32(k[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// dotBF16Go is dotF16Go for bfloat16 k.
func dotBF16Go(q []float32, k []uint16) float32 {
	var s0, s1, s2, s3 float32
	n := len(q) &^ 3
	k = k[:len(q)]
	for i := 0; i < n; i += 4 {
		s0 += q[i] * quant.BF16ToF32(k[i])
		s1 += q[i+1] * quant.BF16ToF32(k[i+1])
		s2 += q[i+2] * quant.BF16ToF32(k[i+2])
		s3 += q[i+3] * quant.BF16ToF32(k[i+3])
	}
	for i := n; i < len(q); i++ {
		s0 += q[i] * quant.BF16ToF32(k[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// AXPY adds a·x into y.
func AXPY(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	i := 0
	if useAVX2 && len(y) >= 8 {
		i = len(y) &^ 7
		axpyF32AVX2(&y[0], a, &x[0], i)
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// AXPYF16 adds a·x into y for half-precision x (attention values over an
// F16 cache).
func AXPYF16(y []float32, a float32, x []uint16) {
	x = x[:len(y)]
	i := 0
	if useAVX2 && len(y) >= 8 {
		i = len(y) &^ 7
		axpyF16AVX2(&y[0], a, &x[0], i)
	}
	for ; i < len(y); i++ {
		y[i] += a * quant.F16ToF32(x[i])
	}
}

// WeightedSum adds Σ_i p[i]·v[i*stride : i*stride+len(y)] into y: the
// value half of attention for len(p) cached values in one call. Entries
// with p[i] == 0 are skipped (not multiplied), so a masked-out position
// contributes nothing even if its value is not finite.
func WeightedSum(y, p, v []float32, stride int) {
	if len(p) == 0 || len(y) == 0 {
		return
	}
	_ = v[(len(p)-1)*stride+len(y)-1]
	if useAVX2 && len(y)%8 == 0 {
		wsumF32AVX2(&y[0], &p[0], &v[0], 4*stride, len(p), len(y))
		return
	}
	for i, a := range p {
		if a != 0 {
			AXPY(y, a, v[i*stride:i*stride+len(y)])
		}
	}
}

// WeightedSumF16 is WeightedSum for half-precision values.
func WeightedSumF16(y, p []float32, v []uint16, stride int) {
	if len(p) == 0 || len(y) == 0 {
		return
	}
	_ = v[(len(p)-1)*stride+len(y)-1]
	if useAVX2 && len(y)%8 == 0 {
		wsumF16AVX2(&y[0], &p[0], &v[0], 2*stride, len(p), len(y))
		return
	}
	for i, a := range p {
		if a != 0 {
			AXPYF16(y, a, v[i*stride:i*stride+len(y)])
		}
	}
}

// ToF16 converts src to half precision in dst (round to nearest even,
// exactly quant.F32ToF16), for writing an F16 cache.
func ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	i := 0
	if useAVX2 && len(src) >= 8 {
		i = len(src) &^ 7
		f32ToF16AVX2(&dst[0], &src[0], i)
	}
	for ; i < len(src); i++ {
		dst[i] = quant.F32ToF16(src[i])
	}
}

// FromF16 widens the halves in src into dst (exactly quant.F16ToF32).
func FromF16(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	i := 0
	if useAVX2 && len(src) >= 8 {
		i = len(src) &^ 7
		f16ToF32AVX2(&dst[0], &src[0], i)
	}
	for ; i < len(src); i++ {
		dst[i] = quant.F16ToF32(src[i])
	}
}

// ExpShift replaces x[i] by e^(x[i]-m) and returns their sum: the
// exponentials of an online softmax, whose running maximum m the caller
// keeps. -Inf entries become 0. x[i]-m must not be positive, which lets
// the AVX2 path skip Softmax's overflow handling and scale by 2^k in one
// step (EXPNEG in ops_amd64.s; the same results, fewer instructions). The
// sum is float64, so that it hardly depends on the order of the terms
// (see expShiftAVX2).
func ExpShift(x []float32, m float32) float32 {
	i := 0
	var sum float64
	if useAVX2 && len(x) >= 8 {
		i = len(x) &^ 7
		sum = expShiftAVX2(&x[0], m, i)
	}
	for ; i < len(x); i++ {
		e := float32(math.Exp(float64(x[i] - m)))
		x[i] = e
		sum += float64(e)
	}
	return float32(sum)
}
