package tokenizer

import (
	"os"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
)

// BenchmarkLoad measures FromGGUF alone (the GGUF is parsed once) and
// BenchmarkOpenAndLoad the whole path from the file.
func BenchmarkLoad(b *testing.B) {
	for _, v := range []string{"ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf", "ggml-vocab-llama-spm.gguf"} {
		b.Run(v, func(b *testing.B) {
			f, err := gguf.Open(sharedPath(b, "vocab/"+v))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FromGGUF(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenAndLoad(b *testing.B) {
	p := sharedPath(b, "vocab/ggml-vocab-llama-bpe.gguf")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := loadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// benchText is about 100 KB of mixed prose, code, numbers and non-Latin
// text.
func benchText(b *testing.B) string {
	data, err := os.ReadFile(sharedPath(b, "golden/stories260K/ppl_text.txt"))
	if err != nil {
		b.Fatal(err)
	}
	mixed := string(data) + "\nfunc main() { fmt.Println(\"héllo\", 12345, 3.14159) }\n" +
		"нещо на Български 我想在apple工作1314151天～ 🦙🦙 I've been 'told he's there\n\t\t  \n"
	return strings.Repeat(mixed, 100_000/len(mixed)+1)
}

func BenchmarkEncode(b *testing.B) {
	for _, v := range []string{"ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf", "ggml-vocab-deepseek-llm.gguf", "ggml-vocab-llama-spm.gguf"} {
		b.Run(v, func(b *testing.B) {
			tok := loadShared(b, "vocab/"+v)
			text := benchText(b)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				tok.Encode(text, true, true)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := loadShared(b, "vocab/ggml-vocab-llama-bpe.gguf")
	text := benchText(b)
	ids := tok.Encode(text, true, false)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tok.Decode(ids, true)
	}
}
