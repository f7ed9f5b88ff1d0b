package tokenizer

import (
	"sort"
	"sync"
	"unicode"
)

// cptFlags classifies a code point the way llama.cpp's unicode tables do:
// exactly one general-category bit (or flagUndefined for unassigned code
// points) plus flagWhitespace for the Unicode White_Space property. The
// pre-tokenizers only ever ask these questions, so one small bit set per code
// point is all the state they need.
type cptFlags uint16

const (
	flagUndefined cptFlags = 1 << iota // Cn
	flagNumber                         // \p{N}
	flagLetter                         // \p{L}
	flagSeparator                      // \p{Z}
	flagMark                           // \p{M}
	flagPunct                          // \p{P}
	flagSymbol                         // \p{S}
	flagControl                        // \p{C}: Cc, Cf, Co, Cs
	flagWhitespace
)

func (f cptFlags) letter() bool { return f&flagLetter != 0 }
func (f cptFlags) number() bool { return f&flagNumber != 0 }
func (f cptFlags) space() bool  { return f&flagWhitespace != 0 }
func (f cptFlags) punct() bool  { return f&flagPunct != 0 }

// cptRange is one run of code points sharing a category flag.
type cptRange struct {
	lo, hi rune
	flags  cptFlags
}

// unicode151 lists the code points assigned in Unicode 15.1, which llama.cpp
// c392e509's tables include but Go's unicode package (Unicode 15.0) does not.
// They are consulted only for code points Go considers unassigned, so a later
// Go release that knows them changes nothing.
var unicode151 = []cptRange{
	{0x2FFC, 0x2FFF, flagSymbol},   // ideographic description characters
	{0x31EF, 0x31EF, flagSymbol},   // CJK stroke
	{0x2EBF0, 0x2EE5D, flagLetter}, // CJK Unified Ideographs Extension I
}

// categoryRanges returns all assigned code points above ASCII as sorted,
// disjoint ranges. It is built once from Go's category tables so that a
// lookup costs one binary search instead of one search per category.
var categoryRanges = sync.OnceValue(func() []cptRange {
	tables := []struct {
		t *unicode.RangeTable
		f cptFlags
	}{
		{unicode.L, flagLetter},
		{unicode.M, flagMark},
		{unicode.N, flagNumber},
		{unicode.P, flagPunct},
		{unicode.S, flagSymbol},
		{unicode.Z, flagSeparator},
		{unicode.C, flagControl},
	}
	var out []cptRange
	add := func(lo, hi, stride uint32, f cptFlags) {
		if stride == 1 {
			out = append(out, cptRange{rune(lo), rune(hi), f})
			return
		}
		for r := lo; r <= hi; r += stride {
			out = append(out, cptRange{rune(r), rune(r), f})
		}
	}
	for _, tb := range tables {
		for _, r := range tb.t.R16 {
			add(uint32(r.Lo), uint32(r.Hi), uint32(r.Stride), tb.f)
		}
		for _, r := range tb.t.R32 {
			add(r.Lo, r.Hi, r.Stride, tb.f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo < out[j].lo })
	return out
})

// asciiFlags holds the flags of code points below 128.
var asciiFlags = func() (t [128]cptFlags) {
	for r := rune(0); r < 128; r++ {
		t[r] = lookupFlags(r)
	}
	return t
}()

// flagsOf returns llama.cpp's flags for code point r.
func flagsOf(r rune) cptFlags {
	if r >= 0 && r < 128 {
		return asciiFlags[r]
	}
	return lookupFlags(r)
}

func lookupFlags(r rune) cptFlags {
	f := categoryOf(r)
	if isWhiteSpace(r) {
		f |= flagWhitespace
	}
	return f
}

func categoryOf(r rune) cptFlags {
	if r < 128 {
		// The category tables are complete for ASCII; avoid the Once during
		// package initialisation.
		switch {
		case unicode.IsLetter(r):
			return flagLetter
		case unicode.IsNumber(r):
			return flagNumber
		case unicode.IsPunct(r):
			return flagPunct
		case unicode.IsSymbol(r):
			return flagSymbol
		case r == ' ':
			return flagSeparator
		default:
			return flagControl
		}
	}
	if f, ok := searchRanges(categoryRanges(), r); ok {
		return f
	}
	if f, ok := searchRanges(unicode151, r); ok {
		return f
	}
	return flagUndefined
}

func searchRanges(rs []cptRange, r rune) (cptFlags, bool) {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= r })
	if i < len(rs) && rs[i].lo <= r {
		return rs[i].flags, true
	}
	return 0, false
}

// isWhiteSpace reports the Unicode White_Space property, the set llama.cpp
// uses for \s in its hand-written splitters.
func isWhiteSpace(r rune) bool {
	switch {
	case r == ' ' || (r >= '\t' && r <= '\r'):
		return true
	case r < 0x85:
		return false
	}
	return unicode.Is(unicode.White_Space, r)
}

// runeError is what llama.cpp substitutes for each byte it cannot decode.
const runeError = 0xFFFD

// decodeCpt decodes the code point at s[i:] the way llama.cpp's
// unicode_cpt_from_utf8 does, which is more permissive than Go's decoder:
// overlong forms and surrogates are accepted and only the lead byte and the
// presence of continuation bytes are checked. An invalid sequence yields
// U+FFFD and consumes one byte. Values above U+10FFFF (which would make
// llama.cpp throw later on) are treated as invalid too.
func decodeCpt(s string, i int) (rune, int) {
	b := s[i]
	n := len(s) - i
	cont := func(k int) bool { return k < n && s[i+k]&0xC0 == 0x80 }
	switch {
	case b < 0x80:
		return rune(b), 1
	case b&0x40 == 0:
		return runeError, 1
	case b&0x20 == 0:
		if !cont(1) {
			return runeError, 1
		}
		return rune(b&0x1F)<<6 | rune(s[i+1]&0x3F), 2
	case b&0x10 == 0:
		if !cont(1) || !cont(2) {
			return runeError, 1
		}
		return rune(b&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
	case b&0x08 == 0:
		if !cont(1) || !cont(2) || !cont(3) {
			return runeError, 1
		}
		r := rune(b&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F)
		if r > 0x10FFFF {
			return runeError, 1
		}
		return r, 4
	}
	return runeError, 1
}

// decodeCpts splits s into code points with decodeCpt.
func decodeCpts(s string, dst []rune) []rune {
	dst = dst[:0]
	for i := 0; i < len(s); {
		r, n := decodeCpt(s, i)
		dst = append(dst, r)
		i += n
	}
	return dst
}

// appendCpt encodes r as UTF-8 without Go's validity checks, so surrogates
// decoded by decodeCpt round-trip to the same bytes as in llama.cpp.
func appendCpt(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
	return append(dst, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
}

// utf8Len is llama.cpp's unicode_len_utf8: the sequence length announced by
// a lead byte, with continuation bytes counting as length 1.
func utf8Len(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}
