package kv

import (
	"math"

	"github.com/kvgo/kvgo/kernel"
)

// AttendBlock is Attend for the tokens of one query block of the current
// batch at once, flash-attention style (Dao et al. 2022, "FlashAttention",
// section 3.1): the block's query rows (every query head of the group ×
// every token of the block) meet each page of keys together, an online
// softmax keeps a running maximum and normalizer per row, no T×T score
// matrix is formed, and each page is read once per block instead of once
// per token. The causal mask is applied per row inside the pages that hold
// positions after some of the block's queries (the diagonal). Token i's
// queries are q[i*qstride : i*qstride+g*key width] at position qpos[i],
// and its output goes to out[i*ostride : i*ostride+g*value width].
//
// The outputs are those of Attend token by token up to float rounding (the
// query rows meet the keys in other groupings of the dot kernels, and the
// softmax scale is folded into the queries). Where a policy needs each
// query on its own, the block runs token by token through Attend instead:
// a selector that reads the prompt (PromptReader: each query is handed
// to ReadPrompt and its local attention summed), an evictor collecting
// attention statistics of these queries (the prompt's observation window,
// or statistics of every step), a selector choosing pages (decode steps),
// and values stored in keys (latent caches).
//
// A token's outputs do not depend on which other tokens share its block:
// the rows are padded to a multiple of four with zero queries, so that
// every row is scored by the four-query kernel (kernel.DotsGroup takes the
// rows four at a time; fewer than four would go through the single-query
// kernel, which sums in another order), and the value kernels sum every
// column in row order whatever their grouping. Reusing a stored prefix
// then gives the same logits as computing the prompt at once
// (TestAttendBlockSplitInvariant; kv/reuse/prefix's
// TestReusedPrefixGivesTheSameLogits).
//
// A block is work of one worker; blocks of different (layer, kvHead) or
// of disjoint tokens may run in parallel, each with its own Scratch.
func (c *Cache) AttendBlock(layer, kvHead int, q []float32, qstride, g int, qpos []int32, out []float32, ostride int, sc *Scratch) {
	s := c.Stream(layer, kvHead)
	if len(qpos) == 0 {
		return
	}
	if !c.tiles(s, qpos) {
		for i, p := range qpos {
			c.Attend(layer, kvHead, q[i*qstride:i*qstride+g*s.dk], g, p, out[i*ostride:i*ostride+g*s.dv], sc)
		}
		return
	}
	s.attendBlock(q, qstride, g, qpos, c.scale, out, ostride, sc)
}

// tiles reports whether the queries at qpos may attend as one block: no
// policy asks to see them one at a time.
func (c *Cache) tiles(s *Stream, qpos []int32) bool {
	if c.selecting || c.reader != nil || c.observe || s.shared {
		return false
	}
	if c.prefill {
		for _, p := range qpos {
			if p >= c.obsFrom {
				return false
			}
		}
	}
	return true
}

// blockRowUnit is what a block's rows are padded to a multiple of: the
// score kernels take four query rows at a time (kernel.DotsGroup).
const blockRowUnit = 4

// blockScratch is a worker's memory for one query block: the packed and
// scaled queries, the unnormalized outputs, the running maximum and
// normalizer per row, and each row's position.
type blockScratch struct {
	q, o, m, l []float32
	pos        []int32
}

// attendBlock runs the block's rows over the stream's pages and tail.
func (s *Stream) attendBlock(q []float32, qstride, g int, qpos []int32, scale float32, out []float32, ostride int, sc *Scratch) {
	dk, dv := s.dk, s.dv
	n := len(qpos)
	rows := (n*g + blockRowUnit - 1) / blockRowUnit * blockRowUnit
	b := &sc.blk
	Q := grow(&b.q, rows*dk)
	O := grow(&b.o, rows*dv)
	m, l := grow(&b.m, rows), grow(&b.l, rows)
	if cap(b.pos) < rows {
		b.pos = make([]int32, rows)
	}
	rpos := b.pos[:rows]
	lo, hi := qpos[0], qpos[0]
	for i, p := range qpos {
		lo, hi = min(lo, p), max(hi, p)
		// The softmax scale goes into the queries once, not into every
		// score row of every page.
		src, dst := q[i*qstride:i*qstride+g*dk], Q[i*g*dk:(i+1)*g*dk]
		for c, x := range src {
			dst[c] = x * scale
		}
		for j := 0; j < g; j++ {
			rpos[i*g+j] = p
		}
	}
	// Padding rows: zero queries at the block's last position.
	clear(Q[n*g*dk:])
	for r := n * g; r < rows; r++ {
		rpos[r] = hi
	}
	inf := float32(math.Inf(-1))
	for r := range m {
		m[r], l[r] = inf, 0
	}
	clear(O)
	T := len(s.pos)
	base := 0
	ended := false
	for _, p := range s.pages {
		// Positions increase along the stream: a page that starts after
		// every query of the block, and all after it, is invisible.
		if base < T && s.pos[base] > hi {
			ended = true
			break
		}
		s.tile(p.k, p.v, Q, rows, rpos, lo, O, dv, base, sc)
		base += p.k.Len()
	}
	if !ended && s.tailLen() > 0 && s.pos[base] <= hi {
		sc.tailK, sc.tailV = f16View{s.tk, s.dk}, f16View{s.tv, dv}
		s.tile(&sc.tailK, &sc.tailV, Q, rows, rpos, lo, O, dv, base, sc)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < g; j++ {
			r := i*g + j
			o := out[i*ostride+j*dv : i*ostride+(j+1)*dv]
			copy(o, O[r*dv:(r+1)*dv])
			if l[r] > 0 {
				kernel.Scale(o, 1/l[r])
			}
		}
	}
}

// tile folds one page (or the tail) into the block's online softmax: the
// scores of every row against the page's keys in one Dot, each row masked
// where the page holds positions after its query (only in pages on the
// block's diagonal), its running maximum and normalizer updated and its
// output rescaled, then one AddWeighted of the page's values for all rows.
func (s *Stream) tile(k, v attendable, Q []float32, rows int, rpos []int32, lo int32, O []float32, dv, base int, sc *Scratch) {
	n := k.Len()
	b := &sc.blk
	m, l := b.m, b.l
	w := sc.scoreBuf(rows * n)
	k.Dot(Q, rows, w, &sc.page)
	pos := s.pos[base : base+n]
	diag := pos[n-1] > lo
	inf := float32(math.Inf(-1))
	for r := 0; r < rows; r++ {
		row := w[r*n : (r+1)*n]
		var bm float32
		if qp := rpos[r]; diag && pos[n-1] > qp {
			bm = inf
			for i, p := range pos {
				if p > qp {
					row[i] = inf
				}
				bm = max(bm, row[i])
			}
		} else {
			bm = kernel.Max(row)
		}
		if bm > m[r] {
			f := float32(math.Exp(float64(m[r] - bm)))
			kernel.Scale(O[r*dv:(r+1)*dv], f)
			l[r] *= f
			m[r] = bm
		}
		if math.IsInf(float64(m[r]), -1) {
			clear(row)
			continue
		}
		l[r] += kernel.ExpShift(row, m[r])
	}
	v.AddWeighted(w, rows, O, &sc.page)
}
