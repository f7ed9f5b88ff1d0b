package engine

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/internal/defaultmodel"
	"github.com/kvgo/kvgo/internal/golden"
)

// sharedModels are the files of ../shared/models (see its README): the
// four stories260K conversions and run 4 of kvgo-tiny.
var sharedModels = []string{"stories260K.gguf", "stories260K-f16.gguf", "stories260K-q8_0.gguf", "stories260K-q4_0.gguf", "kvgo-tiny.gguf"}

func identityOf(t *testing.T, path string) string {
	t.Helper()
	e, err := Load(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	id := e.Identity()
	if len(id) != 32 {
		t.Fatalf("%s: identity %q is not 32 hex digits", path, id)
	}
	return id
}

// Two engines that load the same file agree; every distinct file has an
// identity of its own, including two runs of kvgo-tiny whose headers are
// alike and whose weights differ.
func TestIdentitySameFileSameIdentity(t *testing.T) {
	dir := golden.Path(t, "models")
	seen := map[string]string{}
	for _, name := range append([]string{""}, sharedModels...) {
		path := name
		if name != "" {
			path = filepath.Join(dir, name)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("test model %s is absent: %v", path, err)
			}
		}
		a, b := identityOf(t, path), identityOf(t, path)
		if a != b {
			t.Errorf("%q loaded twice: identities %s and %s", path, a, b)
		}
		if other, ok := seen[a]; ok && !sameBytes(t, path, other) {
			t.Errorf("%q and %q share the identity %s", path, other, a)
		}
		seen[a] = path
	}
}

// sameBytes reports whether two model paths ("" = the embedded model)
// hold the same file: the embedded kvgo-tiny is a copy of the shared one.
func sameBytes(t *testing.T, a, b string) bool {
	t.Helper()
	read := func(p string) []byte {
		if p == "" {
			return defaultmodel.Bytes()
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	return string(read(a)) == string(read(b))
}

// Two checkpoints of kvgo-tiny (the embedded run 4 and the same weights
// trained one step further, emulated by moving every weight by one ulp)
// have the same tensor names, types and shapes: only their data tells
// them apart, which is why Identity hashes all of it. (Until run 4 was
// embedded, the shared file was the other checkpoint.)
func TestIdentityTellsCheckpointsOfOneArchitectureApart(t *testing.T) {
	run4, err := gguf.Parse(defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	data := defaultmodel.Bytes()
	for i := range run4.Tensors {
		ti := &run4.Tensors[i]
		if ti.Type != gguf.TypeF32 {
			continue
		}
		off := int(run4.DataOffset + ti.Offset)
		for j := 0; j < int(ti.Elements()); j++ {
			data[off+4*j] ^= 1 // the lowest bit of each little-endian float32
		}
	}
	run3, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	infos := func(f *gguf.File) []gguf.TensorInfo {
		out := append([]gguf.TensorInfo(nil), f.Tensors...)
		for i := range out {
			out[i].Offset = 0
		}
		return out
	}
	if !reflect.DeepEqual(infos(run3), infos(run4)) {
		t.Skip("the embedded kvgo-tiny and the shared one no longer have the same tensors; this test needs two checkpoints of one architecture")
	}
	if fileIdentity(run3) == fileIdentity(run4) {
		t.Error("two checkpoints of one architecture share an identity")
	}
}

// One changed byte of tensor data, or one changed hyper-parameter, makes
// another identity; the identity does not depend on how many cores hash.
func TestIdentityChanges(t *testing.T) {
	base := defaultmodel.Bytes()
	f, err := gguf.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	want := fileIdentity(f)

	prev := runtime.GOMAXPROCS(1)
	got := fileIdentity(f)
	runtime.GOMAXPROCS(prev)
	if got != want {
		t.Errorf("identity with one core %s, with %d cores %s", got, prev, want)
	}

	// The last byte of the last tensor, in the last chunk hashed.
	last := &f.Tensors[len(f.Tensors)-1]
	data := defaultmodel.Bytes()
	data[f.DataOffset+last.Offset+last.Size-1] ^= 1
	g, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if fileIdentity(g) == want {
		t.Errorf("changing one byte of %s kept the identity", last.Name)
	}

	// A hyper-parameter: the same file with another RoPE base.
	h, err := gguf.Parse(defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for i := range h.Metadata {
		if kv := &h.Metadata[i]; strings.HasSuffix(kv.Key, ".rope.freq_base") {
			kv.Value.Data = kv.Value.Data.(float32) * 2
			changed = true
		}
	}
	if !changed {
		t.Fatal("kvgo-tiny has no rope.freq_base")
	}
	if fileIdentity(h) == want {
		t.Error("changing the RoPE base kept the identity")
	}
}

// BenchmarkIdentity measures Identity on KVGO_IDENTITY_MODEL (a GGUF path,
// e.g. a 1 GB file made by `kvgo gen`), else on ../shared/models/kvgo-tiny.gguf.
// The file is in the page cache after the first iteration.
func BenchmarkIdentity(b *testing.B) {
	path := os.Getenv("KVGO_IDENTITY_MODEL")
	if path == "" {
		path = golden.Path(b, "models/kvgo-tiny.gguf")
	}
	f, err := gguf.Open(path)
	if err != nil {
		b.Skipf("no model to hash: %v", err)
	}
	defer f.Close()
	b.SetBytes(int64(f.Size()))
	for b.Loop() {
		fileIdentity(f)
	}
}
