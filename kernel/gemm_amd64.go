//go:build !kvgo_generic

package kernel

import "unsafe"

// useGEMM selects the tile GEMM of gemm_amd64.s for batches of Q8_0, Q4_0
// and Q5_0 weights. It needs VNNI (see useVNNI, which KVGO_NO_AVX512=1
// turns off to measure the AVX2 kernels against it).
var useGEMM = useVNNI

//go:noescape
func repackQ8_0x8(dst *byte, p *[8]*byte, nb int)

//go:noescape
func repackQ4_0x8(dst *byte, p *[8]*byte, nb int)

//go:noescape
func repackQ5_0x8(dst *byte, p *[8]*byte, nb int)

//go:noescape
func repackQ4_Kx8(dst *byte, p *[8]*byte, nb int)

//go:noescape
func gemmQ4_KVNNI(w *byte, nb int, x *byte, xstride int, kt *float32, groups int, out *float32, ostride int)

//go:noescape
func repackQ6_Kx8(dst *byte, p *[8]*byte, nb int)

//go:noescape
func gemmQ6_KVNNI(w *byte, nb int, x *byte, xstride int, kt *float32, groups int, out *float32, ostride int)

//go:noescape
func gemmLegacyVNNI(w *byte, nb int, x *byte, xstride int, s4 *float32, c4 *int32, groups int, out *float32, ostride int)

// gemmRun sets out[t][r] for rows [lo, hi) and all n tokens through the
// tile GEMM: 16 rows at a time are repacked into pack (grown when short)
// and multiplied with every whole group of four tokens; the last n%4
// tokens go through the one-token kernel. It returns pack.
func (m *Matrix) gemmRun(pack []byte, tmp *[tileRows * 8]float32, out []float32, lo, hi int, a *acts, n int) []byte {
	need := m.nb * gemmBlockBytes
	switch m.kind {
	case kQ4_K:
		need = m.nb * 8 * gemmKBlockBytes
	case kQ6_K:
		need = m.nb * 8 * gemm6BlockBytes
	}
	if len(pack) < need {
		pack = make([]byte, need)
	}
	groups := n / 4
	for r0 := lo; r0 < hi; r0 += gemmRows {
		rr := min(gemmRows, hi-r0)
		m.repack(pack, r0, rr)
		if groups > 0 {
			xs := a.b[:groups*4*a.stride]
			if rr == gemmRows {
				m.gemmGroups(pack, xs, a, 0, groups, &out[r0], 4*m.Rows)
			} else {
				for g := range groups {
					m.gemmGroups(pack, xs, a, g, 1, &tmp[0], 4*gemmRows)
					for i := range 4 {
						copy(out[(4*g+i)*m.Rows+r0:(4*g+i)*m.Rows+r0+rr], tmp[i*gemmRows:i*gemmRows+rr])
					}
				}
			}
		}
		for t := 4 * groups; t < n; t++ {
			m.dot1AVX2(out[t*m.Rows+r0:t*m.Rows+r0+rr], r0, rr, a, t)
		}
	}
	return pack
}

// gemmGroups runs the kernel of m's type over the token groups [g, g+k).
func (m *Matrix) gemmGroups(pack, xs []byte, a *acts, g, k int, out *float32, ostride int) {
	x := &xs[4*g*a.stride]
	switch m.kind {
	case kQ4_K:
		gemmQ4_KVNNI(&pack[0], m.nb, x, a.stride, &a.kt[4*g*16*m.nb], k, out, ostride)
		return
	case kQ6_K:
		gemmQ6_KVNNI(&pack[0], m.nb, x, a.stride, &a.kt[4*g*32*m.nb], k, out, ostride)
		return
	}
	gemmLegacyVNNI(&pack[0], m.nb, x, a.stride, &a.s4[4*g*m.nb], &a.c4[4*g*m.nb], k, out, ostride)
}

// repackK writes Q4_K rows [r0, r0+rr) into pack: the codes in assembly,
// the sub-blocks' scales d·sc_j and minimums dmin·m_j here.
func (m *Matrix) repackK(pack []byte, r0, rr int) {
	var p [8]*byte
	for h := range 2 {
		for i := range 8 {
			r := r0 + min(8*h+i, rr-1)
			p[i] = &m.Data[r*m.rowBytes]
		}
		repackQ4_Kx8((*byte)(unsafe.Add(unsafe.Pointer(&pack[0]), 32*h)), &p, m.nb)
	}
	f := unsafe.Slice((*float32)(unsafe.Pointer(&pack[0])), len(pack)/4)
	for r := range gemmRows {
		row := m.Data[(r0+min(r, rr-1))*m.rowBytes:]
		for b := range m.nb {
			blk := row[b*144 : b*144+16]
			d, dmin := f16le(blk[0:]), f16le(blk[2:])
			sc, mn := k4ScalesMins(blk[4:16])
			for j := range 8 {
				o := (b*8+j)*gemmKBlockBytes/4 + 128 + r
				f[o] = d * float32(sc[j])
				f[o+16] = dmin * float32(mn[j])
			}
		}
	}
}

// repack6 writes Q6_K rows [r0, r0+rr) into pack: the codes in assembly,
// the sub-blocks' scales d·sc and offsets 32·d·sc here.
func (m *Matrix) repack6(pack []byte, r0, rr int) {
	var p [8]*byte
	for h := range 2 {
		for i := range 8 {
			r := r0 + min(8*h+i, rr-1)
			p[i] = &m.Data[r*m.rowBytes]
		}
		repackQ6_Kx8((*byte)(unsafe.Add(unsafe.Pointer(&pack[0]), 32*h)), &p, m.nb)
	}
	f := unsafe.Slice((*float32)(unsafe.Pointer(&pack[0])), len(pack)/4)
	for r := range gemmRows {
		row := m.Data[(r0+min(r, rr-1))*m.rowBytes:]
		for b := range m.nb {
			blk := row[b*210 : b*210+210]
			d := f16le(blk[208:])
			for s := range 16 {
				o := (b*8+s/2)*gemm6BlockBytes/4 + 128 + 32*(s%2) + r
				f[o] = d * float32(int8(blk[192+s]))
				f[o+16] = 32 * f[o]
			}
		}
	}
}

// repack writes weight rows [r0, r0+rr) (rr <= 16) into pack in the tile
// GEMM's layout; rows past rr repeat the last row, and their results are
// dropped.
func (m *Matrix) repack(pack []byte, r0, rr int) {
	switch m.kind {
	case kQ4_K:
		m.repackK(pack, r0, rr)
		return
	case kQ6_K:
		m.repack6(pack, r0, rr)
		return
	}
	var p [8]*byte
	for h := range 2 {
		for i := range 8 {
			r := r0 + min(8*h+i, rr-1)
			p[i] = &m.Data[r*m.rowBytes]
		}
		dst := (*byte)(unsafe.Add(unsafe.Pointer(&pack[0]), 32*h))
		// Direct calls: through a func value, p would escape.
		switch m.kind {
		case kQ4_0:
			repackQ4_0x8(dst, &p, m.nb)
		case kQ5_0:
			repackQ5_0x8(dst, &p, m.nb)
		default:
			repackQ8_0x8(dst, &p, m.nb)
		}
	}
}
