package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// sharedDir is the read-only test data folder (vocabularies, goldens).
const sharedDir = "../../shared"

// sharedPath returns the path of a file under sharedDir, skipping the test
// when it is absent (the data is not part of the repository).
func sharedPath(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(sharedDir, rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("test data %s not available (%v); it lives in the shared data folder next to the repository", p, err)
	}
	return p
}

// supportedVocabs are the vocabulary files of shared/vocab whose model type
// this package implements.
var supportedVocabs = []string{
	"ggml-vocab-llama-spm.gguf",
	"ggml-vocab-phi-3.gguf",
	"ggml-vocab-baichuan.gguf",
	"ggml-vocab-llama-bpe.gguf",
	"ggml-vocab-qwen2.gguf",
	"ggml-vocab-gpt-2.gguf",
	"ggml-vocab-deepseek-llm.gguf",
	"ggml-vocab-deepseek-coder.gguf",
	"ggml-vocab-falcon.gguf",
	"ggml-vocab-mpt.gguf",
	"ggml-vocab-gpt-neox.gguf",
	"ggml-vocab-refact.gguf",
	"ggml-vocab-starcoder.gguf",
}

type loadResult struct {
	tok *Tokenizer
	err error
}

// vocabCache loads every GGUF at most once per test binary: the large
// vocabularies take a noticeable fraction of a second each.
var vocabCache = struct {
	sync.Mutex
	m map[string]func() (*Tokenizer, error)
}{m: map[string]func() (*Tokenizer, error){}}

// loadShared returns the tokenizer of shared/<rel>, skipping if absent.
func loadShared(tb testing.TB, rel string) *Tokenizer {
	tb.Helper()
	p := sharedPath(tb, rel)
	vocabCache.Lock()
	f, ok := vocabCache.m[p]
	if !ok {
		f = sync.OnceValues(func() (*Tokenizer, error) { return loadFile(p) })
		vocabCache.m[p] = f
	}
	vocabCache.Unlock()
	tok, err := f()
	if err != nil {
		tb.Fatalf("load %s: %v", p, err)
	}
	return tok
}

func loadFile(path string) (*Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return FromGGUF(f)
}

// allVocabs is shared/vocab/tokenization_all_vocabs.json.
type allVocabs struct {
	Texts  []string `json:"texts"`
	Vocabs map[string]struct {
		NVocab int `json:"n_vocab"`
		BOS    int `json:"bos"`
		EOS    int `json:"eos"`
		Cases  []struct {
			TextIndex                   int    `json:"text_index"`
			IDsAddSpecial               []int  `json:"ids_add_special"`
			IDsNoSpecial                []int  `json:"ids_no_special"`
			IDsAddSpecialParseSpecial   []int  `json:"ids_add_special_parse_special"`
			Detokenized                 string `json:"detokenized"`
			DetokenizedFromIDsNoSpecial string `json:"detokenized_from_ids_no_special"`
		} `json:"cases"`
	} `json:"vocabs"`
}

func readJSON(tb testing.TB, rel string, v any) {
	tb.Helper()
	data, err := os.ReadFile(sharedPath(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
}
