package kernel

import "math"

// Planar code rows: the layout in which the quantized KV pages of kv/quant
// keep 2- and 4-bit codes that attention reads with integer dot products.
//
// A row of d codes is cut into chunks of 64 channels (the last chunk holds
// the r = d mod 64 channels left over). A chunk of r channels at b bits
// takes B = ceil(r·b/8) bytes, and byte m holds channel m in its lowest b
// bits, channel m+B in the next b bits, and so on (channel m+p·B in bits
// p·b .. p·b+b-1, where that channel exists). For a full chunk at 4 bits
// that is "low nibbles are channels 0..31, high nibbles 32..63"; at 2 bits
// the four bit pairs of 16 bytes are channels 0..15, 16..31, 32..47 and
// 48..63. Unpacking a chunk into bytes in channel order then takes only a
// shift and a mask per plane, where the interleaved layout (byte k holds
// channels 2k and 2k+1) needs a shuffle to restore the order.

// PlanarRowBytes is the size of a planar row of d codes of bits bits.
func PlanarRowBytes(d, bits int) int {
	full := d / 64 * (64 * bits / 8)
	if r := d % 64; r > 0 {
		full += planarChunkBytes(r, bits)
	}
	return full
}

// planarChunkBytes is B for a chunk of r channels.
func planarChunkBytes(r, bits int) int { return (r*bits + 7) / 8 }

// PackPlanar writes codes (each below 1<<bits; bits is 2 or 4) into dst,
// which holds PlanarRowBytes(len(codes), bits) bytes, in the planar layout.
func PackPlanar(dst []byte, codes []uint8, bits int) {
	clear(dst)
	for c0 := 0; c0 < len(codes); c0 += 64 {
		r := min(64, len(codes)-c0)
		B := planarChunkBytes(r, bits)
		ch := codes[c0 : c0+r]
		for c, u := range ch {
			dst[c%B] |= u << (bits * (c / B))
		}
		dst = dst[B:]
	}
}

// UnpackPlanar reads the len(dst) codes of a planar row back, in channel
// order.
func UnpackPlanar(dst []uint8, row []byte, bits int) {
	mask := uint8(1)<<bits - 1
	for c0 := 0; c0 < len(dst); c0 += 64 {
		r := min(64, len(dst)-c0)
		B := planarChunkBytes(r, bits)
		ch := dst[c0 : c0+r]
		for c := range ch {
			ch[c] = row[c%B] >> (bits * (c / B)) & mask
		}
		row = row[B:]
	}
}

// QuantizeScaledI16 sets dst[c] = round(x[c]·mul[c] / s) with
// s = max_c |x[c]·mul[c]| / 32767 and returns s (0 when every product is 0,
// leaving dst zero). Rounding is to nearest, ties to even, so codes lie in
// [-32767, 32767]. It turns a query, with a key page's per-channel scales
// folded in, into the int16 vector that DotsPlanar multiplies with codes.
//
// Sixteen bits, not the eight that llama.cpp gives activations against
// quantized weights: per-channel key scales (KIVI) differ by orders of
// magnitude between outlier and ordinary channels, and one int8 step of
// the outlier-dominated maximum was as large as the key quantization's own
// error on the other channels. At 16 bits it is 1/258 of that.
func QuantizeScaledI16(dst []int16, x, mul []float32) float32 {
	n := len(x)
	dst, mul = dst[:n], mul[:n]
	if n == 0 {
		return 0
	}
	if useAVX2 && n%8 == 0 {
		var s float32
		quantHeadsI16AVX2(&dst[0], &x[0], &mul[0], &s, n, 1)
		return s
	}
	var amax float32
	for c := range x {
		amax = max(amax, float32(math.Abs(float64(x[c]*mul[c]))))
	}
	if !(amax > 0) || math.IsInf(float64(amax), 0) {
		// Zero (or non-finite, which no finite query produces): all-zero
		// codes keep the dot products finite and the caller's bias exact.
		clear(dst)
		return 0
	}
	inv := 32767 / amax
	for c := range x {
		t := x[c] * mul[c]
		dst[c] = int16(math.RoundToEven(float64(t * inv)))
	}
	return amax / 32767
}

// QuantizeScaledI16Heads is QuantizeScaledI16 for the g = len(scales)
// heads of d = len(mul) values in x, with one scale per head: the g query
// heads that share a key page and its per-channel scales mul, in one
// call: per-head calls were a sizeable share of a KIVI-4 page's Dot in CPU
// profiles of kv/quant BenchmarkAttendHalves (figures in
// docs/PERFORMANCE.md).
func QuantizeScaledI16Heads(dst []int16, x, mul, scales []float32) {
	d, g := len(mul), len(scales)
	dst, x = dst[:g*d], x[:g*d]
	if g == 0 || d == 0 {
		clear(scales)
		return
	}
	if useAVX2 && d%8 == 0 {
		quantHeadsI16AVX2(&dst[0], &x[0], &mul[0], &scales[0], d, g)
		return
	}
	for j := range scales {
		scales[j] = QuantizeScaledI16(dst[j*d:(j+1)*d], x[j*d:(j+1)*d], mul)
	}
}

// DotsPlanar computes grouped-query attention scores over a page of
// planar code rows: for g query heads of d int16 values (q, head j at
// q[j*d:]) and the n = len(out)/g rows of codes (rows of
// PlanarRowBytes(d, bits) bytes, bits 2 or 4),
//
//	out[j*n+i] = scale[j]·Σ_c q[j*d+c]·u_i[c] + bias[j].
//
// The sums are exact integers; each output is rounded once by the multiply
// and once by the add, identically on every path. A row is unpacked once
// for four heads.
func DotsPlanar(out []float32, q []int16, scale, bias []float32, g int, codes []byte, bits, d int) {
	if g <= 0 || len(q) != g*d || len(out)%g != 0 || len(scale) < g || len(bias) < g {
		panic("kernel: DotsPlanar: q, out, scale and bias must hold g heads")
	}
	if bits != 2 && bits != 4 {
		panic("kernel: DotsPlanar: bits must be 2 or 4")
	}
	n, rb := len(out)/g, PlanarRowBytes(d, bits)
	if n == 0 || d == 0 {
		for j := 0; j < g; j++ {
			for i := 0; i < n; i++ {
				out[j*n+i] = bias[j]
			}
		}
		return
	}
	codes = codes[:n*rb]
	if useAVX2 && d%32 == 0 {
		g4 := g
		if g%4 == 1 {
			// A lone last head goes through the one-head kernel rather
			// than four copies of itself.
			g4 = g - 1
			j := g - 1
			if bits == 4 {
				dotsPlanar4x1AVX2(&codes[0], n, d, &q[j*d], scale[j], bias[j], &out[j*n])
			} else {
				dotsPlanar2x1AVX2(&codes[0], n, d, &q[j*d], scale[j], bias[j], &out[j*n])
			}
		}
		for j0 := 0; j0 < g4; j0 += 4 {
			// A last group of two or three heads goes through the
			// three-head kernel (g = 7 is 4+3). Heads past g repeat the
			// last head: they compute and store the same values at the same
			// place, which keeps the kernels at a fixed width without
			// scratch.
			var qs [4]*int16
			var os [4]*float32
			var sb [8]float32
			for h := 0; h < 4; h++ {
				j := min(j0+h, g4-1)
				qs[h], os[h] = &q[j*d], &out[j*n]
				sb[h], sb[4+h] = scale[j], bias[j]
			}
			three := g4-j0 <= 3
			switch {
			case bits == 4 && three:
				dotsPlanar4x3AVX2(&codes[0], n, d, &qs, &sb, &os)
			case bits == 4:
				dotsPlanar4x4AVX2(&codes[0], n, d, &qs, &sb, &os)
			case three:
				dotsPlanar2x3AVX2(&codes[0], n, d, &qs, &sb, &os)
			default:
				dotsPlanar2x4AVX2(&codes[0], n, d, &qs, &sb, &os)
			}
		}
		return
	}
	dotsPlanarGo(out, q, scale, bias, g, codes, bits, d, n, rb)
}

// dotsPlanarGo is DotsPlanar in Go, for any d.
func dotsPlanarGo(out []float32, q []int16, scale, bias []float32, g int, codes []byte, bits, d, n, rb int) {
	var ub [256]uint8
	u := ub[:]
	if d > len(ub) {
		u = make([]uint8, d)
	}
	u = u[:d]
	for i := 0; i < n; i++ {
		UnpackPlanar(u, codes[i*rb:(i+1)*rb], bits)
		for j := 0; j < g; j++ {
			qj := q[j*d : (j+1)*d]
			var s int32
			for c, x := range u {
				s += int32(x) * int32(qj[c])
			}
			// The explicit conversion rounds the product before the add,
			// as the assembly does (no fused multiply-add).
			out[j*n+i] = float32(float32(s)*scale[j]) + bias[j]
		}
	}
}
