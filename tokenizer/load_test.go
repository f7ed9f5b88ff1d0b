package tokenizer

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// kv is one metadata entry of a synthetic GGUF.
type kv struct {
	key string
	val any
}

// buildGGUF writes a tensor-less GGUF with the given metadata and parses it.
func buildGGUF(tb testing.TB, kvs []kv) *gguf.File {
	tb.Helper()
	var b gguf.Builder
	for _, e := range kvs {
		b.Set(e.key, e.val)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// spmVocab is a small SentencePiece vocabulary: <unk>, <s>, </s>, the 256
// byte tokens, then the given pieces (NORMAL unless typed) with scores.
type spmPiece struct {
	text  string
	score float32
	typ   int32
}

func spmVocab(extra []spmPiece, more ...kv) []kv {
	tokens := []string{"<unk>", "<s>", "</s>"}
	scores := []float32{0, 0, 0}
	types := []int32{typeUnknown, typeControl, typeControl}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		scores = append(scores, 0)
		types = append(types, typeByte)
	}
	for _, p := range extra {
		tokens = append(tokens, p.text)
		scores = append(scores, p.score)
		typ := p.typ
		if typ == 0 {
			typ = typeNormal
		}
		types = append(types, typ)
	}
	return append([]kv{
		{keyModel, "llama"},
		{keyTokens, tokens},
		{keyScores, scores},
		{keyTokenType, types},
	}, more...)
}

func newSPM(tb testing.TB, extra []spmPiece, more ...kv) *Tokenizer {
	tb.Helper()
	tok, err := FromGGUF(buildGGUF(tb, spmVocab(extra, more...)))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// texts returns the vocabulary strings of ids.
func texts(tok *Tokenizer, ids []int) []string {
	var out []string
	for _, id := range ids {
		out = append(out, tok.TokenText(id))
	}
	return out
}

func TestSPMMergeOrder(t *testing.T) {
	tok := newSPM(t, []spmPiece{
		{text: "▁", score: -1}, {text: "a", score: -1}, {text: "b", score: -1},
		{text: "aa", score: -2}, {text: "ab", score: -3}, {text: "▁a", score: -5},
		{text: "aab", score: -4},
	})
	cases := []struct {
		text string
		want []string
	}{
		// Equal scores: the leftmost pair merges first.
		{"aaa", []string{"▁", "aa", "a"}},
		// Higher score first: "aa" (-2) before "▁a" (-5), then "aab".
		{"aab", []string{"▁", "aab"}},
		// Spaces become U+2581 and are kept.
		{" a", []string{"▁", "▁a"}},
		// Unknown characters fall back to bytes.
		{"é", []string{"▁", "<0xC3>", "<0xA9>"}},
		// Invalid UTF-8 too.
		{"a\xff", []string{"▁a", "<0xFF>"}},
	}
	for _, c := range cases {
		if got := texts(tok, tok.Encode(c.text, false, false)); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	if !tok.AddBOS() || tok.AddEOS() {
		t.Errorf("SPM defaults: AddBOS %v AddEOS %v", tok.AddBOS(), tok.AddEOS())
	}
	if got := tok.Encode("", true, false); !slices.Equal(got, []int{1}) {
		t.Errorf("Encode(\"\", addSpecial) = %v, want [1]", got)
	}
	// add_space_prefix = false disables the dummy prefix.
	tok = newSPM(t, []spmPiece{{text: "a", score: -1}}, kv{keyAddSpacePrefix, false})
	if got := texts(tok, tok.Encode("a", false, false)); !slices.Equal(got, []string{"a"}) {
		t.Errorf("without prefix: %q", got)
	}
}

func TestSpecialPartition(t *testing.T) {
	tok := newSPM(t, []spmPiece{
		{text: "a", score: -1}, {text: "b", score: -1}, {text: "c", score: -1}, {text: "d", score: -1},
		{text: "▁", score: -1},
		{text: "ab", typ: typeUserDefined}, {text: "bcd", typ: typeUserDefined},
		{text: "<ctl>", typ: typeControl}, {text: "<gone>", typ: typeUnused},
	})
	cases := []struct {
		text         string
		parseSpecial bool
		want         []string
	}{
		// Longest special first, not leftmost: "bcd" claims before "ab".
		{"abcd", false, []string{"▁", "a", "bcd"}},
		{"abab", false, []string{"ab", "ab"}},
		// Control tokens only with parseSpecial; a dummy prefix follows them.
		{"<ctl>a", true, []string{"<ctl>", "▁", "a"}},
		{"d<ctl>", false, []string{"▁", "d", "<0x3C>", "c", "<0x74>", "<0x6C>", "<0x3E>"}},
		// Unknown-type tokens are special too; unused ones are not.
		{"<unk><gone>", true, []string{"<unk>", "▁", "<0x3C>", "<0x67>", "<0x6F>", "<0x6E>", "<0x65>", "<0x3E>"}},
	}
	for _, c := range cases {
		if got := texts(tok, tok.Encode(c.text, false, c.parseSpecial)); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q, parseSpecial=%v) = %q, want %q", c.text, c.parseSpecial, got, c.want)
		}
	}
}

// TestStripAttributes: llama.cpp marks Phi-3's special tokens rstrip by
// model name, so spaces after them vanish.
func TestStripAttributes(t *testing.T) {
	extra := []spmPiece{{text: "▁", score: -1}, {text: "x", score: -1}, {text: "<|end|>", typ: typeControl}}
	phi := newSPM(t, extra, kv{keyName, "Phi3"})
	plain := newSPM(t, extra)
	text := "x<|end|>  x"
	if got := texts(phi, phi.Encode(text, false, true)); !slices.Equal(got, []string{"▁", "x", "<|end|>", "▁", "x"}) {
		t.Errorf("phi3: %q", got)
	}
	if got := texts(plain, plain.Encode(text, false, true)); !slices.Equal(got, []string{"▁", "x", "<|end|>", "▁", "▁", "▁", "x"}) {
		t.Errorf("plain: %q", got)
	}
	if !phi.IsEOG(phi.toIDOf("<|end|>")) || phi.EOT() != phi.toIDOf("<|end|>") {
		t.Errorf("<|end|> should be EOT and EOG")
	}
}

func (t *Tokenizer) toIDOf(s string) int {
	if id, ok := t.toID[s]; ok {
		return int(id)
	}
	return -1
}

// bpeVocab is a tiny byte-level BPE vocabulary: the 256 byte characters,
// then the merge results.
func bpeVocab(merges []string, more ...kv) []kv {
	var tokens []string
	for b := 0; b < 256; b++ {
		tokens = append(tokens, gpt2ByteString[b])
	}
	seen := map[string]bool{}
	for _, m := range merges {
		l, r, _ := strings.Cut(m, " ")
		if !seen[l+r] {
			seen[l+r] = true
			tokens = append(tokens, l+r)
		}
	}
	tokens = append(tokens, "<|endoftext|>")
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = typeNormal
	}
	return append([]kv{
		{keyModel, "gpt2"},
		{keyPre, "gpt-2"},
		{keyTokens, tokens},
		{keyTokenType, types},
		{keyMerges, merges},
	}, more...)
}

func TestBPEMerges(t *testing.T) {
	f := buildGGUF(t, bpeVocab([]string{"h e", "l l", "he ll", "hell o", "Ġ w", "o r"}))
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(tok, tok.Encode("hello world", false, false)); !slices.Equal(got, []string{"hello", "Ġw", "or", "l", "d"}) {
		t.Errorf("Encode = %q", got)
	}
	// BPE defaults: BOS = EOS = 11 when the metadata names none, no BOS
	// added; <|endoftext|> is found by text, becomes EOT, EOG and control.
	if tok.BOS() != 11 || tok.EOS() != 11 || tok.AddBOS() {
		t.Errorf("bos %d eos %d addBOS %v", tok.BOS(), tok.EOS(), tok.AddBOS())
	}
	eot := tok.toIDOf("<|endoftext|>")
	if tok.EOT() != eot || !tok.IsEOG(eot) || !tok.IsControl(eot) || tok.IsEOG(0) {
		t.Errorf("EOT %d (want %d), IsEOG %v, IsControl %v", tok.EOT(), eot, tok.IsEOG(eot), tok.IsControl(eot))
	}
	if got := tok.Encode("hi<|endoftext|>", false, true); got[len(got)-1] != eot {
		t.Errorf("parseSpecial: %v", got)
	}
	if tok.Model() != "gpt2" || tok.Pre() != "gpt-2" {
		t.Errorf("Model %q Pre %q", tok.Model(), tok.Pre())
	}
}

// dupTokens returns the token list of kvs with token 4 equal to token 3.
func dupTokens(kvs []kv) []string {
	for _, e := range kvs {
		if e.key == keyTokens {
			toks := slices.Clone(e.val.([]string))
			toks[4] = toks[3]
			return toks
		}
	}
	return nil
}

func TestLoadErrors(t *testing.T) {
	spm := spmVocab(nil)
	replace := func(base []kv, key string, val any) []kv {
		out := slices.Clone(base)
		for i := range out {
			if out[i].key == key {
				if val == nil {
					return slices.Delete(out, i, i+1)
				}
				out[i].val = val
				return out
			}
		}
		return append(out, kv{key, val})
	}
	bpe := bpeVocab([]string{"h e"})
	cases := []struct {
		name string
		kvs  []kv
		want string
	}{
		{"no model", replace(spm, keyModel, nil), "tokenizer.ggml.model"},
		{"unknown model", replace(spm, keyModel, "sentencepiece2"), "unknown"},
		{"unsupported model", replace(spm, keyModel, "bert"), "not supported"},
		{"model wrong type", replace(spm, keyModel, uint32(1)), "tokenizer.ggml.model"},
		{"no tokens", replace(spm, keyTokens, nil), "tokenizer.ggml.tokens"},
		{"empty tokens", replace(spm, keyTokens, []string{}), "empty"},
		{"scores length", replace(spm, keyScores, []float32{1, 2}), "tokenizer.ggml.scores has 2 entries"},
		{"types length", replace(spm, keyTokenType, []int32{1}), "tokenizer.ggml.token_type has 1 entries"},
		{"duplicate token", replace(spm, keyTokens, dupTokens(spm)), `tokens 3 and 4 are both "<0x00>"`},
		{"bos out of range", replace(spm, keyBOS, uint32(100000)), "out of range"},
		{"eos out of range", replace(spm, keyEOS, uint32(259)), "out of range"},
		{"add_bos wrong type", replace(spm, keyAddBOS, "yes"), "add_bos_token"},
		{"no merges", replace(bpe, keyMerges, nil), "merges"},
		{"merge unknown token", replace(bpe, keyMerges, []string{"h e", "he zz"}), `unknown token "zz"`},
		{"merge without space", replace(bpe, keyMerges, []string{"he"}), "not two tokens"},
		{"unknown pre", replace(bpe, keyPre, "tekken2"), "supported:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromGGUF(buildGGUF(t, c.kvs))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "tokenizer: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := FromGGUF(nil); err == nil {
		t.Error("FromGGUF(nil): no error")
	}
}

// TestLoadTolerated covers metadata llama.cpp accepts and so must we.
func TestLoadTolerated(t *testing.T) {
	// "None" markers for ids, as in stories260K.gguf.
	tok, err := FromGGUF(buildGGUF(t, spmVocab(nil,
		kv{keyPAD, uint32(0xFFFFFFFF)}, kv{keyBOS, uint32(0xFFFFFFFF)}, kv{keyEOT, int32(-1)})))
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 1 || tok.PAD() != -1 || tok.EOT() != -1 {
		t.Errorf("bos %d pad %d eot %d", tok.BOS(), tok.PAD(), tok.EOT())
	}
	// Empty token strings are renamed like llama.cpp does.
	kvs := spmVocab([]spmPiece{{text: ""}, {text: ""}})
	tok, err = FromGGUF(buildGGUF(t, kvs))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.TokenText(259); got != "[EMPTY_259]" {
		t.Errorf("TokenText(259) = %q", got)
	}
	// A merge whose concatenation is not a token is kept; the result
	// falls back to single-byte tokens.
	kvs = bpeVocab([]string{"a b"})
	for i := range kvs {
		if kvs[i].key == keyTokens {
			toks := slices.Clone(kvs[i].val.([]string))
			toks[256] = "zz" // drop "ab"
			kvs[i].val = toks
		}
	}
	tok, err = FromGGUF(buildGGUF(t, kvs))
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(tok, tok.Encode("ab", false, false)); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("unmerged fallback: %q", got)
	}
}
