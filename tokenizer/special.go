package tokenizer

import "sort"

// Special-token partitioning (llama.cpp's tokenizer_st_partition): before
// the model-specific tokenizer runs, occurrences of special tokens in the
// text are cut out and emitted as single tokens. llama.cpp takes the special
// tokens one at a time, longest first, and splits every remaining text
// fragment at each leftmost non-overlapping occurrence of that token. A
// plain leftmost-longest scan is not equivalent (with tokens "ab" and "bcd",
// "abcd" must give "a" + <bcd>), so this implementation finds all
// occurrences with one trie walk and then claims them in llama.cpp's order.

// fragment is a piece of the input: raw text [start, end) when id < 0,
// otherwise the special token id.
type fragment struct {
	start, end int
	id         int32
}

// specialTrie indexes the texts of the special tokens byte by byte.
type specialTrie struct {
	edges map[uint64]int32 // node<<8 | byte -> child node
	term  []int32          // node -> rank in Tokenizer.specials, or -1
	first [256]bool        // bytes that start some special token
}

func newSpecialTrie(texts []string) *specialTrie {
	tr := &specialTrie{edges: make(map[uint64]int32), term: []int32{-1}}
	for rank, s := range texts {
		node := int32(0)
		for i := 0; i < len(s); i++ {
			k := uint64(node)<<8 | uint64(s[i])
			child, ok := tr.edges[k]
			if !ok {
				child = int32(len(tr.term))
				tr.term = append(tr.term, -1)
				tr.edges[k] = child
			}
			node = child
		}
		tr.term[node] = int32(rank)
		tr.first[s[0]] = true
	}
	return tr
}

// isCSpace is C's isspace in the "C" locale, which llama.cpp uses for the
// lstrip/rstrip token attributes.
func isCSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r')
}

// partition splits text into raw fragments and special tokens. With
// parseSpecial false only user-defined tokens are recognised, as in
// llama.cpp (control and unknown tokens stay plain text).
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	whole := []fragment{{0, len(text), -1}}
	if len(t.specials) == 0 || (!parseSpecial && !t.hasUserSpecial) {
		return whole
	}

	type occurrence struct{ rank, pos int32 }
	var occ []occurrence
	tr := t.trie
	for pos := 0; pos < len(text); pos++ {
		if !tr.first[text[pos]] {
			continue
		}
		node := int32(0)
		for k := pos; k < len(text); k++ {
			child, ok := tr.edges[uint64(node)<<8|uint64(text[k])]
			if !ok {
				break
			}
			node = child
			if r := tr.term[node]; r >= 0 && (parseSpecial || t.attrs[t.specials[r]]&attrUserDefined != 0) {
				occ = append(occ, occurrence{r, int32(pos)})
			}
		}
	}
	if len(occ) == 0 {
		return whole
	}
	sort.Slice(occ, func(i, j int) bool {
		if occ[i].rank != occ[j].rank {
			return occ[i].rank < occ[j].rank
		}
		return occ[i].pos < occ[j].pos
	})

	// claimed marks bytes taken by an accepted token or removed by its
	// lstrip/rstrip attribute.
	claimed := make([]bool, len(text))
	type accepted struct {
		lo, hi int // claimed range including stripped whitespace
		id     int32
	}
	var acc []accepted
	for _, o := range occ {
		id := t.specials[o.rank]
		lo, hi := int(o.pos), int(o.pos)+len(t.tokens[id])
		free := true
		for i := lo; i < hi; i++ {
			if claimed[i] {
				free = false
				break
			}
		}
		if !free {
			continue
		}
		if t.attrs[id]&attrLStrip != 0 {
			for lo > 0 && !claimed[lo-1] && isCSpace(text[lo-1]) {
				lo--
			}
		}
		if t.attrs[id]&attrRStrip != 0 {
			for hi < len(text) && !claimed[hi] && isCSpace(text[hi]) {
				hi++
			}
		}
		for i := lo; i < hi; i++ {
			claimed[i] = true
		}
		acc = append(acc, accepted{lo, hi, id})
	}
	sort.Slice(acc, func(i, j int) bool { return acc[i].lo < acc[j].lo })

	frags := make([]fragment, 0, 2*len(acc)+1)
	prev := 0
	for _, a := range acc {
		if a.lo > prev {
			frags = append(frags, fragment{prev, a.lo, -1})
		}
		frags = append(frags, fragment{id: a.id})
		prev = a.hi
	}
	if prev < len(text) {
		frags = append(frags, fragment{prev, len(text), -1})
	}
	return frags
}
