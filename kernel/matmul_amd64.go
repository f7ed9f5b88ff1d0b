//go:build !kvgo_generic

package kernel

import "unsafe"

// dot1AVX2 is dot1 on the assembly kernels: out[r] = row r0+r ·
// activation t for r < rr.
func (m *Matrix) dot1AVX2(out []float32, r0, rr int, a *acts, t int) {
	if rr == 0 {
		return
	}
	w := m.rowData(r0, rr)
	_ = out[rr-1]
	switch m.kind {
	case kF32, kF16, kBF16:
		x := a.f[t*m.Cols : (t+1)*m.Cols]
		switch m.kind {
		case kF32:
			dotF32x1AVX2((*float32)(unsafe.Pointer(&w[0])), m.rowBytes, rr, &x[0], m.Cols, &out[0])
		case kF16:
			dotF16x1AVX2((*uint16)(unsafe.Pointer(&w[0])), m.rowBytes, rr, &x[0], m.Cols, &out[0])
		default:
			dotBF16x1AVX2((*uint16)(unsafe.Pointer(&w[0])), m.rowBytes, rr, &x[0], m.Cols, &out[0])
		}
	case kQ8_0, kQ4_0, kQ5_0, kIQ4NL:
		x := a.b[t*a.stride : (t+1)*a.stride]
		xs := a.s[t*m.nb : (t+1)*m.nb]
		fn := dotQ8_0x1
		if m.kind == kQ4_0 {
			fn = dotQ4_0x1
		} else if m.kind == kQ5_0 {
			fn = dotQ5_0x1
		} else if m.kind == kIQ4NL {
			fn = dotIQ4_NLx1AVX2
		}
		fn(&w[0], rr, &x[0], &xs[0], m.nb, &out[0])
	case kQ4_K, kQ5_K, kQ6_K, kIQ4XS:
		x := a.b[t*a.stride : (t+1)*a.stride]
		fn := dotQ4_Kx1AVX2
		if m.kind == kQ5_K {
			fn = dotQ5_Kx1AVX2
		} else if m.kind == kQ6_K {
			fn = dotQ6_Kx1AVX2
		} else if m.kind == kIQ4XS {
			fn = dotIQ4_XSx1AVX2
		}
		fn(&w[0], rr, &x[0], m.nb, &out[0])
	case kQ4_1, kQ5_1:
		x := a.b[t*a.stride : (t+1)*a.stride]
		fn := dotQ4_1x1AVX2
		if m.kind == kQ5_1 {
			fn = dotQ5_1x1AVX2
		}
		fn(&w[0], rr, &x[0], m.nb, &out[0])
	case kQ2_K, kQ3_K:
		x := a.b[t*a.stride : (t+1)*a.stride]
		fn := dotQ2_Kx1AVX2
		if m.kind == kQ3_K {
			fn = dotQ3_Kx1AVX2
		}
		fn(&w[0], rr, &x[0], m.nb, &out[0])
	default:
		for r := range rr {
			out[r] = m.dotGo(r0+r, a, t)
		}
	}
}

// dot4AVX2 is dot4 on the assembly kernels: out[4r+i] = row r0+r ·
// activation t+i for r < rr, i < 4.
func (m *Matrix) dot4AVX2(out []float32, r0, rr int, a *acts, t int) {
	if rr == 0 {
		return
	}
	w := m.rowData(r0, rr)
	_ = out[4*rr-1]
	switch m.kind {
	case kF32, kF16, kBF16:
		// Four float32 activation rows of more than floatSpan values
		// would not stay in L1 while the rows of the tile go by, so long
		// rows are done floatSpan columns at a time and summed.
		x := a.f[t*m.Cols : (t+4)*m.Cols]
		var part [4 * tileRows]float32
		for c0 := 0; c0 < m.Cols; c0 += floatSpan {
			dst := out
			if c0 > 0 {
				dst = part[:4*rr]
			}
			m.floatx4(dst, w, rr, x[c0:], c0, min(floatSpan, m.Cols-c0))
			if c0 > 0 {
				for i := range dst {
					out[i] += dst[i]
				}
			}
		}
	case kQ8_0, kQ4_0, kQ5_0, kIQ4NL:
		x := a.b[t*a.stride : (t+4)*a.stride]
		xs4 := a.s4[t*m.nb : (t+4)*m.nb]
		fn := dotQ8_0x4
		if m.kind == kQ4_0 {
			fn = dotQ4_0x4
		} else if m.kind == kQ5_0 {
			fn = dotQ5_0x4
		} else if m.kind == kIQ4NL {
			fn = dotIQ4_NLx4AVX2
		}
		fn(&w[0], rr, &x[0], a.stride, &xs4[0], m.nb, &out[0])
	case kQ4_K, kQ5_K, kQ6_K, kIQ4XS:
		x := a.b[t*a.stride : (t+4)*a.stride]
		fn := dotQ4_Kx4AVX2
		if m.kind == kQ5_K {
			fn = dotQ5_Kx4AVX2
		} else if m.kind == kQ6_K {
			fn = dotQ6_Kx4AVX2
		} else if m.kind == kIQ4XS {
			fn = dotIQ4_XSx4AVX2
		}
		fn(&w[0], rr, &x[0], a.stride, m.nb, &out[0])
	case kQ4_1, kQ5_1:
		x := a.b[t*a.stride : (t+4)*a.stride]
		fn := dotQ4_1x4AVX2
		if m.kind == kQ5_1 {
			fn = dotQ5_1x4AVX2
		}
		fn(&w[0], rr, &x[0], a.stride, m.nb, &out[0])
	case kQ2_K, kQ3_K:
		x := a.b[t*a.stride : (t+4)*a.stride]
		fn := dotQ2_Kx4AVX2
		if m.kind == kQ3_K {
			fn = dotQ3_Kx4AVX2
		}
		fn(&w[0], rr, &x[0], a.stride, m.nb, &out[0])
	default:
		var col [tileRows]float32
		for i := range 4 {
			m.dot1AVX2(col[:rr], r0, rr, a, t+i)
			for r := range rr {
				out[4*r+i] = col[r]
			}
		}
	}
}

// dot8AVX2 sets out[8r+i] = row r0+r · activation t+i for r < rr, i < 8,
// for the legacy types (Q8_0, Q4_0, Q5_0).
func (m *Matrix) dot8AVX2(out []float32, r0, rr int, a *acts, t int) {
	if rr == 0 {
		return
	}
	_ = out[8*rr-1]
	w := m.rowData(r0, rr)
	x := a.b[t*a.stride : (t+8)*a.stride]
	xs4 := a.s4[t*m.nb : (t+8)*m.nb]
	fn := dotQ8_0x8
	if m.kind == kQ4_0 {
		fn = dotQ4_0x8
	} else if m.kind == kQ5_0 {
		fn = dotQ5_0x8
	} else if m.kind == kIQ4NL {
		fn = dotIQ4_NLx8AVX2
	}
	fn(&w[0], rr, &x[0], a.stride, &xs4[0], m.nb, &out[0])
}

// floatSpan is the column span of one pass of the float x4 kernels: four
// activation rows of it take 16 KiB, half of a typical L1 data cache.
const floatSpan = 1024

// floatx4 runs the x4 kernel of a float weight type over columns [c0,
// c0+n) of rr rows of w, with four activation rows starting at x (Cols
// apart).
func (m *Matrix) floatx4(out []float32, w []byte, rr int, x []float32, c0, n int) {
	es := m.rowBytes / m.Cols
	wp := unsafe.Pointer(&w[c0*es])
	switch m.kind {
	case kF32:
		dotF32x4AVX2((*float32)(wp), m.rowBytes, rr, &x[0], 4*m.Cols, n, &out[0], 16, 4)
	case kF16:
		r4 := 0
		if useF16x44 && n%8 == 0 {
			// Four rows at a time, the rest one by one.
			r4 = rr &^ 3
			if r4 > 0 {
				dotF16x44AVX512((*uint16)(wp), m.rowBytes, r4, &x[0], 4*m.Cols, n, &out[0], 16)
			}
		}
		if r4 < rr {
			wr := unsafe.Add(wp, r4*m.rowBytes)
			dotF16x4AVX2((*uint16)(wr), m.rowBytes, rr-r4, &x[0], 4*m.Cols, n, &out[4*r4], 16, 4)
		}
	default:
		dotBF16x4AVX2((*uint16)(wp), m.rowBytes, rr, &x[0], 4*m.Cols, n, &out[0], 16, 4)
	}
}
