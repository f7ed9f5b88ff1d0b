package kernel

import (
	"fmt"
	"unsafe"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/quant"
)

// wkind says which kernel family multiplies a weight type.
type wkind uint8

const (
	// kRef types have no kernel of their own: each row goes through
	// quant.Dot.
	kRef wkind = iota
	kF32
	kF16
	kBF16
	kQ8_0
	kQ4_0
	kQ5_0
	kQ4_K
	kQ5_K
	kQ6_K
	kIQ4NL
	kIQ4XS
	kQ4_1
	kQ5_1
	kQ2_K
	kQ3_K
)

var kinds = map[gguf.TensorType]wkind{
	gguf.TypeF32: kF32, gguf.TypeF16: kF16, gguf.TypeBF16: kBF16,
	gguf.TypeQ8_0: kQ8_0, gguf.TypeQ4_0: kQ4_0, gguf.TypeQ5_0: kQ5_0,
	gguf.TypeQ4_K: kQ4_K, gguf.TypeQ5_K: kQ5_K, gguf.TypeQ6_K: kQ6_K,
	gguf.TypeIQ4_NL: kIQ4NL, gguf.TypeIQ4_XS: kIQ4XS,
	gguf.TypeQ4_1: kQ4_1, gguf.TypeQ5_1: kQ5_1, gguf.TypeQ2_K: kQ2_K, gguf.TypeQ3_K: kQ3_K,
}

// gemm reports whether batches of m go through the tile GEMM
// (gemm_amd64.s).
func (m *Matrix) gemm() bool {
	switch m.kind {
	case kQ8_0, kQ4_0, kQ5_0, kQ4_K, kQ6_K:
		return useGEMM
	}
	return false
}

// ktSub is the number of sub-blocks per super-block the K-quant tile GEMM
// of m scales separately (acts.kt).
func (m *Matrix) ktSub() int {
	if m.kind == kQ6_K {
		return 16
	}
	return 8
}

// gemmMin is the smallest batch of m that goes through the tile GEMM.
func (m *Matrix) gemmMin() int {
	if m.kind.kquant() {
		return gemmKMinTokens
	}
	return gemmMinTokens
}

// legacy reports whether k multiplies against Q8_0 activations.
func (k wkind) legacy() bool { return k == kQ8_0 || k == kQ4_0 || k == kQ5_0 || k == kIQ4NL }

// kquant reports whether k multiplies against Q8_K activations.
func (k wkind) kquant() bool {
	return k == kQ4_K || k == kQ5_K || k == kQ6_K || k == kIQ4XS || k == kQ2_K || k == kQ3_K
}

// float reports whether k multiplies against float32 activations (for
// F16 and BF16 rounded to the weight type first, as ggml does).
func (k wkind) float() bool { return k == kF32 || k == kF16 || k == kBF16 }

// tileRows is the largest number of weight rows MatMul keeps in cache
// while it runs every token of a batch over them, and tileBytes the cache
// budget for those rows: a tile is read from memory once per call, not once
// per token, and stays in L2 (256 KiB leaves room for the activations on
// cores with 512 KiB or more).
const (
	tileRows  = 64
	tileBytes = 256 << 10
)

// Matrix is a weight matrix of Rows rows of Cols elements stored in one of
// ggml's tensor types, used in place (usually a slice of a mapped file).
type Matrix struct {
	Type       gguf.TensorType
	Rows, Cols int
	Data       []byte
	rowBytes   int
	kind       wkind
	nb         int // blocks per row (elements per row for the float types)
	actRow     int // bytes of one converted activation row
	tile       int // rows per cache tile
}

// weightTypes are the tensor types a Matrix can hold: every type with a
// dot product against a converted activation.
var weightTypes = map[gguf.TensorType]bool{
	gguf.TypeF32: true, gguf.TypeF16: true, gguf.TypeBF16: true,
	gguf.TypeQ4_0: true, gguf.TypeQ4_1: true, gguf.TypeQ5_0: true, gguf.TypeQ5_1: true, gguf.TypeQ8_0: true,
	gguf.TypeQ2_K: true, gguf.TypeQ3_K: true, gguf.TypeQ4_K: true, gguf.TypeQ5_K: true, gguf.TypeQ6_K: true,
	gguf.TypeIQ4_NL: true, gguf.TypeIQ4_XS: true,
}

// NewMatrix wraps data as a Rows×Cols matrix of type t.
func NewMatrix(t gguf.TensorType, rows, cols int, data []byte) (*Matrix, error) {
	rb, err := t.RowBytes(cols)
	if err != nil {
		return nil, err
	}
	if !weightTypes[t] {
		return nil, fmt.Errorf("tensor type %s cannot be used as a weight matrix", t)
	}
	if rows < 0 || len(data) != rb*rows {
		return nil, fmt.Errorf("%d bytes for a %d×%d %s matrix, want %d", len(data), rows, cols, t, rb*rows)
	}
	m := &Matrix{Type: t, Rows: rows, Cols: cols, Data: data, rowBytes: rb, kind: kinds[t]}
	m.nb = cols / t.BlockElems()
	switch {
	case m.kind.float():
		m.actRow = 4 * cols
		if m.kind == kF32 {
			m.actRow = 0 // the activations are used as they are
		}
	default:
		m.actRow, _ = quant.VecDotType(t).RowBytes(cols)
	}
	m.tile = max(1, min(tileRows, tileBytes/max(rb, 1)))
	if m.gemm() {
		// The tile GEMM repacks 16 rows at a time.
		m.tile = max(gemmRows, m.tile/gemmRows*gemmRows)
	}
	return m, nil
}

// Float32s views little-endian float32 bytes as a []float32 without copying
// when b is 4-byte aligned, and copies otherwise.
func Float32s(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
	}
	out := make([]float32, len(b)/4)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(b)), b)
	return out
}

// Row decodes row r into dst (len Cols).
func (m *Matrix) Row(r int, dst []float32) error {
	if r < 0 || r >= m.Rows {
		return fmt.Errorf("row %d out of range [0, %d)", r, m.Rows)
	}
	return quant.Dequantize(m.Type, m.Data[r*m.rowBytes:(r+1)*m.rowBytes], dst)
}

// ActivationBytes is the scratch size MatMul needs for n input rows.
func (m *Matrix) ActivationBytes(n int) int {
	if m.actRow == 0 {
		return 0
	}
	b := n * m.actRow
	if m.kind.legacy() {
		// The block scales again as float32, 4-byte aligned, so the
		// kernels need not convert them once per weight row: once by
		// token (s) and once by group of four tokens (s4).
		b += 8*n*m.nb + 4
		if m.gemm() {
			b += 4 * n * m.nb // acts.c4
		}
	}
	if m.kind.kquant() && m.gemm() {
		b += 128*n*m.nb + 4 // acts.kt
	}
	return b
}

// acts is a batch of activation rows converted for one weight matrix.
type acts struct {
	b      []byte    // n rows of stride bytes (quantized types)
	stride int       // bytes per row of b
	s      []float32 // legacy types: the Q8_0 block scales, n rows of nb
	// s4 holds the scales of each group of four tokens interleaved, block
	// by block (s4[g*4*nb + 4*b + i] = s[(4g+i)*nb + b]), for the kernels
	// that multiply a weight block with four tokens at once.
	s4 []float32
	// c4 holds, for the tile GEMM, each block's starting integer sum
	// -offset·Σx, interleaved like s4 (see fillOffsets).
	c4 []int32
	// kt holds, for the Q4_K tile GEMM, each sub-block's activation scale
	// and scaled sum (see fillKTable).
	kt []float32
	f  []float32 // float types: n rows of Cols
}

// convert turns x (n rows of Cols) into the activation format of m, in
// scratch, quantizing several rows in parallel when there are many.
func (m *Matrix) convert(p *Pool, x []float32, n int, scratch []byte) acts {
	var a acts
	switch {
	case m.kind == kF32:
		a.f = x[:n*m.Cols]
		return a
	case m.kind.float():
		a.f = alignedFloats(scratch, n*m.Cols)
	default:
		a.b, a.stride = scratch[:n*m.actRow], m.actRow
		if m.kind.legacy() {
			nf := 2 * n * m.nb
			if m.gemm() {
				nf += n * m.nb
			}
			f := alignedFloats(scratch[n*m.actRow:], nf)
			a.s, a.s4 = f[:n*m.nb], f[n*m.nb:2*n*m.nb]
			if m.gemm() && n >= gemmMinTokens {
				c := f[2*n*m.nb:]
				a.c4 = unsafe.Slice((*int32)(unsafe.Pointer(&c[0])), len(c))
			}
		}
		if m.kind.kquant() && m.gemm() && n >= gemmKMinTokens {
			a.kt = alignedFloats(scratch[n*m.actRow:], m.ktSub()*2*n*m.nb)
		}
	}
	j := &p.qa
	*j = quantJob{m: m, x: x, a: a}
	if n*m.Cols < 1<<15 {
		j.Run(0, 0, n)
	} else {
		p.Run(n, 1, j)
	}
	*j = quantJob{}
	if a.c4 != nil {
		fillOffsets(a.c4, a.b, a.stride, n, m.nb, codeOffset(m.kind))
	}
	if a.kt != nil {
		fillKTable(a.kt, a.b, a.stride, n, m.nb, m.ktSub())
	}
	if a.s4 != nil {
		for g := 0; g+4 <= n; g += 4 {
			for b := range m.nb {
				for i := range 4 {
					a.s4[g*m.nb+4*b+i] = a.s[(g+i)*m.nb+b]
				}
			}
		}
	}
	return a
}

// alignedFloats views the first 4n bytes at a 4-byte boundary of b (which
// has 4 bytes of slack for that) as float32s.
func alignedFloats(b []byte, n int) []float32 {
	if n == 0 {
		return nil
	}
	off := int(-uintptr(unsafe.Pointer(&b[0])) & 3)
	b = b[off : off+4*n]
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

// quantJob converts activation rows [lo, hi).
type quantJob struct {
	m *Matrix
	x []float32
	a acts
}

func (j *quantJob) Run(_, lo, hi int) {
	m, a := j.m, &j.a
	for t := lo; t < hi; t++ {
		x := j.x[t*m.Cols : (t+1)*m.Cols]
		switch {
		case m.kind == kF16:
			roundF16(a.f[t*m.Cols:(t+1)*m.Cols], x)
		case m.kind == kBF16:
			roundBF16(a.f[t*m.Cols:(t+1)*m.Cols], x)
		case m.kind.legacy():
			quantizeQ8_0(a.b[t*a.stride:(t+1)*a.stride], a.s[t*m.nb:(t+1)*m.nb], x)
		case m.kind.kquant():
			quantizeQ8_K(a.b[t*a.stride:(t+1)*a.stride], x)
		default:
			if err := quant.QuantizeActivation(m.Type, x, a.b[t*a.stride:(t+1)*a.stride]); err != nil {
				panic(fmt.Sprintf("kernel: activation of %d columns for %s: %v", m.Cols, m.Type, err))
			}
		}
	}
}

// MatMul computes out[t][r] = Σ_c m[r][c]·x[t][c] for n input rows x
// (n×Cols) into out (n×Rows). Like ggml, it first converts the activations
// to the weight type's dot-product partner (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_K
// for the K-quants, F16 or BF16 precision for F16 and BF16 weights), so
// results match llama.cpp closely. scratch must hold ActivationBytes(n)
// bytes. MatMul does not allocate.
//
// The rows are cut into tiles that stay in cache while every token of the
// batch is multiplied with them, four tokens per pass, so the weights are
// read from memory once per call whatever n is.
func (m *Matrix) MatMul(p *Pool, out, x []float32, n int, scratch []byte) {
	if n <= 0 {
		return
	}
	if len(x) < n*m.Cols || len(out) < n*m.Rows || len(scratch) < m.ActivationBytes(n) {
		panic(fmt.Sprintf("kernel: MatMul of a %d×%d matrix with %d rows: x has %d values, out %d, scratch %d bytes (want %d, %d, %d)",
			m.Rows, m.Cols, n, len(x), len(out), len(scratch), n*m.Cols, n*m.Rows, m.ActivationBytes(n)))
	}
	a := m.convert(p, x, n, scratch)
	j := &p.mm
	pack := j.pack
	if m.gemm() && n >= m.gemmMin() && len(pack) < p.n {
		pack = make([][]byte, p.n) // once per pool
	}
	*j = matJob{m: m, out: out, n: n, a: a, tmp: p.tmp, pack: pack}
	p.Run(m.Rows, m.tile, j)
	*j = matJob{pack: pack}
}

// matJob multiplies weight rows [lo, hi) with every activation row.
type matJob struct {
	m   *Matrix
	out []float32
	n   int
	a   acts
	tmp [][tileRows * 8]float32
	// pack is each worker's repacked weight tile for the tile GEMM, kept
	// from call to call (it grows to the longest row once).
	pack [][]byte
}

func (j *matJob) Run(w, lo, hi int) {
	m, n := j.m, j.n
	tmp := &j.tmp[w]
	if m.gemm() && n >= m.gemmMin() {
		j.pack[w] = m.gemmRun(j.pack[w], tmp, j.out, lo, hi, &j.a, n)
		return
	}
	for r0 := lo; r0 < hi; r0 += m.tile {
		rr := min(m.tile, hi-r0)
		t := 0
		if useAVX2 && m.kind.legacy() {
			for ; t+8 <= n; t += 8 {
				m.dot8AVX2(tmp[:8*rr], r0, rr, &j.a, t)
				for r := range rr {
					for i := range 8 {
						j.out[(t+i)*m.Rows+r0+r] = tmp[8*r+i]
					}
				}
			}
		}
		for ; t+4 <= n; t += 4 {
			m.dot4(tmp[:4*rr], r0, rr, &j.a, t)
			for r := range rr {
				j.out[t*m.Rows+r0+r] = tmp[4*r]
				j.out[(t+1)*m.Rows+r0+r] = tmp[4*r+1]
				j.out[(t+2)*m.Rows+r0+r] = tmp[4*r+2]
				j.out[(t+3)*m.Rows+r0+r] = tmp[4*r+3]
			}
		}
		for ; t < n; t++ {
			m.dot1(j.out[t*m.Rows+r0:t*m.Rows+r0+rr], r0, rr, &j.a, t)
		}
	}
}

// rowData returns the bytes of weight rows [r0, r0+rr).
func (m *Matrix) rowData(r0, rr int) []byte {
	return m.Data[r0*m.rowBytes : (r0+rr)*m.rowBytes]
}

// dot1 sets out[r] = row r0+r · activation t for r < rr.
func (m *Matrix) dot1(out []float32, r0, rr int, a *acts, t int) {
	if useAVX2 && m.kind != kRef {
		m.dot1AVX2(out[:rr], r0, rr, a, t)
		return
	}
	for r := range rr {
		out[r] = m.dotGo(r0+r, a, t)
	}
}

// dot4 sets out[4r+i] = row r0+r · activation t+i for r < rr, i < 4.
func (m *Matrix) dot4(out []float32, r0, rr int, a *acts, t int) {
	if useAVX2 && m.kind != kRef {
		m.dot4AVX2(out[:4*rr], r0, rr, a, t)
		return
	}
	for r := range rr {
		for i := range 4 {
			out[4*r+i] = m.dotGo(r0+r, a, t+i)
		}
	}
}

// dotGo is the pure-Go dot product of row r with activation t.
func (m *Matrix) dotGo(r int, a *acts, t int) float32 {
	w := m.Data[r*m.rowBytes : (r+1)*m.rowBytes]
	if m.kind.float() {
		return dotFloatRow(m.kind, w, a.f[t*m.Cols:(t+1)*m.Cols])
	}
	x := a.b[t*a.stride : (t+1)*a.stride]
	switch m.kind {
	case kQ8_0:
		return dotQ8_0Go(w, x, m.nb)
	case kQ4_0:
		return dotQ4_0Go(w, x, m.nb)
	case kQ5_0:
		return dotQ5_0Go(w, x, m.nb)
	case kQ4_K:
		return dotK45Go(w, x, m.nb, 144, false)
	case kQ5_K:
		return dotK45Go(w, x, m.nb, 176, true)
	case kQ6_K:
		return dotQ6_KGo(w, x, m.nb)
	case kIQ4NL:
		return dotIQ4NLGo(w, x, m.nb)
	case kIQ4XS:
		return dotIQ4XSGo(w, x, m.nb)
	case kQ4_1:
		return dotQ4_1Go(w, x, m.nb)
	case kQ5_1:
		return dotQ5_1Go(w, x, m.nb)
	case kQ2_K:
		return dotQ2_KGo(w, x, m.nb)
	case kQ3_K:
		return dotQ3_KGo(w, x, m.nb)
	}
	return quant.Dot(m.Type, w, x, m.Cols)
}

// dotFloatRow is the pure-Go dot product of one F32, F16 or BF16 weight
// row with float32 activations.
func dotFloatRow(k wkind, w []byte, x []float32) float32 {
	switch k {
	case kF32:
		return Dot(Float32s(w), x)
	case kF16:
		return dotF16Go(x, halves(w))
	default:
		return dotBF16Go(x, halves(w))
	}
}

// halves views little-endian 16-bit values as []uint16 (weights are
// 2-byte aligned in a GGUF file, whose tensor data is 32-byte aligned).
func halves(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%2 != 0 {
		panic("kernel: misaligned 16-bit weights")
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}
