package dist

import (
	"math"
	"testing"
)

func TestLogSoftmaxAndKLD(t *testing.T) {
	x := []float32{1, 2, 3, -1000}
	lp := make([]float64, len(x))
	LogSoftmax(x, lp)
	var s float64
	for _, v := range lp {
		s += math.Exp(v)
	}
	if math.Abs(s-1) > 1e-12 {
		t.Fatalf("probabilities sum to %v", s)
	}
	// Shifting the logits does not change the distribution.
	y := []float32{101, 102, 103, -900}
	lq := make([]float64, len(y))
	LogSoftmax(y, lq)
	if k := KLD(lp, lq); k > 1e-9 {
		t.Fatalf("KLD of a shifted copy = %v", k)
	}
	// A known value: p = (1/2, 1/2), q = (1/4, 3/4).
	p := []float64{math.Log(0.5), math.Log(0.5)}
	q := []float64{math.Log(0.25), math.Log(0.75)}
	want := 0.5*math.Log(2) + 0.5*math.Log(2.0/3)
	if k := KLD(p, q); math.Abs(k-want) > 1e-12 {
		t.Fatalf("KLD = %v, want %v", k, want)
	}
}

func TestArgmax(t *testing.T) {
	if i := Argmax([]float32{1, 5, 5, 2}); i != 1 {
		t.Fatalf("Argmax = %d, want the first maximum 1", i)
	}
	if i := Argmax([]float64{-3, -1, -2}); i != 1 {
		t.Fatalf("Argmax = %d, want 1", i)
	}
	if i := Argmax([]float64(nil)); i != 0 {
		t.Fatalf("Argmax(nil) = %d, want 0", i)
	}
}
