package tokenizer

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kvgo/kvgo/gguf"
)

// Pre-tokenization splits text into words before BPE merging. llama.cpp
// describes each pre-tokenizer as a list of regular expressions applied one
// after the other: every expression splits each piece produced so far into
// its matches and the gaps between them. Two expressions (GPT-2's and Llama
// 3's) have hand-written implementations in llama.cpp; the others run through
// std::regex (ECMAScript: leftmost match, first matching alternative wins) on
// a "collapsed" text where every non-ASCII code point is replaced by a byte
// standing for its Unicode category. Go's regexp has neither lookahead nor
// these semantics, so each expression is written here as a small matcher
// that reproduces exactly what llama.cpp computes, quirks included.

// span is a half-open range of code point indices.
type span struct{ start, end int }

// splitText is the pre-tokenizer's view of one text fragment.
type splitText struct {
	cpts  []rune
	flags []cptFlags
}

// flag returns the flags of cpts[i], or 0 outside [lo, hi), mirroring
// llama.cpp's out-of-range convention in its hand-written splitters.
func (t *splitText) flag(i, lo, hi int) cptFlags {
	if i < lo || i >= hi {
		return 0
	}
	return t.flags[i]
}

// wide returns the code point as std::wregex sees it in llama.cpp: non-ASCII
// whitespace is replaced by U+000B so that \s matches it.
func (t *splitText) wide(i int) rune {
	r := t.cpts[i]
	if r > 0x7F && t.flags[i].space() {
		return '\v'
	}
	return r
}

// splitter refines one span into consecutive spans covering it.
type splitter func(t *splitText, s span, out []span) []span

// matcher returns the end of the match of an expression starting at pos
// within [pos, end), or -1.
type matcher func(t *splitText, pos, end int) int

// regexSplit turns a matcher into a splitter with std::regex_iterator
// semantics: the leftmost match is taken, the search resumes at its end,
// and the text between matches becomes pieces too.
func regexSplit(m matcher) splitter {
	return func(t *splitText, s span, out []span) []span {
		gap := s.start
		for pos := s.start; pos < s.end; {
			e := m(t, pos, s.end)
			if e <= pos {
				pos++
				continue
			}
			if pos > gap {
				out = append(out, span{gap, pos})
			}
			out = append(out, span{pos, e})
			pos, gap = e, e
		}
		if gap < s.end {
			out = append(out, span{gap, s.end})
		}
		return out
	}
}

// split applies the preset's splitters in order and returns the word
// boundaries of t. bufs are two reusable buffers; the result aliases one.
func (p *bpePreset) split(t *splitText, bufs *[2][]span) []span {
	cur, next := bufs[0][:0], bufs[1][:0]
	cur = append(cur, span{0, len(t.cpts)})
	if len(t.cpts) == 0 {
		return cur[:0]
	}
	defer func() { bufs[0], bufs[1] = cur, next }()
	for _, sp := range p.splits {
		next = next[:0]
		for _, s := range cur {
			next = sp(t, s, next)
		}
		cur, next = next, cur
	}
	return cur
}

// isCRLF reports whether r is '\r' or '\n'.
func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

// ---------------------------------------------------------------------------
// Hand-written splitters (llama.cpp unicode_regex_split_custom_*).

// splitGPT2 implements
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// as llama.cpp's hand-written version does (it differs from a true regex
// engine only in corner cases, and llama.cpp is the reference).
func splitGPT2(t *splitText, s span, out []span) []span {
	lo, hi := s.start, s.end
	cpt := func(i int) rune {
		if i < lo || i >= hi {
			return -1
		}
		return t.cpts[i]
	}
	prev := lo
	add := func(end int) int {
		n := end - prev
		if n > 0 {
			out = append(out, span{prev, end})
		}
		prev = end
		return n
	}
	for pos := lo; pos < hi; {
		c := t.cpts[pos]
		f := t.flags[pos]
		if c == '\'' && pos+1 < hi {
			n := t.cpts[pos+1]
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += add(pos + 2)
				continue
			}
			if pos+2 < hi {
				nn := t.cpts[pos+2]
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += add(pos + 3)
					continue
				}
			}
		}
		f2 := f
		if c == ' ' {
			f2 = t.flag(pos+1, lo, hi)
		}
		if f2.letter() || f2.number() || (f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f2 != 0) {
			// <space>?\p{L}+ | <space>?\p{N}+ | <space>?[^\s\p{L}\p{N}]+
			var class func(cptFlags) bool
			switch {
			case f2.letter():
				class = cptFlags.letter
			case f2.number():
				class = cptFlags.number
			default:
				class = func(f cptFlags) bool { return f&(flagWhitespace|flagLetter|flagNumber) == 0 && f != 0 }
			}
			if c == ' ' {
				pos++
			}
			for class(t.flag(pos, lo, hi)) {
				pos++
			}
			add(pos)
			continue
		}
		nws := 0
		for t.flag(pos+nws, lo, hi).space() {
			nws++
		}
		switch {
		case nws > 1 && cpt(pos+nws) != -1: // \s+(?!\S)
			pos += nws - 1
		case nws > 0: // \s+
			pos += nws
		default: // no match: a single code point
			pos++
		}
		add(pos)
	}
	return out
}

// splitLlama3 implements llama.cpp's hand-written version of
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(t *splitText, s span, out []span) []span {
	lo, hi := s.start, s.end
	cpt := func(i int) rune {
		if i < lo || i >= hi {
			return -1
		}
		return t.cpts[i]
	}
	prev := lo
	add := func(end int) int {
		n := end - prev
		if n > 0 {
			out = append(out, span{prev, end})
		}
		prev = end
		return n
	}
	lower := func(r rune) rune {
		// Only the comparison with ASCII letters matters, and no non-ASCII
		// code point lower-cases to one of s, t, r, e, v, m, l, d.
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	for pos := lo; pos < hi; {
		c := t.cpts[pos]
		f := t.flags[pos]
		if c == '\'' && pos+1 < hi {
			n := lower(t.cpts[pos+1])
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += add(pos + 2)
				continue
			}
			if pos+2 < hi {
				nn := lower(t.cpts[pos+2])
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += add(pos + 3)
					continue
				}
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !isCRLF(c) && !f.number() && (f.letter() || t.flag(pos+1, lo, hi).letter()) {
			pos++
			for t.flag(pos, lo, hi).letter() {
				pos++
			}
			add(pos)
			continue
		}
		// \p{N}{1,3}
		if f.number() {
			ini := pos
			for t.flag(pos, lo, hi).number() {
				pos++
				if pos-ini >= 3 {
					add(pos)
					ini = pos
				}
			}
			add(pos)
			continue
		}
		// <space>?[^\s\p{L}\p{N}]+[\r\n]*  (note: llama.cpp tests the
		// non-zero flags of the current code point, not of the next one)
		f2 := f
		if c == ' ' {
			f2 = t.flag(pos+1, lo, hi)
		}
		other := func(f cptFlags) bool { return f&(flagWhitespace|flagLetter|flagNumber) == 0 }
		if other(f2) && f != 0 {
			if c == ' ' {
				pos++
			}
			for other(f2) && f2 != 0 {
				pos++
				f2 = t.flag(pos, lo, hi)
			}
			for isCRLF(cpt(pos)) {
				pos++
			}
			add(pos)
			continue
		}
		nws, lastCRLF := 0, 0
		for t.flag(pos+nws, lo, hi).space() {
			if isCRLF(t.cpts[pos+nws]) {
				lastCRLF = pos + nws + 1
			}
			nws++
		}
		switch {
		case lastCRLF > 0: // \s*[\r\n]+
			pos = lastCRLF
		case nws > 1 && cpt(pos+nws) != -1: // \s+(?!\S)
			pos += nws - 1
		case nws > 0: // \s+
			pos += nws
		default:
			pos++
		}
		add(pos)
	}
	return out
}

// ---------------------------------------------------------------------------
// Matchers for the expressions llama.cpp runs through std::regex. For the
// "collapsed" ones (those using \p{..}), a non-ASCII code point matches \p{X}
// exactly when its category is X and \s exactly when it is whitespace, which
// is what flags already encode; ASCII code points match as themselves.

// runOf extends a match over code points satisfying in.
func runOf(pos, end int, in func(int) bool) int {
	for pos < end && in(pos) {
		pos++
	}
	return pos
}

// optSpaceRun matches \s?[class]+ (greedy optional whitespace first).
func optSpaceRun(t *splitText, pos, end int, in func(int) bool) int {
	if t.flags[pos].space() && pos+1 < end && in(pos+1) {
		return runOf(pos+1, end, in)
	}
	if in(pos) {
		return runOf(pos, end, in)
	}
	return -1
}

// matchCRLF matches [\r\n].
func matchCRLF(t *splitText, pos, end int) int {
	if isCRLF(t.cpts[pos]) {
		return pos + 1
	}
	return -1
}

// matchNumber matches \p{N}.
func matchNumber(t *splitText, pos, end int) int {
	if t.flags[pos].number() {
		return pos + 1
	}
	return -1
}

// matchNumbers matches \p{N}+.
func matchNumbers(t *splitText, pos, end int) int {
	if !t.flags[pos].number() {
		return -1
	}
	return runOf(pos, end, func(i int) bool { return t.flags[i].number() })
}

// matchThreeDigits matches [0-9][0-9][0-9].
func matchThreeDigits(t *splitText, pos, end int) int {
	if pos+3 > end {
		return -1
	}
	for i := pos; i < pos+3; i++ {
		if t.cpts[i] < '0' || t.cpts[i] > '9' {
			return -1
		}
	}
	return pos + 3
}

// punctPlus returns a matcher for [\p{P}<extra>]+.
func punctPlus(extra string) matcher {
	in := func(t *splitText, i int) bool {
		r := t.cpts[i]
		return t.flags[i].punct() || (r < 0x80 && strings.ContainsRune(extra, r))
	}
	return func(t *splitText, pos, end int) int {
		if !in(t, pos) {
			return -1
		}
		return runOf(pos, end, func(i int) bool { return in(t, i) })
	}
}

// matchQwen2 matches, with std::regex semantics on the collapsed text,
//
//	(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func matchQwen2(t *splitText, pos, end int) int {
	c, f := t.cpts[pos], t.flags[pos]
	if e := matchContraction(t, pos, end); e > 0 {
		return e
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	letter := func(i int) bool { return t.flags[i].letter() }
	if !isCRLF(c) && !f.letter() && !f.number() && pos+1 < end && letter(pos+1) {
		return runOf(pos+1, end, letter)
	}
	if f.letter() {
		return runOf(pos, end, letter)
	}
	if f.number() { // \p{N}
		return pos + 1
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	other := func(i int) bool { return t.flags[i]&(flagWhitespace|flagLetter|flagNumber) == 0 }
	q := -1
	if c == ' ' && pos+1 < end && other(pos+1) {
		q = pos + 1
	} else if other(pos) {
		q = pos
	}
	if q >= 0 {
		q = runOf(q, end, other)
		return runOf(q, end, func(i int) bool { return isCRLF(t.cpts[i]) })
	}
	return matchSpaces(t, pos, end)
}

// matchContraction matches (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]).
func matchContraction(t *splitText, pos, end int) int {
	if t.cpts[pos] != '\'' || pos+1 >= end {
		return -1
	}
	lower := func(i int) rune {
		if i >= end {
			return -1
		}
		r := t.cpts[i]
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	switch n := lower(pos + 1); n {
	case 's', 't', 'm', 'd':
		return pos + 2
	case 'r', 'v':
		if lower(pos+2) == 'e' {
			return pos + 3
		}
	case 'l':
		if lower(pos+2) == 'l' {
			return pos + 3
		}
	}
	return -1
}

// matchSpaces matches \s*[\r\n]+|\s+(?!\S)|\s+ at pos.
func matchSpaces(t *splitText, pos, end int) int {
	q, lastCRLF := pos, -1
	for q < end && t.flags[q].space() {
		if isCRLF(t.cpts[q]) {
			lastCRLF = q
		}
		q++
	}
	switch {
	case lastCRLF >= 0: // \s*[\r\n]+ backtracks to the last line break
		return lastCRLF + 1
	case q == pos:
		return -1
	case q == end: // \s+(?!\S) at the end of the piece
		return q
	case q-pos >= 2: // \s+(?!\S) leaves the last space for the next word
		return q - 1
	}
	return q // \s+
}

// inRanges reports whether r lies in one of the sorted ranges.
func inRanges(rs [][2]rune, r rune) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i][1] >= r })
	return i < len(rs) && rs[i][0] <= r
}

// wideClassRun returns a matcher for [ranges]+ evaluated on the std::wregex
// view of the text.
func wideClassRun(rs [][2]rune, optSpace bool) matcher {
	return func(t *splitText, pos, end int) int {
		in := func(i int) bool { return inRanges(rs, t.wide(i)) }
		if optSpace {
			return optSpaceRun(t, pos, end, in)
		}
		if !in(pos) {
			return -1
		}
		return runOf(pos, end, in)
	}
}

// splitTrailingSpace implements \s+$ (std::regex, no multiline): the
// maximal run of whitespace at the end of the piece is split off.
func splitTrailingSpace(t *splitText, s span, out []span) []span {
	q := s.end
	for q > s.start && t.flags[q-1].space() {
		q--
	}
	if q > s.start {
		out = append(out, span{s.start, q})
	}
	if q < s.end {
		out = append(out, span{q, s.end})
	}
	return out
}

// deepseekLetters is the letter class of DeepSeek LLM's pre-tokenizer
// (\s?[A-Za-zµÀ-ÖØ-öø-ƺ...]+ in its tokenizer.json), as code point ranges.
var deepseekLetters = [][2]rune{
	{0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6}, {0x00D8, 0x00F6}, {0x00F8, 0x01BA},
	{0x01BC, 0x01BF}, {0x01C4, 0x0293}, {0x0295, 0x02AF}, {0x0370, 0x0373}, {0x0376, 0x0377}, {0x037B, 0x037D},
	{0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A}, {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03F5},
	{0x03F7, 0x0481}, {0x048A, 0x052F}, {0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD},
	{0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
	{0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
	{0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4},
	{0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
	{0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124},
	{0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
	{0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
	{0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E},
	{0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
	{0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
}

// deepseekPunct is [!-/:-~！-／：-～‘-‟　-。].
var deepseekPunct = [][2]rune{
	{0x21, 0x2F}, {0x3A, 0x7E}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
}

// deepseekCJK is [一-龥ࠀ-一가-퟿] (the first two ranges overlap at U+4E00).
var deepseekCJK = [][2]rune{{0x0800, 0x9FA5}, {0xAC00, 0xD7FF}}

// bloomWord matches ` ?[^(\s|.,!?…。，、।۔،)]+` (BLOOM, Poro, Viking,
// GPT-3 Finnish) on the std::wregex view of the text.
func bloomWord(t *splitText, pos, end int) int {
	in := func(i int) bool {
		switch r := t.wide(i); r {
		case '(', ')', '|', '.', ',', '!', '?', '…', '。', '，', '、', '।', '۔', '،':
			return false
		}
		return !t.flags[i].space()
	}
	if t.cpts[pos] == ' ' && pos+1 < end && in(pos+1) {
		return runOf(pos+1, end, in)
	}
	if in(pos) {
		return runOf(pos, end, in)
	}
	return -1
}

// ---------------------------------------------------------------------------
// Pre-tokenizer table.

// bpePreset describes how llama.cpp configures a BPE vocabulary for one
// tokenizer.ggml.pre value.
type bpePreset struct {
	splits       []splitter
	ignoreMerges bool // look whole words up before merging (Llama 3)
	addBOS       bool // default for add_bos_token
	cleanSpaces  bool // clean_up_tokenization_spaces when detokenizing
	noBOS        bool // the BOS id defaults to none
}

var (
	gpt2Splits      = []splitter{splitGPT2}
	llama3Splits    = []splitter{splitLlama3}
	qwen2Splits     = []splitter{regexSplit(matchQwen2)}
	starcoderSplits = []splitter{regexSplit(matchNumber), splitGPT2}
	falconSplits    = []splitter{regexSplit(punctPlus("$+<=>^~|`")), splitGPT2, regexSplit(matchThreeDigits)}
	defaultSplits   = []splitter{regexSplit(punctPlus("$+<=>^~|")), splitGPT2, regexSplit(matchNumbers), regexSplit(matchThreeDigits)}
	deepseekLLM     = []splitter{
		regexSplit(matchCRLF),
		regexSplit(wideClassRun(deepseekLetters, true)),
		regexSplit(wideClassRun(deepseekPunct, true)),
		splitTrailingSpace,
		regexSplit(wideClassRun(deepseekCJK, false)),
		regexSplit(matchNumbers),
	}
	deepseekCoder = []splitter{
		regexSplit(matchCRLF),
		regexSplit(func(t *splitText, pos, end int) int {
			return optSpaceRun(t, pos, end, func(i int) bool { return t.flags[i].letter() })
		}),
		regexSplit(func(t *splitText, pos, end int) int {
			return optSpaceRun(t, pos, end, func(i int) bool { return t.flags[i].punct() })
		}),
		regexSplit(wideClassRun(deepseekCJK, false)),
		regexSplit(matchNumber),
	}
	bloomSplits  = []splitter{regexSplit(bloomWord)}
	vikingSplits = []splitter{regexSplit(bloomWord), regexSplit(matchNumber)}
)

// bpePresets maps tokenizer.ggml.pre to its configuration, following
// llama.cpp's llama_vocab::impl::load and llm_tokenizer_bpe.
var bpePresets = map[string]bpePreset{
	"default":          {splits: defaultSplits, cleanSpaces: true},
	"llama3":           {splits: llama3Splits, ignoreMerges: true, addBOS: true, cleanSpaces: true},
	"llama-v3":         {splits: llama3Splits, ignoreMerges: true, addBOS: true, cleanSpaces: true},
	"llama-bpe":        {splits: llama3Splits, ignoreMerges: true, addBOS: true, cleanSpaces: true},
	"falcon3":          {splits: llama3Splits, ignoreMerges: true, addBOS: true, cleanSpaces: true},
	"dbrx":             {splits: llama3Splits, cleanSpaces: true},
	"smaug-bpe":        {splits: llama3Splits, cleanSpaces: true},
	"chatglm-bpe":      {splits: llama3Splits, cleanSpaces: true, noBOS: true},
	"deepseek-llm":     {splits: deepseekLLM},
	"deepseek-coder":   {splits: deepseekCoder},
	"falcon":           {splits: falconSplits, cleanSpaces: true},
	"mpt":              {splits: gpt2Splits, cleanSpaces: true},
	"olmo":             {splits: gpt2Splits, cleanSpaces: true},
	"jais":             {splits: gpt2Splits, cleanSpaces: true},
	"gpt-2":            {splits: gpt2Splits, cleanSpaces: true},
	"phi-2":            {splits: gpt2Splits, cleanSpaces: true},
	"jina-es":          {splits: gpt2Splits, cleanSpaces: true},
	"jina-de":          {splits: gpt2Splits, cleanSpaces: true},
	"gigachat":         {splits: gpt2Splits, cleanSpaces: true},
	"jina-v1-en":       {splits: gpt2Splits, cleanSpaces: true},
	"jina-v2-es":       {splits: gpt2Splits, cleanSpaces: true},
	"jina-v2-de":       {splits: gpt2Splits, cleanSpaces: true},
	"jina-v2-code":     {splits: gpt2Splits, cleanSpaces: true},
	"roberta-bpe":      {splits: gpt2Splits, cleanSpaces: true},
	"starcoder":        {splits: starcoderSplits, cleanSpaces: true},
	"refact":           {splits: starcoderSplits, cleanSpaces: true},
	"command-r":        {splits: starcoderSplits},
	"smollm":           {splits: starcoderSplits},
	"codeshell":        {splits: starcoderSplits, cleanSpaces: true},
	"exaone":           {splits: starcoderSplits, cleanSpaces: true},
	"minerva-7b":       {splits: starcoderSplits, cleanSpaces: true},
	"qwen2":            {splits: qwen2Splits},
	"deepseek-r1-qwen": {splits: qwen2Splits},
	"megrez":           {splits: qwen2Splits, cleanSpaces: true},
	"stablelm2":        {splits: qwen2Splits, cleanSpaces: true},
	"poro-chat":        {splits: bloomSplits},
	"bloom":            {splits: bloomSplits, cleanSpaces: true},
	"gpt3-finnish":     {splits: bloomSplits, cleanSpaces: true},
	"viking":           {splits: vikingSplits},
}

// supportedPres lists the accepted tokenizer.ggml.pre values for error
// messages.
func supportedPres() string {
	names := make([]string, 0, len(bpePresets))
	for k := range bpePresets {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// lookupPreset returns the configuration for a pre-tokenizer name; an empty
// name means llama.cpp's "default" (GPT-NeoX style) pre-tokenizer.
func lookupPreset(pre string) (bpePreset, error) {
	if pre == "" {
		pre = "default"
	}
	p, ok := bpePresets[pre]
	if !ok {
		return p, fmt.Errorf("tokenizer: unsupported pre-tokenizer tokenizer.ggml.pre = %s (supported: %s)", gguf.Quote(pre), supportedPres())
	}
	return p, nil
}
