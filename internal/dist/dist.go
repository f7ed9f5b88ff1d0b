// Package dist holds the arithmetic on next-token distributions that the
// eval, the TransMLA comparison and the scripts share: log-softmax in
// float64, KL divergence and the top token. It is float64 throughout
// because KL divergences between close models are differences of nearly
// equal log-probabilities (1e-5 nats and below), which float32 loses.
package dist

import "math"

// LogSoftmax writes log(softmax(x)) into out (len(out) >= len(x)).
func LogSoftmax(x []float32, out []float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	ls := m + math.Log(s)
	for i, v := range x {
		out[i] = float64(v) - ls
	}
}

// KLD is KL(p ‖ q) in nats for log-probabilities lp and lq, clamped at 0
// (rounding can make it a hair negative when p = q).
func KLD(lp, lq []float64) float64 {
	var s float64
	for i, a := range lp {
		if p := math.Exp(a); p > 0 {
			s += p * (a - lq[i])
		}
	}
	return max(s, 0)
}

// Argmax is the index of the largest value of x, the first on ties; 0
// for an empty x.
func Argmax[T float32 | float64](x []T) int {
	b := 0
	for i, v := range x {
		if v > x[b] {
			b = i
		}
	}
	return b
}
