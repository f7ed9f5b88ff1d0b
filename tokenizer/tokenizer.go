// Package tokenizer turns text into token ids and back for the vocabularies
// stored in GGUF files, reproducing llama.cpp (commit c392e509) exactly:
// SentencePiece-style BPE (tokenizer.ggml.model = "llama") and byte-level
// BPE (tokenizer.ggml.model = "gpt2") with llama.cpp's pre-tokenizers,
// special-token parsing, BOS/EOS handling and detokenization rules.
// Exactness is the point: a model only behaves as evaluated when it sees the
// ids llama.cpp would have given it, quirks included.
//
// Byte-level BPE pre-tokenizers (tokenizer.ggml.pre) include llama-bpe
// (Llama 3), qwen2, gpt-2, deepseek-llm, deepseek-coder, falcon, mpt,
// starcoder, refact, the GPT-NeoX default (key absent) and the aliases
// llama.cpp maps onto them; any other value is an error rather than a
// silent fallback, because a wrong split changes the ids.
//
// Known differences from llama.cpp, all in situations where llama.cpp's
// own result is arbitrary or a crash: when several tokens could be the EOT
// token by text, the first of llama.cpp's list wins (llama.cpp uses hash
// order); special tokens of equal length are tried in id order (llama.cpp's
// sort is unstable); a missing byte-fallback token yields the unknown token
// (llama.cpp throws); 4-byte sequences above U+10FFFF decode as U+FFFD per
// byte (llama.cpp throws); BOS/EOS ids beyond the vocabulary are load errors
// (llama.cpp warns and keeps its defaults). BERT (WordPiece), T5 (Unigram)
// and RWKV vocabularies are not supported.
//
// A Tokenizer is immutable after FromGGUF and safe for concurrent use.
package tokenizer

// vocabKind is the tokenization algorithm.
type vocabKind uint8

const (
	kindSPM vocabKind = iota // tokenizer.ggml.model = "llama"
	kindBPE                  // tokenizer.ggml.model = "gpt2"
)

// tokenAttr mirrors llama.cpp's llama_token_attr bits.
type tokenAttr uint16

const (
	attrUndefined   tokenAttr = 0
	attrUnknown     tokenAttr = 1 << 0
	attrUnused      tokenAttr = 1 << 1
	attrNormal      tokenAttr = 1 << 2
	attrControl     tokenAttr = 1 << 3
	attrUserDefined tokenAttr = 1 << 4
	attrByte        tokenAttr = 1 << 5
	attrLStrip      tokenAttr = 1 << 7
	attrRStrip      tokenAttr = 1 << 8
)

// GGUF token types (tokenizer.ggml.token_type).
const (
	typeUndefined   = 0
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

func attrOfType(t int32) tokenAttr {
	switch t {
	case typeNormal:
		return attrNormal
	case typeUnknown:
		return attrUnknown
	case typeControl:
		return attrControl
	case typeUserDefined:
		return attrUserDefined
	case typeUnused:
		return attrUnused
	case typeByte:
		return attrByte
	}
	return attrUndefined
}

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	kind  vocabKind
	model string
	pre   string

	tokens []string
	scores []float32
	attrs  []tokenAttr
	toID   map[string]int32

	bos, eos, eot, eom, unk, pad int
	addBOS, addEOS               bool
	addSpacePrefix               bool
	cleanSpaces                  bool
	eog                          map[int]bool
	fim                          fimIDs

	// specials lists the ids partition looks for, longest text first.
	specials       []int32
	hasUserSpecial bool
	trie           *specialTrie

	// SPM: byte fallback token of each byte value (-1 if none).
	spmByte [256]int32

	// BPE.
	preset     bpePreset
	merges     pairTable
	bpeByte    [256]int32 // token of the GPT-2 character of each byte
	singleByte [256]int32 // token whose text is exactly that one byte

	pieceBuf []byte
	pieceOff []uint32

	// cover is the most input bytes one token can stand for, and
	// weight[b] what byte b counts for in MinTokens, in quarters (0 for a
	// byte that may yield no token); see MinTokens.
	cover  int
	weight [256]uint8
}

// MinTokens is a lower bound of the number of tokens Encode gives for
// text (BOS and EOS not counted), found in one pass without allocating,
// so that a caller can refuse a text too long for its context before
// paying for its tokenization. No token stands for more input bytes than
// the longest token text (an SPM space is 3 bytes of text, a byte-level
// BPE byte 1 or 2, a byte-fallback token 6). Bytes that may yield no
// token are not counted: bytes without a byte token (llama.cpp drops
// them), whitespace next to a special token that strips it (lstrip,
// rstrip), and in byte-level BPE non-ASCII bytes count a quarter, as an
// overlong UTF-8 form of up to 4 bytes is encoded as one code point.
func (t *Tokenizer) MinTokens(text string) int {
	if t.cover == 0 {
		return 0
	}
	var q int
	for i := 0; i < len(text); i++ {
		q += int(t.weight[text[i]])
	}
	n := q / 4
	return (n + t.cover - 1) / t.cover
}

// buildCover sets what MinTokens needs.
func (t *Tokenizer) buildCover() {
	strip := false
	for id, s := range t.tokens {
		t.cover = max(t.cover, len(s))
		if t.attrs[id]&(attrLStrip|attrRStrip) != 0 {
			strip = true
		}
	}
	complete := true
	for b := range 256 {
		switch {
		case t.kind == kindSPM && t.spmByte[b] >= 0:
			t.weight[b] = 4
		case t.kind == kindBPE && t.bpeByte[b] >= 0:
			t.weight[b] = 4
			if b >= 0x80 {
				t.weight[b] = 1
			}
		default:
			complete = false
		}
		if strip && isCSpace(byte(b)) {
			t.weight[b] = 0
		}
	}
	if t.kind == kindBPE && !complete {
		// A word holding a byte without a token may drop others: count
		// ASCII bytes only, which never share a code point with one.
		for b := 0x80; b < 256; b++ {
			t.weight[b] = 0
		}
	}
	if t.kind == kindBPE && t.merges.hasNonToken() {
		// A merge whose result is no token falls back to one-byte tokens
		// that may be missing.
		t.cover = 0
	}
}

// Encode tokenizes text like llama_tokenize(text, addSpecial, parseSpecial).
// With addSpecial, BOS and EOS are added as the vocabulary's metadata says
// (AddBOS, AddEOS). With parseSpecial, the texts of control tokens such as
// "<s>" or "<|eot_id|>" in text become those tokens; user-defined tokens are
// always recognised, as in llama.cpp. Invalid UTF-8 never fails: SPM falls
// back to byte tokens and byte-level BPE sees U+FFFD, like llama.cpp.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int {
	frags := t.partition(text, parseSpecial)
	out := make([]int, 0, len(text)/3+4)
	if addSpecial && t.AddBOS() {
		out = append(out, t.bos)
	}
	switch t.kind {
	case kindSPM:
		var sc spmScratch
		prevSpecial := true // the first fragment gets the dummy prefix
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, int(f.id))
				prevSpecial = true
				continue
			}
			s := escapeSPM(text[f.start:f.end], t.addSpacePrefix && prevSpecial)
			out = t.encodeSPM(s, &sc, out)
			prevSpecial = false
		}
	case kindBPE:
		var sc bpeScratch
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, int(f.id))
				continue
			}
			out = t.encodeBPE(text[f.start:f.end], &sc, out)
		}
	}
	if addSpecial && t.AddEOS() {
		out = append(out, t.eos)
	}
	return out
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence token, or -1.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence token, or -1.
func (t *Tokenizer) EOS() int { return t.eos }

// EOT is the end-of-turn token (tokenizer.ggml.eot_token_id, or found by
// its text as llama.cpp does: <|eot_id|>, <|im_end|>, ...), or -1.
func (t *Tokenizer) EOT() int { return t.eot }

// PAD is the padding token, or -1.
func (t *Tokenizer) PAD() int { return t.pad }

// UNK is the unknown token, or -1.
func (t *Tokenizer) UNK() int { return t.unk }

// AddBOS reports whether Encode with addSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS && t.bos >= 0 }

// AddEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS && t.eos >= 0 }

// IsEOG reports whether id ends generation: EOS, EOT, EOM and the tokens
// llama.cpp recognises by their text (<|eot_id|>, <|im_end|>, <|end|>,
// <end_of_turn>, <|endoftext|>, <|eom_id|>, <EOT>, FIM pad/repo/file
// separators).
func (t *Tokenizer) IsEOG(id int) bool { return t.eog[id] }

// Model is tokenizer.ggml.model: "llama" or "gpt2".
func (t *Tokenizer) Model() string { return t.model }

// Pre is tokenizer.ggml.pre as stored (empty if absent).
func (t *Tokenizer) Pre() string { return t.pre }

// TokenText is the vocabulary string of id (SPM pieces contain U+2581 for
// spaces, byte-level BPE tokens are in GPT-2's byte alphabet), or "" for an
// out-of-range id.
func (t *Tokenizer) TokenText(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// IsControl reports whether id is a control token (BOS, EOS, chat markers).
func (t *Tokenizer) IsControl(id int) bool {
	return id >= 0 && id < len(t.tokens) && t.attrs[id]&attrControl != 0
}
