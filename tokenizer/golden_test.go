package tokenizer

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestStories260KGolden checks golden/stories260K/tokenization.json: every
// field produced by llama.cpp (the sentencepiece_* and llama2c_* fields are
// independent cross-checks and are not llama.cpp output).
func TestStories260KGolden(t *testing.T) {
	var golden struct {
		Cases []struct {
			Name                    string   `json:"name"`
			Text                    string   `json:"text"`
			TextHex                 string   `json:"text_utf8_hex"`
			IDsWithBOS              []int    `json:"ids_with_bos"`
			IDsNoBOS                []int    `json:"ids_no_bos"`
			IDsWithBOSParseFalse    []int    `json:"ids_with_bos_parse_special_false"`
			PiecesWithBOS           []string `json:"pieces_with_bos"`
			Detokenized             string   `json:"detokenized"`
			DetokenizedFromIDsNoBOS string   `json:"detokenized_from_ids_no_bos"`
		} `json:"cases"`
	}
	readJSON(t, "golden/stories260K/tokenization.json", &golden)
	tok := loadShared(t, "models/stories260K.gguf")
	if tok.Model() != "llama" || tok.VocabSize() != 512 || tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() || tok.AddEOS() {
		t.Fatalf("model %q n=%d bos=%d eos=%d addBOS=%v addEOS=%v", tok.Model(), tok.VocabSize(), tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS())
	}
	if len(golden.Cases) != 13 {
		t.Fatalf("%d cases, want 13", len(golden.Cases))
	}
	for _, c := range golden.Cases {
		t.Run(c.Name, func(t *testing.T) {
			raw, err := hex.DecodeString(c.TextHex)
			if err != nil || string(raw) != c.Text {
				t.Fatalf("text_utf8_hex does not match text (%v)", err)
			}
			// llama-tokenize parses special tokens by default.
			if got := tok.Encode(c.Text, true, true); !slices.Equal(got, c.IDsWithBOS) {
				t.Errorf("ids_with_bos: got %v want %v", got, c.IDsWithBOS)
			}
			if got := tok.Encode(c.Text, false, true); !slices.Equal(got, c.IDsNoBOS) {
				t.Errorf("ids_no_bos: got %v want %v", got, c.IDsNoBOS)
			}
			if got := tok.Encode(c.Text, true, false); !slices.Equal(got, c.IDsWithBOSParseFalse) {
				t.Errorf("ids_with_bos_parse_special_false: got %v want %v", got, c.IDsWithBOSParseFalse)
			}
			var pieces []string
			for _, id := range c.IDsWithBOS {
				pieces = append(pieces, tok.TokenText(id))
			}
			if !slices.Equal(pieces, c.PiecesWithBOS) {
				t.Errorf("pieces_with_bos: got %q want %q", pieces, c.PiecesWithBOS)
			}
			if got := tok.Decode(c.IDsWithBOSParseFalse, true); got != c.Detokenized {
				t.Errorf("detokenized: got %q want %q", got, c.Detokenized)
			}
			noBOS := tok.Encode(c.Text, false, false)
			if got := tok.Decode(noBOS, true); got != c.DetokenizedFromIDsNoBOS {
				t.Errorf("detokenized_from_ids_no_bos: got %q want %q", got, c.DetokenizedFromIDsNoBOS)
			}
		})
	}
}

// TestKvgoTiny loads the project's own model vocabulary and round-trips
// text through it.
func TestKvgoTiny(t *testing.T) {
	tok := loadShared(t, "models/kvgo-tiny.gguf")
	if tok.Model() != "llama" || tok.VocabSize() != 1024 || tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() {
		t.Fatalf("model %q n=%d bos=%d eos=%d addBOS=%v", tok.Model(), tok.VocabSize(), tok.BOS(), tok.EOS(), tok.AddBOS())
	}
	texts := []string{
		"The pass key is 71432. Remember it.",
		"  leading and trailing spaces  ",
		"Debian packages: apt-get install -y build-essential\n\tdone",
		"ünïcödé → 日本語 🙂",
		"",
	}
	for _, s := range texts {
		ids := tok.Encode(s, true, false)
		if len(ids) == 0 || ids[0] != 1 {
			t.Errorf("Encode(%q) = %v: no BOS", s, ids)
		}
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q): id %d out of range", s, id)
			}
		}
		if got := tok.Decode(ids[1:], true); got != s {
			t.Errorf("Decode(Encode(%q)) without BOS = %q", s, got)
		}
		// With the BOS the dummy-prefix space stays (llama.cpp quirk).
		want := s
		if s != "" {
			want = " " + s
		}
		if got := tok.Decode(ids, true); got != want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
	}
	// Digits are never merged in this vocabulary.
	for _, id := range tok.Encode("71432", false, false) {
		if p := tok.Piece(id); utf8.RuneCount(p) > 1 && strings.ContainsAny(string(p), "0123456789") {
			t.Errorf("digit merged into piece %q", p)
		}
	}
}

// TestRetrievalPromptLengths checks the token counts recorded in the eval
// set (prompt_tokens, kvgo-tiny tokens including BOS) for all 300 prompts.
func TestRetrievalPromptLengths(t *testing.T) {
	tok := loadShared(t, "models/kvgo-tiny.gguf")
	data, err := os.ReadFile(sharedPath(t, "eval/retrieval-dev.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		var c struct {
			Prompt       string `json:"prompt"`
			PromptTokens int    `json:"prompt_tokens"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		if got := len(tok.Encode(c.Prompt, true, false)); got != c.PromptTokens {
			t.Errorf("case %d: %d tokens, want %d", n, got, c.PromptTokens)
		}
		n++
	}
	if n != 300 {
		t.Errorf("%d cases, want 300", n)
	}
}
