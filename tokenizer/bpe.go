package tokenizer

// Byte-level BPE (tokenizer.ggml.model = "gpt2"): text is split into words
// by the pre-tokenizer, each word's UTF-8 bytes are mapped to printable code
// points with GPT-2's byte-to-unicode table (the alphabet the vocabulary is
// written in), and adjacent symbols are merged by ascending merge rank.

// gpt2ByteRune maps a byte to the code point GPT-2's vocabularies use for it:
// printable Latin-1 bytes stand for themselves, the other 68 bytes are
// shifted to U+0100 and up in byte order.
var gpt2ByteRune = func() (t [256]rune) {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = 256 + n
			n++
		}
	}
	return t
}()

// gpt2RuneByte is the inverse of gpt2ByteRune, indexed by code point (all
// mapped code points are below 0x144); -1 marks code points that stand for
// no byte.
var gpt2RuneByte = func() (t [0x144]int16) {
	for i := range t {
		t[i] = -1
	}
	for b, r := range gpt2ByteRune {
		t[r] = int16(b)
	}
	return t
}()

// gpt2ByteString is the UTF-8 encoding of gpt2ByteRune.
var gpt2ByteString = func() (t [256]string) {
	for b, r := range gpt2ByteRune {
		t[b] = string(r)
	}
	return t
}()

// mergeKey identifies an ordered pair of token ids.
func mergeKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// mergeVal packs a merge's rank and the id of the merged token (-1 when the
// concatenation is not itself a token, which llama.cpp tolerates).
type mergeVal struct {
	rank   int32
	result int32
}

// bpeSym is a symbol of the word being merged: a byte range of the word and
// the token id of its text (-1 if the text is not a token).
type bpeSym struct {
	id         int32
	start, n   int32
	prev, next int32
}

// bpeCand is a candidate merge of symbols left and right; lid and rid are
// their ids when the candidate was queued, used to detect stale entries.
type bpeCand struct {
	rank        int32
	left, right int32
	lid, rid    int32
	result      int32
}

// bpeHeap is a binary min-heap ordered by rank, then by left position, the
// order of llama.cpp's llm_bigram_bpe comparator.
type bpeHeap []bpeCand

func (h bpeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].left < h[j].left
}

func (h *bpeHeap) push(c bpeCand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *bpeHeap) pop() bpeCand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// bpeScratch holds per-call buffers of the BPE encoder.
type bpeScratch struct {
	text  splitText
	spans [2][]span
	word  []byte
	enc   []byte
	syms  []bpeSym
	heap  bpeHeap
}

// encodeBPE appends the tokens of one raw text fragment.
func (t *Tokenizer) encodeBPE(text string, sc *bpeScratch, out []int) []int {
	st := &sc.text
	if cap(st.cpts) < len(text) { // at most one code point per byte
		st.cpts = make([]rune, 0, len(text))
		st.flags = make([]cptFlags, 0, len(text))
	}
	st.cpts = decodeCpts(text, st.cpts)
	st.flags = st.flags[:0]
	for _, r := range st.cpts {
		st.flags = append(st.flags, flagsOf(r))
	}
	for _, s := range t.preset.split(st, &sc.spans) {
		// llama.cpp re-encodes the code points, so undecodable bytes
		// become U+FFFD here.
		sc.word = sc.word[:0]
		for _, r := range st.cpts[s.start:s.end] {
			sc.word = appendCpt(sc.word, r)
		}
		out = t.bpeWord(sc.word, sc, out)
	}
	return out
}

// bpeWord appends the tokens of one pre-tokenized word (raw UTF-8 bytes).
func (t *Tokenizer) bpeWord(word []byte, sc *bpeScratch, out []int) []int {
	if len(word) == 1 {
		if id := t.bpeByte[word[0]]; id >= 0 {
			return append(out, int(id))
		}
	}
	if t.preset.ignoreMerges {
		sc.enc = sc.enc[:0]
		for _, b := range word {
			sc.enc = append(sc.enc, gpt2ByteString[b]...)
		}
		if id, ok := t.toID[string(sc.enc)]; ok {
			return append(out, int(id))
		}
	}

	syms := sc.syms[:0]
	for i, b := range word {
		syms = append(syms, bpeSym{id: t.bpeByte[b], start: int32(i), n: 1, prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[len(syms)-1].next = -1
	h := sc.heap[:0]
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		lid, rid := syms[l].id, syms[r].id
		if lid < 0 || rid < 0 {
			return
		}
		if m, ok := t.merges.get(mergeKey(lid, rid)); ok {
			h.push(bpeCand{rank: m.rank, left: l, right: r, lid: lid, rid: rid, result: m.result})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(int32(i-1), int32(i))
	}
	for len(h) > 0 {
		c := h.pop()
		l, r := &syms[c.left], &syms[c.right]
		// Stale if either side was merged away or has grown since the
		// candidate was queued (llama.cpp compares the texts).
		if l.n == 0 || r.n == 0 || l.id != c.lid || r.id != c.rid {
			continue
		}
		l.id = c.result
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

	for _, s := range syms {
		if s.n == 0 {
			continue
		}
		if s.id >= 0 {
			out = append(out, int(s.id))
			continue
		}
		// The symbol's text is no token: llama.cpp looks up each byte of
		// its byte-level encoding as a one-byte token and drops the misses.
		for _, b := range word[s.start : s.start+s.n] {
			enc := gpt2ByteString[b]
			for i := 0; i < len(enc); i++ {
				if id := t.singleByte[enc[i]]; id >= 0 {
					out = append(out, int(id))
				}
			}
		}
	}
	return out
}

// decodeGPT2 converts a token written in GPT-2's byte alphabet back to raw
// bytes, as llama.cpp's llama_decode_text does, including its odd marker
// for code points outside the alphabet.
func decodeGPT2(text string, dst []byte) []byte {
	for i := 0; i < len(text); {
		r, n := decodeCpt(text, i)
		i += n
		if r < rune(len(gpt2RuneByte)) && gpt2RuneByte[r] >= 0 {
			dst = append(dst, byte(gpt2RuneByte[r]))
			continue
		}
		dst = append(dst, "[UNK_BYTE_0x"...)
		for _, b := range appendCpt(nil, r) {
			const hex = "0123456789abcdef"
			dst = append(dst, hex[b>>4], hex[b&15])
		}
		dst = append(dst, text...)
		dst = append(dst, ']')
	}
	return dst
}

// pairTable maps an ordered pair of token ids to its merge. It is a flat
// open-addressing table (linear probing, Fibonacci hashing): with hundreds
// of thousands of merges, building and probing it is dominated by cache
// misses, and one 16-byte slot per probe keeps that to one line.
type pairTable struct {
	slots []pairSlot
	shift uint // 64 - log2(len(slots))
}

type pairSlot struct {
	key1 uint64 // mergeKey + 1; 0 marks an empty slot
	val  mergeVal
}

func newPairTable(n int) pairTable {
	size, bits := 16, uint(4)
	for size < n+n/3+1 {
		size *= 2
		bits++
	}
	return pairTable{slots: make([]pairSlot, size), shift: 64 - bits}
}

func (p *pairTable) index(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> p.shift }

// insert adds key unless present and reports whether it did.
func (p *pairTable) insert(key uint64, v mergeVal) bool {
	mask := uint64(len(p.slots) - 1)
	for i := p.index(key); ; i = (i + 1) & mask {
		s := &p.slots[i]
		if s.key1 == 0 {
			*s = pairSlot{key + 1, v}
			return true
		}
		if s.key1 == key+1 {
			return false
		}
	}
}

func (p *pairTable) get(key uint64) (mergeVal, bool) {
	if len(p.slots) == 0 {
		return mergeVal{}, false
	}
	mask := uint64(len(p.slots) - 1)
	for i := p.index(key); ; i = (i + 1) & mask {
		s := &p.slots[i]
		if s.key1 == key+1 {
			return s.val, true
		}
		if s.key1 == 0 {
			return mergeVal{}, false
		}
	}
}

// hasNonToken reports whether some merge's result is not itself a token.
func (p *pairTable) hasNonToken() bool {
	for _, s := range p.slots {
		if s.key1 != 0 && s.val.result < 0 {
			return true
		}
	}
	return false
}
