package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// lenientNormalize is what llama.cpp's byte-level BPE actually encodes for
// s: its code points as decoded by unicode_cpts_from_utf8 (one U+FFFD per
// undecodable byte, overlong forms and surrogates accepted) re-encoded.
func lenientNormalize(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		r, n := decodeCpt(s, i)
		b = appendCpt(b, r)
		i += n
	}
	return string(b)
}

// FuzzEncodeDecode checks round trips the way llama.cpp behaves:
//   - SPM (stories260K): Decode(Encode(s)) == s for valid UTF-8 without
//     U+2581 (the dummy-prefix space is removed again by Decode; invalid
//     UTF-8 does not round-trip in llama.cpp either: a stray lead byte
//     swallows the first byte of a following U+2581);
//   - byte-level BPE without space clean-up (Qwen2): Decode(Encode(s)) ==
//     s after llama.cpp's lenient UTF-8 decoding (s itself when valid);
//   - byte-level BPE with clean-up (Llama 3): the clean-up of that;
//
// and, for all of them, that ids are in range, parsing special tokens never
// panics, and the stream decoder agrees with Decode.
func FuzzEncodeDecode(f *testing.F) {
	spm := loadShared(f, "models/stories260K.gguf")
	qwen := loadShared(f, "vocab/ggml-vocab-qwen2.gguf")
	llama3 := loadShared(f, "vocab/ggml-vocab-llama-bpe.gguf")
	for _, s := range []string{
		"", " ", "Once upon a time", "  two  spaces ", "naïve café 日本語 🦙", "I've 'll 're 12345",
		"\xff\xfe", "\xc3", "a\xe2\x82", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80", "<s></s><unk>",
		"<|endoftext|><|im_start|>", "<|begin_of_text|>", "a , b . c ' d", "\r\n\t\v\f\x00\x85",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(name string, tok *Tokenizer, want string, removeSpecial bool) {
			ids := tok.Encode(s, false, false)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("%s: Encode(%q): id %d out of range", name, s, id)
				}
			}
			if m := tok.MinTokens(s); m > len(ids) {
				t.Fatalf("%s: MinTokens(%q) = %d, but Encode gives %d tokens", name, s, m, len(ids))
			}
			got := tok.Decode(ids, removeSpecial)
			if got != want {
				t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q (ids %v)", name, s, got, want, ids)
			}
			if st := streamAll(t, tok, ids); st != tok.Decode(ids, false) {
				t.Fatalf("%s: stream %q != Decode %q", name, st, tok.Decode(ids, false))
			}
			special := tok.Encode(s, false, true)
			if m := tok.MinTokens(s); m > len(special) {
				t.Fatalf("%s: MinTokens(%q) = %d, but Encode with special tokens gives %d", name, s, m, len(special))
			}
			for _, id := range tok.Encode(s, true, true) {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("%s: Encode(%q, special): id %d out of range", name, s, id)
				}
			}
		}
		if utf8.ValidString(s) && !strings.Contains(s, spaceMarker) {
			check("stories260K", spm, s, true)
		} else {
			check("stories260K", spm, spm.Decode(spm.Encode(s, false, false), true), true)
		}
		norm := lenientNormalize(s)
		check("qwen2", qwen, norm, false)
		check("llama-bpe", llama3, cleanSpacesRef(norm), false)
	})
}
