package tokenizer

import "strings"

// SentencePiece-style BPE (tokenizer.ggml.model = "llama"), as llama.cpp's
// llm_tokenizer_spm does it: the text (spaces already replaced by U+2581) is
// split into UTF-8 characters, and the adjacent pair whose concatenation is
// the vocabulary token with the highest score is merged first, ties going
// to the leftmost pair. Characters that never become a token are emitted as
// <0xXX> byte tokens.

// spaceMarker is U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
const spaceMarker = "\u2581"

type spmSym struct {
	start, n   int32
	prev, next int32
}

type spmCand struct {
	score       float32
	left, right int32
	size        int32
}

// spmHeap is a binary max-heap ordered by score, then by lowest left index
// (llama.cpp's llm_bigram_spm comparator).
type spmHeap []spmCand

func (h spmHeap) before(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].left < h[j].left
}

func (h *spmHeap) push(c spmCand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.before(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *spmHeap) pop() spmCand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	s.down(0)
	*h = s
	return top
}

// stale reports whether candidate c can no longer merge: a side was
// merged away or has grown since c was queued. Symbols only grow or
// vanish, so a stale candidate stays stale.
func (c *spmCand) stale(syms []spmSym) bool {
	l, r := &syms[c.left], &syms[c.right]
	return l.n == 0 || r.n == 0 || l.n+r.n != c.size
}

// compact drops stale candidates and restores the heap order, so that a
// full heap makes room instead of growing: at most one candidate per
// symbol is live, and a long text queued up to three per symbol.
func (h *spmHeap) compact(syms []spmSym) {
	s := (*h)[:0]
	for _, c := range *h {
		if !c.stale(syms) {
			s = append(s, c)
		}
	}
	if len(s) > cap(s)*3/4 {
		// Mostly live: grow, so that compacting stays amortized O(1).
		s = append(make(spmHeap, 0, 2*cap(s)), s...)
	}
	for i := len(s)/2 - 1; i >= 0; i-- {
		s.down(i)
	}
	*h = s
}

func (h spmHeap) down(i int) {
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h.before(l, m) {
			m = l
		}
		if r < len(h) && h.before(r, m) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// spmScratch holds per-call buffers of the SPM encoder.
type spmScratch struct {
	syms []spmSym
	heap spmHeap
}

// escapeSPM prepares a raw fragment for the SPM merger: the optional dummy
// prefix space, then every space replaced by U+2581.
func escapeSPM(text string, prefix bool) string {
	if prefix {
		text = " " + text
	}
	return strings.ReplaceAll(text, " ", spaceMarker)
}

// encodeSPM appends the tokens of one escaped fragment.
func (t *Tokenizer) encodeSPM(text string, sc *spmScratch, out []int) []int {
	if text == "" {
		return out
	}
	// One symbol per character, allocated once: appending to a 4 MB
	// prompt's symbols copied them about 25 times over.
	n := 0
	for off := 0; off < len(text); n++ {
		off += min(utf8Len(text[off]), len(text)-off)
	}
	syms := sc.syms[:0]
	if cap(syms) < n {
		syms = make([]spmSym, 0, n)
	}
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		i := int32(len(syms))
		syms = append(syms, spmSym{start: int32(off), n: int32(n), prev: i - 1, next: i + 1})
		off += n
	}
	syms[len(syms)-1].next = -1

	h := sc.heap[:0]
	if cap(h) < len(syms) {
		h = make(spmHeap, 0, len(syms))
	}
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		start, end := syms[l].start, syms[r].start+syms[r].n
		id, ok := t.toID[text[start:end]]
		if !ok {
			return
		}
		if len(h) == cap(h) {
			h.compact(syms)
		}
		h.push(spmCand{score: t.scores[id], left: l, right: r, size: end - start})
	}
	for i := 1; i < len(syms); i++ {
		try(int32(i-1), int32(i))
	}
	for len(h) > 0 {
		c := h.pop()
		if c.stale(syms) {
			continue // one side changed since the candidate was queued
		}
		l, r := &syms[c.left], &syms[c.right]
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		try(l.prev, c.left)
		try(c.left, l.next)
	}
	sc.heap = h
	sc.syms = syms

	for i := int32(0); i != -1; i = syms[i].next {
		s := syms[i]
		piece := text[s.start : s.start+s.n]
		if id, ok := t.toID[piece]; ok {
			out = append(out, int(id))
			continue
		}
		// Every merged symbol is a token, so only single characters get
		// here: fall back to their bytes.
		for j := 0; j < len(piece); j++ {
			if id := t.spmByte[piece[j]]; id >= 0 {
				out = append(out, int(id))
			}
		}
	}
	return out
}
