package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/golden"
)

// kvgo runs the command line in-process and returns exit code and output.
func kvgo(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}} {
		code, out, _ := kvgo(t, args...)
		if code != 0 || !strings.Contains(out, "perplexity") || !strings.Contains(out, "tokenize") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
	for _, c := range commands() {
		code, _, errOut := kvgo(t, c.name, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: kvgo "+c.name) {
			t.Errorf("%s --help: exit %d, %q", c.name, code, errOut)
		}
	}
}

var summaryLine = regexp.MustCompile(`^prompt: \d+ tokens, [\d.]+ tok/s \| generated: \d+ tokens, [\d.]+ tok/s \| KV: .* of a full f16 cache .*\n$`)

func TestRunEmbeddedModel(t *testing.T) {
	code, out, errOut := kvgo(t, "run", "-p", "The quick brown fox", "-n", "12", "--temp", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.TrimSpace(out) == "" {
		t.Error("no text generated")
	}
	if !summaryLine.MatchString(errOut) {
		t.Errorf("summary line %q does not have the documented form", errOut)
	}
	// Greedy is deterministic.
	_, out2, _ := kvgo(t, "run", "-p", "The quick brown fox", "-n", "12", "--temp", "0")
	if out != out2 {
		t.Errorf("greedy runs differ: %q vs %q", out, out2)
	}
}

func TestRunMatchesLlamaCppGreedy(t *testing.T) {
	var g struct {
		Prompt        string `json:"prompt"`
		GeneratedText string `json:"generated_text"`
	}
	golden.ReadJSON(t, "golden/stories260K/greedy.json", &g)
	model := golden.Path(t, "models/stories260K.gguf")
	for _, kvRecipe := range []string{"f32", "f16"} {
		code, out, errOut := kvgo(t, "run", "-m", model, "-p", g.Prompt, "-n", "64", "--temp", "0", "--ignore-eos", "--kv", kvRecipe)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if out != g.GeneratedText+"\n" {
			t.Errorf("--kv %s:\n got %q\nwant %q", kvRecipe, out, g.GeneratedText)
		}
	}
}

func TestTokenizeJSON(t *testing.T) {
	var doc struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids_with_bos_parse_special_false"`
		} `json:"cases"`
	}
	golden.ReadJSON(t, "golden/stories260K/tokenization.json", &doc)
	model := golden.Path(t, "models/stories260K.gguf")
	for _, c := range doc.Cases {
		code, out, errOut := kvgo(t, "tokenize", "-m", model, "--json", "--", c.Text)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", c.Text, code, errOut)
		}
		var ids []int
		if err := json.Unmarshal([]byte(out), &ids); err != nil {
			t.Fatalf("%q: output %q is not a JSON array: %v", c.Text, out, err)
		}
		if len(ids) != len(c.IDs) || (len(ids) > 0 && !equal(ids, c.IDs)) {
			t.Errorf("%q: got %v, llama.cpp %v", c.Text, ids, c.IDs)
		}
	}
}

func equal(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestPerplexityMatchesLlamaCpp(t *testing.T) {
	model := golden.Path(t, "models/stories260K.gguf")
	text := golden.Path(t, "golden/stories260K/ppl_text.txt")
	code, out, errOut := kvgo(t, "perplexity", "-m", model, "-f", text, "--ctx", "256", "--kv", "f32")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// llama-perplexity: "Final estimate: PPL = 4.1801 +/- 0.18818".
	if strings.TrimSpace(out) != "Final estimate: PPL = 4.1801 +/- 0.18818" {
		t.Errorf("got %q", out)
	}
}

func TestInfo(t *testing.T) {
	code, out, errOut := kvgo(t, "info", golden.Path(t, "models/stories260K-q8_0.gguf"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"architecture:      llama", "heads / kv heads:  8 / 4 (head dim 8)", "Q8_0 x32", "F16 x5", "context length:    2048", "tokenizer:         llama, 512 tokens", "chat template:     absent"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
}

func TestGenThenRun(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []string{"q8_0", "q4_k", "f16"} {
		path := filepath.Join(dir, typ+".gguf")
		if code, _, errOut := kvgo(t, "gen", "--shape", "tiny", "--type", typ, "-o", path); code != 0 {
			t.Fatalf("gen %s: exit %d: %s", typ, code, errOut)
		}
		code, out, errOut := kvgo(t, "info", path)
		if code != 0 || !strings.Contains(out, strings.ToUpper(typ)) {
			t.Fatalf("info %s: exit %d: %s%s", typ, code, out, errOut)
		}
		if code, _, errOut := kvgo(t, "run", "-m", path, "-p", "hello world", "-n", "4", "--temp", "0"); code != 0 {
			t.Fatalf("run %s: exit %d: %s", typ, code, errOut)
		}
	}
}

// TestBadInput checks that every kind of bad input ends with exit code 1
// and one clear line on stderr, never a panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid, err := os.ReadFile(golden.Path(t, "models/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	absurd := append([]byte(nil), valid...)
	binary.LittleEndian.PutUint64(absurd[8:], 1<<60) // tensor count
	var b gguf.Builder
	b.Set("general.architecture", "gptj")
	b.AddTensor("token_embd.weight", gguf.TypeF32, []uint64{4, 2}, make([]byte, 32))
	var unknownArch bytes.Buffer
	b.WriteTo(&unknownArch)
	var b2 gguf.Builder
	b2.Set("general.architecture", "llama")
	b2.AddTensor("w", gguf.TypeF32, []uint64{4}, make([]byte, 16))
	var badType bytes.Buffer
	b2.WriteTo(&badType)
	bt := badType.Bytes()
	// The tensor type field follows name (8+1), n_dims (4) and one dim (8).
	off := bytes.Index(bt, []byte("\x01\x00\x00\x00\x00\x00\x00\x00w")) + 9 + 4 + 8
	binary.LittleEndian.PutUint32(bt[off:], 99)
	longPrompt := strings.Repeat("once upon a time ", 200)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"empty file", []string{"info", write("empty.gguf", nil)}, "empty file"},
		{"truncated header", []string{"info", write("trunc.gguf", valid[:20])}, "unexpected end"},
		{"tensor data past end", []string{"run", "-m", write("cut.gguf", valid[:len(valid)-1000]), "-p", "x"}, "past the end"},
		{"absurd counts", []string{"info", write("absurd.gguf", absurd)}, "impossible"},
		{"unknown architecture", []string{"run", "-m", write("arch.gguf", unknownArch.Bytes()), "-p", "x"}, `unsupported architecture "gptj"`},
		{"unsupported tensor type", []string{"info", write("type.gguf", bt)}, "unsupported tensor type"},
		{"not a gguf", []string{"info", write("text.gguf", []byte("hello world, this is text"))}, "not a GGUF file"},
		{"missing file", []string{"info", filepath.Join(dir, "nope.gguf")}, "no such file"},
		{"prompt longer than context", []string{"run", "-p", longPrompt, "--ctx", "64"}, "context length exceeded"},
		{"context beyond model", []string{"run", "-p", "x", "--ctx", "999999"}, "model's context length"},
		{"invalid utf-8", []string{"run", "-p", "\xff\xfe"}, "not valid UTF-8"},
		{"unknown recipe", []string{"run", "-p", "x", "--kv", "bogus"}, `unknown method "bogus"`},
		{"negative temperature", []string{"run", "-p", "x", "--temp", "-1"}, "negative"},
		{"bad -n", []string{"run", "-p", "x", "-n", "-5"}, "invalid value -5"},
		{"unknown flag", []string{"run", "--frobnicate"}, "flag provided but not defined"},
		{"no prompt", []string{"run"}, "prompt is required"},
		{"unknown command", []string{"fly"}, "unknown command"},
		{"gen bad type", []string{"gen", "--type", "q9", "-o", filepath.Join(dir, "x.gguf")}, "unknown weight type"},
		{"gen bad shape", []string{"gen", "--shape", "gpt5", "-o", filepath.Join(dir, "x.gguf")}, "unknown shape"},
		{"rag zero chunk store", []string{"eval", "rag", "--chunk-mem", "0"}, "invalid value \"0\" for --chunk-mem"},
		{"perplexity text too short", []string{"perplexity", "-f", write("short.txt", []byte("hi")), "--ctx", "256"}, "fewer than one chunk"},
	}
	for _, c := range cases {
		code, _, errOut := kvgo(t, c.args...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (stderr %q)", c.name, code, errOut)
		}
		if !strings.Contains(errOut, c.want) {
			t.Errorf("%s: stderr %q does not contain %q", c.name, errOut, c.want)
		}
		if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
			t.Errorf("%s: stack trace in output: %s", c.name, errOut)
		}
	}
}

// TestBenchCPUProfile checks that the profile of several tests (each its
// own section) is written as one profile pprof reads.
func TestBenchCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	code, _, errOut := kvgo(t, "bench", "-p", "8", "-n", "4", "-d", "0,16", "-r", "1", "--cpuprofile", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkCPUProfile(t, path)
	code, _, errOut = kvgo(t, "bench", "-p", "8", "-n", "0", "-d", "0", "-r", "1", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir"))
	if code == 0 || !strings.Contains(errOut, "no such") {
		t.Errorf("unwritable profile path: exit %d, %q", code, errOut)
	}
}

// TestEvalRAGCPUProfile: kvgo eval rag --cpuprofile writes a profile of the
// measured questions that pprof reads.
func TestEvalRAGCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rag.prof")
	code, _, errOut := kvgo(t, "eval", "rag", "--time-only", "--docs", "4", "--questions", "1", "--warm", "1", "--kv", "naive", "--cpuprofile", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkCPUProfile(t, path)
}

// checkCPUProfile fails t unless path holds one CPU profile that pprof
// reads (several sections merged into one, when a command profiles more
// than one test).
func checkCPUProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("profile does not parse: %v", err)
	}
	if len(p.SampleType) == 0 || p.SampleType[len(p.SampleType)-1].Unit != "nanoseconds" {
		t.Errorf("sample types %v, want CPU time", p.SampleType)
	}
}

// TestBenchDefaultDepths: the default depths that the embedded model's
// context (2048) or a recipe cannot run are left out with a note, and the
// others run; depths given with -d are refused before anything runs.
func TestBenchDefaultDepths(t *testing.T) {
	code, out, errOut := kvgo(t, "bench", "-p", "8", "-n", "4", "-r", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, d := range []string{"2048", "8192"} {
		if !strings.Contains(errOut, "depth "+d+" left out (-d sets the depths): depth "+d+" + 8 tokens exceeds the model's context of 2048") {
			t.Errorf("no note on depth %s: %q", d, errOut)
		}
	}
	var rep struct {
		Results []struct{ Depth int }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Depth != 0 || rep.Results[1].Depth != 0 {
		t.Errorf("results %+v, want pp and tg at depth 0", rep.Results)
	}
	// A read budget of 64 tokens cannot run at depth 0 (8 tokens): no
	// default depth is left.
	code, _, errOut = kvgo(t, "bench", "-p", "8", "-n", "4", "-r", "1", "--kv", "quest(budget=64)")
	if code == 0 || !strings.Contains(errOut, "no default depth (0,2048,8192) suits") || !strings.Contains(errOut, "read budget of 64 tokens exceeds the context of 8 tokens") {
		t.Errorf("quest(budget=64) at the default depths: exit %d, %q", code, errOut)
	}
	code, out, errOut = kvgo(t, "bench", "-p", "8", "-n", "4", "-r", "1", "-d", "0,4096")
	if code == 0 || !strings.Contains(errOut, "depth 4096 + 8 tokens exceeds the model's context of 2048") || strings.Contains(out, "pp8") {
		t.Errorf("-d 0,4096: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
