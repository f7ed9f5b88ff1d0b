package tokenizer

import (
	"slices"
	"strings"
)

// Special-token partitioning (llama.cpp's tokenizer_st_partition): before
// the model-specific tokenizer runs, occurrences of special tokens in the
// text are cut out and emitted as single tokens. llama.cpp takes the special
// tokens one at a time, longest first, and splits every remaining text
// fragment at each leftmost non-overlapping occurrence of that token. A
// plain leftmost-longest scan is not equivalent (with tokens "ab" and "bcd",
// "abcd" must give "a" + <bcd>), so that order is kept; one trie walk over
// the text first finds which special tokens occur at all, so vocabularies
// with many special tokens cost no more than those present.

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
	frags := []fragment{{0, len(text), -1}}
	if len(t.specials) == 0 || (!parseSpecial && !t.hasUserSpecial) {
		return frags
	}
	present := t.presentSpecials(text, parseSpecial)
	if len(present) == 0 {
		return frags
	}
	var next []fragment
	for _, rank := range present {
		id := t.specials[rank]
		tokText := t.tokens[id]
		lstrip := t.attrs[id]&attrLStrip != 0
		rstrip := t.attrs[id]&attrRStrip != 0
		next = next[:0]
		for _, f := range frags {
			if f.id >= 0 {
				next = append(next, f)
				continue
			}
			lo, hi := f.start, f.end
			for {
				i := strings.Index(text[lo:hi], tokText)
				if i < 0 {
					break
				}
				m := lo + i
				left := m
				if lstrip {
					for left > lo && isCSpace(text[left-1]) {
						left--
					}
				}
				if left > lo {
					next = append(next, fragment{lo, left, -1})
				}
				next = append(next, fragment{id: id})
				lo = m + len(tokText)
				if rstrip {
					for lo < hi && isCSpace(text[lo]) {
						lo++
					}
				}
			}
			if lo < hi {
				next = append(next, fragment{lo, hi, -1})
			}
		}
		frags, next = next, frags
	}
	return frags
}

// presentSpecials returns, in priority order, the ranks of the special
// tokens that occur in text and are eligible, so that partition scans the
// text only for those.
func (t *Tokenizer) presentSpecials(text string, parseSpecial bool) []int32 {
	tr := t.trie
	seen := make(map[int32]bool)
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
				seen[r] = true
			}
		}
	}
	ranks := make([]int32, 0, len(seen))
	for r := range seen {
		ranks = append(ranks, r)
	}
	slices.Sort(ranks)
	return ranks
}
