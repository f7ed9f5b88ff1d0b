package kernel

import "math"

// RopeMode says which pairs of a head's dimensions RoPE rotates together.
type RopeMode int

const (
	// RopeNorm rotates adjacent pairs (2i, 2i+1): llama.cpp's mode for
	// Llama-family GGUFs, whose Q/K weights the converter permuted.
	RopeNorm RopeMode = iota
	// RopeNeox rotates (i, i+d/2): the layout of Qwen2/Qwen3 and GPT-NeoX.
	RopeNeox
)

// Rope holds the precomputed inverse frequencies of rotary position
// embeddings for one head size.
type Rope struct {
	Mode RopeMode
	// Dims is the number of rotated dimensions of each head (<= head size).
	Dims int
	// invFreq[i] is the angle per position of pair i.
	invFreq []float64
	// posScale divides positions (linear rope scaling).
	posScale float64
}

// NewRope builds the frequencies theta_i = base^(-2i/dims) / factor_i, with
// optional per-pair divisors (Llama 3.1's rope_freqs tensor) and a linear
// position scale (1 = none).
func NewRope(mode RopeMode, dims int, base float64, freqFactors []float32, linearScale float64) *Rope {
	r := &Rope{Mode: mode, Dims: dims, invFreq: make([]float64, dims/2), posScale: linearScale}
	if r.posScale == 0 {
		r.posScale = 1
	}
	for i := range r.invFreq {
		f := math.Pow(base, -2*float64(i)/float64(dims))
		if freqFactors != nil {
			f /= float64(freqFactors[i])
		}
		r.invFreq[i] = f
	}
	return r
}

// Apply rotates every head of x (heads of size headDim laid out one after
// another) to position pos.
func (r *Rope) Apply(x []float32, headDim int, pos float64) {
	half := r.Dims / 2
	p := pos / r.posScale
	for i := 0; i < half; i++ {
		s, c := math.Sincos(p * r.invFreq[i])
		sin, cos := float32(s), float32(c)
		for h := 0; h+headDim <= len(x); h += headDim {
			var a, b int
			if r.Mode == RopeNorm {
				a, b = h+2*i, h+2*i+1
			} else {
				a, b = h+i, h+i+half
			}
			x0, x1 := x[a], x[b]
			x[a] = x0*cos - x1*sin
			x[b] = x0*sin + x1*cos
		}
	}
}
