package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// cleanSpacesRef is a direct transcription of the three passes as string
// rewriting, independent of the in-place and streaming versions.
func cleanSpacesRef(s string) string {
	b := []byte(s)
	var p1 []byte
	for i, x := range b {
		if i > 0 && b[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			p1 = p1[:len(p1)-1]
		}
		p1 = append(p1, x)
	}
	var p2 []byte
	for i := 0; i < len(p1); i++ {
		x := p1[i]
		if i > 0 && x == '\'' && i+1 < len(p1) && p1[i-1] == ' ' && p1[i+1] == ' ' {
			p2 = p2[:len(p2)-1]
			p1[i+1] = 0 // swallowed; it no longer counts as a space
			p2 = append(p2, x)
			i++
			continue
		}
		p2 = append(p2, x)
	}
	var p3 []byte
	for i, x := range p2 {
		if i > 0 && p2[i-1] == ' ' && x == '\'' && i+1 < len(p2) {
			x1 := p2[i+1]
			if x1 == 's' || x1 == 'm' {
				p3 = p3[:len(p3)-1]
			} else if x1 != 't' && x1 != 'd' && i+2 < len(p2) && (x1 == 'r' || x1 == 'v') && p2[i+2] == 'e' {
				p3 = p3[:len(p3)-1]
			}
		}
		p3 = append(p3, x)
	}
	return string(p3)
}

// TestCleanSpaces checks the in-place clean-up, the streaming one and the
// reference on every string up to length 5 over the relevant alphabet.
func TestCleanSpaces(t *testing.T) {
	fixed := []struct{ in, want string }{
		{"Hello , world !", "Hello, world!"},
		{"I 'm here , it 's ok", "I'm here, it's ok"},
		{"we 're , you 've", "we're, you've"},
		{"don 't and I 'd and we 'll", "don 't and I 'd and we 'll"},
		{"a ' b", "a'b"},
		{" .", "."},
		{"", ""},
	}
	for _, c := range fixed {
		if got := string(cleanSpaces([]byte(c.in))); got != c.want {
			t.Errorf("cleanSpaces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	const alphabet = " '.,smrvetdx"
	var buf []byte
	var check func(n int)
	n := 0
	check = func(depth int) {
		s := string(buf)
		want := cleanSpacesRef(s)
		if got := string(cleanSpaces([]byte(s))); got != want {
			t.Fatalf("cleanSpaces(%q) = %q, reference %q", s, got, want)
		}
		var c spaceCleaner
		var out []byte
		for i := 0; i < len(s); i++ {
			out = c.put(s[i], out)
		}
		out = c.flush(out)
		if string(out) != want {
			t.Fatalf("streaming clean(%q) = %q, want %q", s, out, want)
		}
		n++
		if depth == 5 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			buf = append(buf, alphabet[i])
			check(depth + 1)
			buf = buf[:len(buf)-1]
		}
	}
	check(0)
	t.Logf("%d strings", n)
}

// streamAll feeds ids one by one and checks that every chunk is valid UTF-8
// whenever the whole text is.
func streamAll(t *testing.T, tok *Tokenizer, ids []int) string {
	t.Helper()
	d := tok.NewStreamDecoder()
	var sb strings.Builder
	for _, id := range ids {
		chunk := d.Next(id)
		sb.WriteString(chunk)
	}
	sb.WriteString(d.Flush())
	return sb.String()
}

func TestStreamDecoderSplitCharacter(t *testing.T) {
	tok := loadShared(t, "models/stories260K.gguf")
	// "ï" is not in the 512-token vocabulary: two byte tokens.
	ids := tok.Encode("naïve", false, false)
	d := tok.NewStreamDecoder()
	var chunks []string
	for _, id := range ids {
		chunks = append(chunks, d.Next(id))
	}
	chunks = append(chunks, d.Flush())
	for _, c := range chunks {
		if !utf8.ValidString(c) {
			t.Errorf("chunk %q is not valid UTF-8 (chunks %q)", c, chunks)
		}
	}
	if got := strings.Join(chunks, ""); got != "naïve" {
		t.Errorf("stream = %q, want %q", got, "naïve")
	}
	// A byte token alone is held back, then flushed.
	d = tok.NewStreamDecoder()
	if got := d.Next(3 + 0xC3); got != "" {
		t.Errorf("Next(<0xC3>) = %q, want it held back", got)
	}
	if got := d.Flush(); got != "\xC3" {
		t.Errorf("Flush = %q", got)
	}
	// An impossible byte is not held back.
	if got := d.Next(3 + 0xFF); got != "\xFF" {
		t.Errorf("Next(<0xFF>) = %q", got)
	}
}

// TestStreamDecoderMatchesDecode checks stream == Decode(ids, false) on the
// texts of tokenization_all_vocabs.json and random ids, for every
// supported vocabulary.
func TestStreamDecoderMatchesDecode(t *testing.T) {
	var all allVocabs
	readJSON(t, "vocab/tokenization_all_vocabs.json", &all)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, v := range supportedVocabs {
		tok := loadShared(t, "vocab/"+v)
		for _, text := range all.Texts {
			for _, special := range []bool{false, true} {
				ids := tok.Encode(text, special, special)
				want := tok.Decode(ids, false)
				if got := streamAll(t, tok, ids); got != want {
					t.Errorf("%s %q: stream %q, Decode %q", v, text, got, want)
				}
				if utf8.ValidString(want) {
					d := tok.NewStreamDecoder()
					for _, id := range ids {
						if c := d.Next(id); !utf8.ValidString(c) {
							t.Errorf("%s %q: invalid chunk %q", v, text, c)
						}
					}
				}
			}
		}
		for range 50 {
			ids := make([]int, rng.IntN(20))
			for i := range ids {
				ids[i] = rng.IntN(tok.VocabSize())
			}
			if got, want := streamAll(t, tok, ids), tok.Decode(ids, false); got != want {
				t.Errorf("%s %v: stream %q, Decode %q", v, ids, got, want)
			}
		}
	}
}

func TestPieceAndDecodeSpecial(t *testing.T) {
	tok := loadShared(t, "vocab/ggml-vocab-llama-bpe.gguf")
	if p := tok.Piece(tok.BOS()); len(p) != 0 {
		t.Errorf("Piece(BOS) = %q, want empty (control token)", p)
	}
	if p := tok.Piece(-1); p != nil {
		t.Errorf("Piece(-1) = %q", p)
	}
	if p := tok.Piece(tok.VocabSize()); p != nil {
		t.Errorf("Piece(n) = %q", p)
	}
	ids := tok.Encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true, true)
	if got := tok.Decode(ids, false); got != "user\n\nHi" {
		t.Errorf("Decode = %q", got)
	}
	hello := tok.Encode(" Hello", false, false)
	if got := string(tok.Piece(hello[0])); got != " Hello" {
		t.Errorf("Piece = %q, want %q", got, " Hello")
	}
}
