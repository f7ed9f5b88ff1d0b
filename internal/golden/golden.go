// Package golden loads the llama.cpp reference outputs in ../shared/golden
// for tests. Tests skip with a clear message when ../shared is absent.
package golden

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Shared returns the absolute path of the shared test-data folder, found
// next to the repository root, or skips the test when it is absent.
func Shared(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
	if _, err := os.Stat(filepath.Join(dir, "golden")); err != nil {
		t.Skipf("shared test data not found at %s (absent in a plain clone): %v", dir, err)
	}
	return dir
}

// Path joins rel onto the shared folder (skipping when absent).
func Path(t testing.TB, rel string) string {
	return filepath.Join(Shared(t), rel)
}

// LogitRun is one entry of golden/stories260K/logits.json.
type LogitRun struct {
	Name       string `json:"name"`
	Model      string `json:"model"`
	Prompt     string `json:"prompt"`
	PromptIDs  []int  `json:"prompt_ids"`
	NVocab     int    `json:"n_vocab"`
	CacheTypeK string `json:"cache_type_k"`
	File       string `json:"file"`
}

// LogitRuns reads logits.json.
func LogitRuns(t testing.TB) []LogitRun {
	var doc struct {
		Runs []LogitRun `json:"runs"`
	}
	ReadJSON(t, "golden/stories260K/logits.json", &doc)
	return doc.Runs
}

// ReadJSON decodes a JSON file under the shared folder into v.
func ReadJSON(t testing.TB, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// F32 reads a raw little-endian float32 file under the shared folder.
func F32(t testing.TB, rel string) []float32 {
	t.Helper()
	data, err := os.ReadFile(Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// MaxAbsDiff is the largest |a[i]-b[i]|.
func MaxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// Argmax returns the index of the first maximum.
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
