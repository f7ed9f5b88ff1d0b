package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/kvgo/kvgo/gguf"
)

// GGUF metadata keys read by the loader.
const (
	keyModel          = "tokenizer.ggml.model"
	keyPre            = "tokenizer.ggml.pre"
	keyTokens         = "tokenizer.ggml.tokens"
	keyScores         = "tokenizer.ggml.scores"
	keyTokenType      = "tokenizer.ggml.token_type"
	keyMerges         = "tokenizer.ggml.merges"
	keyBOS            = "tokenizer.ggml.bos_token_id"
	keyEOS            = "tokenizer.ggml.eos_token_id"
	keyEOT            = "tokenizer.ggml.eot_token_id"
	keyEOM            = "tokenizer.ggml.eom_token_id"
	keyUNK            = "tokenizer.ggml.unknown_token_id"
	keyPAD            = "tokenizer.ggml.padding_token_id"
	keyFIMPre         = "tokenizer.ggml.fim_pre_token_id"
	keyFIMSuf         = "tokenizer.ggml.fim_suf_token_id"
	keyFIMMid         = "tokenizer.ggml.fim_mid_token_id"
	keyFIMPad         = "tokenizer.ggml.fim_pad_token_id"
	keyFIMRep         = "tokenizer.ggml.fim_rep_token_id"
	keyFIMSep         = "tokenizer.ggml.fim_sep_token_id"
	keyPrefixOld      = "tokenizer.ggml.prefix_token_id"
	keySuffixOld      = "tokenizer.ggml.suffix_token_id"
	keyMiddleOld      = "tokenizer.ggml.middle_token_id"
	keyAddBOS         = "tokenizer.ggml.add_bos_token"
	keyAddEOS         = "tokenizer.ggml.add_eos_token"
	keyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
	keyName           = "general.name"
)

// metadata is the part of *gguf.File the loader uses; an interface so that
// the loader does not depend on how the file was opened.
type metadata interface {
	Has(key string) bool
	String(key string) (string, error)
	Uint(key string) (uint64, error)
	Int(key string) (int64, error)
	Bool(key string) (bool, error)
	Strings(key string) ([]string, error)
	Float32s(key string) ([]float32, error)
	Int32s(key string) ([]int32, error)
}

var _ metadata = (*gguf.File)(nil)

// FromGGUF builds the tokenizer described by the tokenizer.ggml.* metadata
// of f. It copies what it needs, so f may be closed afterwards.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	if f == nil {
		return nil, errors.New("tokenizer: nil GGUF file")
	}
	return load(f)
}

func load(md metadata) (*Tokenizer, error) {
	if !md.Has(keyModel) {
		return nil, fmt.Errorf("tokenizer: metadata has no %s (the file carries no vocabulary)", keyModel)
	}
	model, err := md.String(keyModel)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t := &Tokenizer{model: model, eot: -1, eom: -1, pad: -1}
	if md.Has(keyPre) {
		if t.pre, err = md.String(keyPre); err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}

	// Defaults per model type, as llama.cpp's llama_vocab::impl::load.
	switch model {
	case "llama":
		t.kind = kindSPM
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addSpacePrefix, t.addBOS = true, true
	case "gpt2":
		t.kind = kindBPE
		t.bos, t.eos, t.unk = 11, 11, -1
		if t.preset, err = lookupPreset(t.pre); err != nil {
			return nil, err
		}
		t.addBOS = t.preset.addBOS
		t.cleanSpaces = t.preset.cleanSpaces
		if t.preset.noBOS {
			t.bos = -1
		}
	case "bert", "t5", "rwkv", "no_vocab", "none":
		return nil, fmt.Errorf("tokenizer: %s = %s is not supported (supported: llama, gpt2)", keyModel, gguf.Quote(model))
	default:
		return nil, fmt.Errorf("tokenizer: unknown %s = %s (supported: llama, gpt2)", keyModel, gguf.Quote(model))
	}
	if err := optBool(md, keyAddSpacePrefix, &t.addSpacePrefix); err != nil {
		return nil, err
	}

	if err := t.loadTokens(md); err != nil {
		return nil, err
	}
	if t.kind == kindBPE {
		if err := t.loadMerges(md); err != nil {
			return nil, err
		}
	}
	if err := t.loadSpecialIDs(md); err != nil {
		return nil, err
	}
	if err := optBool(md, keyAddBOS, &t.addBOS); err != nil {
		return nil, err
	}
	if err := optBool(md, keyAddEOS, &t.addEOS); err != nil {
		return nil, err
	}
	t.buildSpecials(md)
	t.buildByteTables()
	t.buildPieces()
	t.buildCover()
	return t, nil
}

func optBool(md metadata, key string, dst *bool) error {
	if !md.Has(key) {
		return nil
	}
	v, err := md.Bool(key)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	*dst = v
	return nil
}

// loadTokens reads the token strings, scores and types.
func (t *Tokenizer) loadTokens(md metadata) error {
	if !md.Has(keyTokens) {
		return fmt.Errorf("tokenizer: metadata has no %s", keyTokens)
	}
	tokens, err := md.Strings(keyTokens)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	n := len(tokens)
	if n == 0 {
		return fmt.Errorf("tokenizer: %s is empty", keyTokens)
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("tokenizer: %d tokens is too many", n)
	}
	t.scores = make([]float32, n)
	if md.Has(keyScores) {
		s, err := md.Float32s(keyScores)
		if err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
		if len(s) != n {
			return fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyScores, len(s), n)
		}
		copy(t.scores, s)
	}
	t.attrs = make([]tokenAttr, n)
	if md.Has(keyTokenType) {
		types, err := md.Int32s(keyTokenType)
		if err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
		if len(types) != n {
			return fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyTokenType, len(types), n)
		}
		for i, ty := range types {
			t.attrs[i] = attrOfType(ty)
		}
	} else {
		for i := range t.attrs {
			t.attrs[i] = attrNormal
		}
	}

	t.tokens = make([]string, n)
	t.toID = make(map[string]int32, n)
	for i, s := range tokens {
		if s == "" {
			// llama.cpp renames empty tokens so that they stay unique.
			s = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		if prev, dup := t.toID[s]; dup {
			return fmt.Errorf("tokenizer: tokens %d and %d are both %s", prev, i, gguf.Quote(s))
		}
		t.tokens[i] = s
		t.toID[s] = int32(i)
	}
	return nil
}

// loadMerges reads tokenizer.ggml.merges ("left right" per entry, rank =
// position) into a map keyed by the pair of token ids.
func (t *Tokenizer) loadMerges(md metadata) error {
	if !md.Has(keyMerges) {
		return fmt.Errorf("tokenizer: byte-level BPE vocabulary without %s", keyMerges)
	}
	merges, err := md.Strings(keyMerges)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	if len(merges) > math.MaxInt32 {
		return fmt.Errorf("tokenizer: %d merges is too many", len(merges))
	}
	// Resolving the strings is the expensive part (three hash lookups per
	// merge, each a cache miss on a vocabulary of 100k+ tokens), so it is
	// spread over the available cores; the map is then filled in rank order.
	parts := make([]mergeParts, len(merges))
	workers := min(runtime.GOMAXPROCS(0), 4, len(merges)/4096+1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(merges)/workers, (w+1)*len(merges)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = t.resolveMerges(merges[lo:hi], parts[lo:hi], lo)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the lowest-ranked bad merge
		}
	}
	t.merges = newPairTable(len(merges))
	for rank, p := range parts {
		// A repeated pair keeps its first (lowest) rank, as with emplace.
		t.merges.insert(mergeKey(p.left, p.right), mergeVal{rank: int32(rank), result: p.result})
	}
	return nil
}

// mergeParts is one merge resolved to token ids.
type mergeParts struct{ left, right, result int32 }

// resolveMerges looks up the tokens of merges (whose first rank is base).
func (t *Tokenizer) resolveMerges(merges []string, out []mergeParts, base int) error {
	var buf []byte
	for i, m := range merges {
		rank := base + i
		// llama.cpp splits at the first space after the first byte, so a
		// left part may itself start with a space.
		sep := -1
		if len(m) > 1 {
			if i := strings.IndexByte(m[1:], ' '); i >= 0 {
				sep = i + 1
			}
		}
		if sep < 0 {
			return fmt.Errorf("tokenizer: merge %d (%s) is not two tokens separated by a space", rank, gguf.Quote(m))
		}
		left, right := m[:sep], m[sep+1:]
		lid, ok := t.toID[left]
		if !ok {
			return fmt.Errorf("tokenizer: merge %d (%s) references unknown token %s", rank, gguf.Quote(m), gguf.Quote(left))
		}
		rid, ok := t.toID[right]
		if !ok {
			return fmt.Errorf("tokenizer: merge %d (%s) references unknown token %s", rank, gguf.Quote(m), gguf.Quote(right))
		}
		buf = append(append(buf[:0], left...), right...)
		res, ok := t.toID[string(buf)]
		if !ok {
			res = -1 // llama.cpp merges it anyway; the result falls back to bytes
		}
		out[i] = mergeParts{lid, rid, res}
	}
	return nil
}

// readID reads an optional token id. Absent keys and values that are
// negative or do not fit a token id leave *dst unchanged, as llama.cpp does
// (it warns about "bad special token" and keeps its default), except for BOS
// and EOS where a value beyond the vocabulary is reported as an error; the
// all-ones "none" markers (0xFFFFFFFF, -1) are still accepted there.
func (t *Tokenizer) readID(md metadata, key string, dst *int, strict bool) error {
	if !md.Has(key) {
		return nil
	}
	v, err := md.Uint(key)
	if err != nil {
		if i, ierr := md.Int(key); ierr == nil && i < 0 {
			return nil // negative: "none", keep the default
		}
		return fmt.Errorf("tokenizer: %w", err)
	}
	if v >= uint64(len(t.tokens)) {
		if strict && v != math.MaxUint32 && v != math.MaxUint64 {
			return fmt.Errorf("tokenizer: %s = %d is out of range for %d tokens", key, v, len(t.tokens))
		}
		return nil
	}
	*dst = int(v)
	return nil
}

// fimIDs holds the fill-in-the-middle ids; only their effect on token
// attributes and end-of-generation matters to this package.
type fimIDs struct{ pre, suf, mid, pad, rep, sep int }

// loadSpecialIDs reads the special token ids given in the metadata.
func (t *Tokenizer) loadSpecialIDs(md metadata) error {
	if t.bos >= len(t.tokens) {
		t.bos = -1
	}
	if t.eos >= len(t.tokens) {
		t.eos = -1
	}
	if t.unk >= len(t.tokens) {
		t.unk = -1
	}
	t.fim = fimIDs{-1, -1, -1, -1, -1, -1}
	ids := []struct {
		key    string
		dst    *int
		strict bool
	}{
		{keyBOS, &t.bos, true},
		{keyEOS, &t.eos, true},
		{keyEOT, &t.eot, false},
		{keyEOM, &t.eom, false},
		{keyUNK, &t.unk, false},
		{keyPAD, &t.pad, false},
		{keyFIMPre, &t.fim.pre, false},
		{keyFIMSuf, &t.fim.suf, false},
		{keyFIMMid, &t.fim.mid, false},
		{keyFIMPad, &t.fim.pad, false},
		{keyFIMRep, &t.fim.rep, false},
		{keyFIMSep, &t.fim.sep, false},
		{keyPrefixOld, &t.fim.pre, false},
		{keySuffixOld, &t.fim.suf, false},
		{keyMiddleOld, &t.fim.mid, false},
	}
	for _, x := range ids {
		if err := t.readID(md, x.key, x.dst, x.strict); err != nil {
			return err
		}
	}
	return nil
}

// Texts by which llama.cpp recognises special tokens that the metadata does
// not name. llama.cpp takes the first match in hash-map order; here the
// first text of the list that exists wins.
var (
	eotTexts    = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>"}
	eomTexts    = []string{"<|eom_id|>"}
	fimPreTexts = []string{"<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>"}
	fimSufTexts = []string{"<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>"}
	fimMidTexts = []string{"<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>"}
	fimPadTexts = []string{"<|fim_pad|>", "<fim-pad>", "<PAD>"}
	fimRepTexts = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"}
	fimSepTexts = []string{"<|file_sep|>"}
	eogTexts    = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"}
)

// makeControl gives id the CONTROL attribute if it lacks it; llama.cpp
// overrides the type of "control-looking" tokens this way, which changes how
// they are parsed and printed.
func (t *Tokenizer) makeControl(id int) {
	if t.attrs[id]&attrControl == 0 {
		t.attrs[id] = attrControl
	}
}

// buildSpecials detects special tokens by text, builds the end-of-generation
// set and the list of tokens partition looks for.
func (t *Tokenizer) buildSpecials(md metadata) {
	detect := func(dst *int, texts []string) {
		if *dst >= 0 {
			return
		}
		for _, s := range texts {
			if id, ok := t.toID[s]; ok {
				*dst = int(id)
				t.makeControl(int(id))
				return
			}
		}
	}
	detect(&t.eot, eotTexts)
	detect(&t.eom, eomTexts)
	detect(&t.fim.pre, fimPreTexts)
	detect(&t.fim.suf, fimSufTexts)
	detect(&t.fim.mid, fimMidTexts)
	detect(&t.fim.pad, fimPadTexts)
	detect(&t.fim.rep, fimRepTexts)
	detect(&t.fim.sep, fimSepTexts)

	t.eog = make(map[int]bool)
	for _, id := range []int{t.fim.pad, t.fim.rep, t.fim.sep} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
	for _, s := range eogTexts {
		if id, ok := t.toID[s]; ok {
			t.eog[int(id)] = true
			t.makeControl(int(id))
		}
	}
	for _, id := range []int{t.eos, t.eot, t.eom} {
		if id >= 0 {
			t.eog[id] = true
		}
	}

	// Tokens matched in text: control, user-defined and unknown ones,
	// longest first. llama.cpp's sort is not stable; ties are broken by id
	// here.
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.specials = append(t.specials, int32(id))
			if a&attrUserDefined != 0 {
				t.hasUserSpecial = true
			}
		}
	}
	sort.SliceStable(t.specials, func(i, j int) bool {
		return len(t.tokens[t.specials[i]]) > len(t.tokens[t.specials[j]])
	})
	texts := make([]string, len(t.specials))
	for i, id := range t.specials {
		texts[i] = t.tokens[id]
	}
	t.trie = newSpecialTrie(texts)

	// Per-model strip attributes llama.cpp sets by name.
	name := ""
	if md.Has(keyName) {
		name, _ = md.String(keyName)
	}
	name = strings.ToLower(name)
	setStrip := func(text string, attr tokenAttr, on bool) {
		if id, ok := t.toID[text]; ok {
			if on {
				t.attrs[id] |= attr
			} else {
				t.attrs[id] &^= attr
			}
		}
	}
	switch {
	case containsAny(t.pre, "jina-v2-de", "jina-v2-es", "jina-v2-code"):
		setStrip("<mask>", attrLStrip, true)
	case containsAny(name, "phi-3", "phi3"):
		for _, id := range t.specials {
			t.attrs[id] |= attrRStrip
		}
		setStrip("</s>", attrRStrip, true)
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			setStrip(s, attrRStrip, false)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// buildByteTables resolves the byte-fallback tokens.
func (t *Tokenizer) buildByteTables() {
	const hex = "0123456789ABCDEF"
	for b := 0; b < 256; b++ {
		t.spmByte[b], t.bpeByte[b], t.singleByte[b] = -1, -1, -1
		if id, ok := t.toID[string([]byte{byte(b)})]; ok {
			t.singleByte[b] = id
		}
		if id, ok := t.toID[gpt2ByteString[b]]; ok {
			t.bpeByte[b] = id
		}
		if id, ok := t.toID[string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})]; ok {
			t.spmByte[b] = id
		} else if t.singleByte[b] >= 0 {
			t.spmByte[b] = t.singleByte[b]
		} else if t.unk >= 0 {
			// llama.cpp throws here; the unknown token is the nearest
			// meaningful output.
			t.spmByte[b] = int32(t.unk)
		}
	}
}

// indexString is strings.Index, named for the decoder's use.
func indexString(s, sub string) int { return strings.Index(s, sub) }
