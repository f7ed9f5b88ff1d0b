package tokenizer

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readVectors parses llama.cpp's test-tokenizer-0 files X.gguf.inp/.out.
func readVectors(tb testing.TB, vocab string) (texts []string, ids [][]int) {
	tb.Helper()
	inp, err := os.ReadFile(sharedPath(tb, "vocab/"+vocab+".inp"))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := os.ReadFile(sharedPath(tb, "vocab/"+vocab+".out"))
	if err != nil {
		tb.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	texts = strings.Split(string(inp), sep)
	if texts[len(texts)-1] != "" {
		tb.Fatalf("%s.inp does not end with the separator", vocab)
	}
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		tb.Fatalf("%s: %d inputs but %d outputs", vocab, len(texts), len(lines))
	}
	for _, l := range lines {
		var row []int
		for _, f := range strings.Fields(l) {
			n, err := strconv.Atoi(f)
			if err != nil {
				tb.Fatalf("%s.out: %v", vocab, err)
			}
			row = append(row, n)
		}
		ids = append(ids, row)
	}
	return texts, ids
}

// TestVectors checks every llama.cpp test-tokenizer-0 vector
// (add_special=false, parse_special=false) of every supported vocabulary.
func TestVectors(t *testing.T) {
	for _, v := range supportedVocabs {
		if _, err := os.Stat(sharedDir + "/vocab/" + v + ".inp"); err != nil {
			continue // no vectors for this vocabulary
		}
		t.Run(v, func(t *testing.T) {
			tok := loadShared(t, "vocab/"+v)
			texts, want := readVectors(t, v)
			pass := 0
			for i, text := range texts {
				got := tok.Encode(text, false, false)
				if !slices.Equal(got, want[i]) {
					t.Errorf("Encode(%q)\n got %v\nwant %v", text, got, want[i])
					continue
				}
				pass++
			}
			t.Logf("%s: %d/%d vectors", v, pass, len(texts))
		})
	}
}

// TestAllVocabs checks tokenization_all_vocabs.json: encoding with and
// without special handling and detokenization, for every supported
// vocabulary in the file.
func TestAllVocabs(t *testing.T) {
	var all allVocabs
	readJSON(t, "vocab/tokenization_all_vocabs.json", &all)
	for _, v := range supportedVocabs {
		data, ok := all.Vocabs[v]
		if !ok {
			t.Errorf("%s missing from tokenization_all_vocabs.json", v)
			continue
		}
		t.Run(v, func(t *testing.T) {
			tok := loadShared(t, "vocab/"+v)
			if tok.VocabSize() != data.NVocab || tok.BOS() != data.BOS || tok.EOS() != data.EOS {
				t.Errorf("n_vocab/bos/eos = %d/%d/%d, want %d/%d/%d",
					tok.VocabSize(), tok.BOS(), tok.EOS(), data.NVocab, data.BOS, data.EOS)
			}
			pass := 0
			for _, c := range data.Cases {
				text := all.Texts[c.TextIndex]
				var errs []string
				check := func(field string, got, want []int) {
					if !slices.Equal(got, want) {
						errs = append(errs, fmt.Sprintf("%s:\n  got %v\n want %v", field, got, want))
					}
				}
				check("ids_add_special", tok.Encode(text, true, false), c.IDsAddSpecial)
				check("ids_no_special", tok.Encode(text, false, false), c.IDsNoSpecial)
				check("ids_add_special_parse_special", tok.Encode(text, true, true), c.IDsAddSpecialParseSpecial)
				if got := tok.Decode(c.IDsAddSpecial, true); got != c.Detokenized {
					errs = append(errs, fmt.Sprintf("detokenized: got %q want %q", got, c.Detokenized))
				}
				if got := tok.Decode(c.IDsNoSpecial, true); got != c.DetokenizedFromIDsNoSpecial {
					errs = append(errs, fmt.Sprintf("detokenized_from_ids_no_special: got %q want %q", got, c.DetokenizedFromIDsNoSpecial))
				}
				if len(errs) > 0 {
					t.Errorf("text %d %q:\n%s", c.TextIndex, text, strings.Join(errs, "\n"))
					continue
				}
				pass++
			}
			t.Logf("%s: %d/%d cases (5 fields each)", v, pass, len(data.Cases))
		})
	}
}
