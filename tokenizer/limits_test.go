package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/defaultmodel"
)

func embedded(t testing.TB) *Tokenizer {
	t.Helper()
	f, err := gguf.Parse(defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// randomText mixes prose, runs of whitespace, non-Latin text, invalid
// UTF-8 and the texts of the vocabulary's special tokens.
func randomText(rng *rand.Rand, tok *Tokenizer, n int) string {
	pieces := []string{"the ", "cache", " ", "  ", "\n\n", "\t", "naïve ", "日本語", "🦙", "12345", "I've", "\xff", "\xe2\x82", "\u2581", "<s>", "</s>"}
	for _, id := range tok.specials {
		pieces = append(pieces, tok.tokens[id], " "+tok.tokens[id]+"   ")
	}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

// MinTokens never exceeds what Encode gives, for every vocabulary, with
// and without special-token parsing; and it bounds every vocabulary kvgo
// reads (none drops bytes), so a server can refuse a text before
// tokenizing it.
func TestMinTokensIsALowerBound(t *testing.T) {
	toks := map[string]*Tokenizer{"kvgo-tiny": embedded(t)}
	for _, v := range supportedVocabs {
		if _, err := os.Stat(filepath.Join(sharedDir, "vocab", v)); err == nil {
			toks[v] = loadShared(t, "vocab/"+v)
		}
	}
	rng := rand.New(rand.NewPCG(14, 2))
	for name, tok := range toks {
		if tok.cover == 0 {
			t.Errorf("%s: MinTokens gives no bound", name)
			continue
		}
		for range 40 {
			s := randomText(rng, tok, rng.IntN(400))
			for _, special := range []bool{false, true} {
				if m, n := tok.MinTokens(s), len(tok.Encode(s, false, special)); m > n {
					t.Fatalf("%s: MinTokens = %d > %d tokens (special %v) for %q", name, m, n, special, s)
				}
			}
		}
		if m := tok.MinTokens(strings.Repeat("x", 1<<20)); m != (1<<20+tok.cover-1)/tok.cover {
			t.Errorf("%s: MinTokens of 1 MiB of x is %d: the longest token is %d bytes", name, m, tok.cover)
		}
	}
}

// Encoding allocates in proportion to the text, with a small constant: a
// 4 MB prompt cost 613 MB of allocations through the SPM merger (symbols
// and candidate heap grown by appending) and 235 MB through byte-level BPE.
func TestEncodeMemoryIsProportional(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures allocations of a 2 MB text")
	}
	toks := map[string]*Tokenizer{"spm (kvgo-tiny)": embedded(t)}
	if _, err := os.Stat(filepath.Join(sharedDir, "vocab/ggml-vocab-llama-bpe.gguf")); err == nil {
		toks["bpe (llama-bpe)"] = loadShared(t, "vocab/ggml-vocab-llama-bpe.gguf")
	}
	rng := rand.New(rand.NewPCG(14, 3))
	words := []string{"the", "cache", "memory", "is", "a", "token", "of", "x", "retrieval", "passkey", "\n", "héllo", "12345"}
	var b strings.Builder
	for b.Len() < 2<<20 {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	text := b.String()
	for name, tok := range toks {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		ids := tok.Encode(text, true, false)
		runtime.ReadMemStats(&m1)
		perByte := float64(m1.TotalAlloc-m0.TotalAlloc) / float64(len(text))
		t.Logf("%s: %d bytes, %d tokens, %.1f bytes allocated per byte", name, len(text), len(ids), perByte)
		if perByte > 64 {
			t.Errorf("%s: %.1f bytes allocated per byte of text, want at most 64", name, perByte)
		}
	}
}
