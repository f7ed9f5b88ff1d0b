package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sharedDir = "../../shared"

func sharedPath(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedDir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test data %s not found (../shared is absent in a plain clone): %v", p, err)
	}
	return p
}

func TestOpenStories260K(t *testing.T) {
	f, err := Open(sharedPath(t, "models/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if arch, err := f.String("general.architecture"); err != nil || arch != "llama" {
		t.Fatalf("architecture = %q, %v", arch, err)
	}
	if n, err := f.Uint("llama.block_count"); err != nil || n != 5 {
		t.Fatalf("block_count = %d, %v", n, err)
	}
	if eps, err := f.Float("llama.attention.layer_norm_rms_epsilon"); err != nil || float32(eps) != 1e-5 {
		t.Fatalf("eps = %v, %v", eps, err)
	}
	toks, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil || len(toks) != 512 {
		t.Fatalf("tokens: %d, %v", len(toks), err)
	}
	if len(f.Tensors) != 48 {
		t.Fatalf("%d tensors, want 48", len(f.Tensors))
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || emb.Type != TypeF32 || !reflect.DeepEqual(emb.Shape, []uint64{64, 512}) {
		t.Fatalf("token_embd.weight = %+v", emb)
	}
	out, _ := f.Tensor("output.weight")
	if !bytes.Equal(f.TensorData(emb), f.TensorData(out)) {
		t.Fatal("output.weight should be bit-identical to token_embd.weight (golden README)")
	}
	if _, err := f.String("no.such.key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key error %v does not wrap ErrNotFound", err)
	}
	if _, err := f.Uint("general.architecture"); err == nil || !strings.Contains(err.Error(), "string") {
		t.Fatalf("type mismatch error = %v", err)
	}
}

func TestOpenEveryShippedFile(t *testing.T) {
	var paths []string
	for _, pat := range []string{"models/*.gguf", "vocab/*.gguf"} {
		m, _ := filepath.Glob(filepath.Join(sharedDir, pat))
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		t.Skip("no GGUF files under ../shared (absent in a plain clone)")
	}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if _, err := f.String("general.architecture"); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		f.Close()
	}
}

// TestRoundTrip writes every kind of metadata value and a few tensors and
// reads them back unchanged.
func TestRoundTrip(t *testing.T) {
	var b Builder
	meta := []KV{}
	add := func(k string, x any) {
		b.Set(k, x)
		v, err := valueOf(x)
		if err != nil {
			t.Fatal(err)
		}
		meta = append(meta, KV{k, v})
	}
	add("general.architecture", "llama")
	add("u8", uint8(200))
	add("i8", int8(-5))
	add("u16", uint16(60000))
	add("i16", int16(-30000))
	add("u32", uint32(4e9))
	add("i32", int32(-2e9))
	add("f32", float32(1.5))
	add("b", true)
	add("u64", uint64(1<<60))
	add("i64", int64(-1<<60))
	add("f64", 2.25)
	add("s", "héllo")
	add("as", []string{"a", "", "ccc"})
	add("af", []float32{1, -2, 3.5})
	add("ai", []int32{-1, 2})
	add("ab", []bool{true, false})
	add("empty", []uint64{})
	add("nested", []Value{{Type: TypeArray, Elem: TypeInt32, Data: []int32{1, 2}}, {Type: TypeArray, Elem: TypeInt32, Data: []int32{3}}})
	add("general.alignment", uint32(64))
	f32 := make([]byte, 4*6)
	for i := range f32 {
		f32[i] = byte(i)
	}
	b.AddTensor("a", TypeF32, []uint64{3, 2}, f32)
	q := make([]byte, 34*2)
	q[5] = 7
	b.AddTensor("b", TypeQ8_0, []uint64{64}, q)
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Fatalf("metadata differs:\n got %+v\nwant %+v", f.Metadata, meta)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Fatalf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	ta, _ := f.Tensor("a")
	tb, _ := f.Tensor("b")
	if !bytes.Equal(f.TensorData(ta), f32) || !bytes.Equal(f.TensorData(tb), q) || tb.Offset%64 != 0 {
		t.Fatalf("tensor data differs: %+v %+v", ta, tb)
	}
}

func TestBuilderErrors(t *testing.T) {
	cases := map[string]func(b *Builder){
		"dup key":  func(b *Builder) { b.Set("k", "a"); b.Set("k", "b") },
		"bad type": func(b *Builder) { b.Set("k", struct{}{}) },
		"dup tensor": func(b *Builder) {
			b.AddTensor("t", TypeF32, []uint64{1}, make([]byte, 4))
			b.AddTensor("t", TypeF32, []uint64{1}, make([]byte, 4))
		},
		"size":         func(b *Builder) { b.AddTensor("t", TypeF32, []uint64{2}, make([]byte, 4)) },
		"block":        func(b *Builder) { b.AddTensor("t", TypeQ4_0, []uint64{31}, make([]byte, 18)) },
		"dims":         func(b *Builder) { b.AddTensor("t", TypeF32, []uint64{1, 1, 1, 1, 1}, make([]byte, 4)) },
		"bad align":    func(b *Builder) { b.Set("general.alignment", uint32(3)) },
		"mixed nested": func(b *Builder) { b.Set("k", []Value{{Type: TypeArray, Elem: TypeInt32}, {Type: TypeString}}) },
	}
	for name, fn := range cases {
		var b Builder
		fn(&b)
		if _, err := b.WriteTo(&bytes.Buffer{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// minimalFile returns a valid file with one F32 tensor of 4 elements.
func minimalFile(t testing.TB) []byte {
	var b Builder
	b.Set("general.architecture", "llama")
	b.AddTensor("w", TypeF32, []uint64{4}, make([]byte, 16))
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBadInput(t *testing.T) {
	good := minimalFile(t)
	le := binary.LittleEndian
	mod := func(fn func(b []byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	// Offsets in the minimal file: magic 0, version 4, n_tensors 8, n_kv 16,
	// key length 24, key 32.. ("general.architecture" = 20 bytes), type 52,
	// string length 56, "llama" 64..69, tensor name length 69.
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"short magic", []byte("GG"), "unexpected end"},
		{"wrong magic", []byte("GGML\x03\x00\x00\x00"), "not a GGUF file"},
		{"version 1", mod(func(b []byte) []byte { le.PutUint32(b[4:], 1); return b }), "version 1"},
		{"version 9", mod(func(b []byte) []byte { le.PutUint32(b[4:], 9); return b }), "unsupported GGUF version"},
		{"big endian", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 3); return b }), "big-endian"},
		{"truncated header", good[:20], "unexpected end"},
		{"absurd kv count", mod(func(b []byte) []byte { le.PutUint64(b[16:], 1<<62); return b }), "metadata count"},
		{"absurd tensor count", mod(func(b []byte) []byte { le.PutUint64(b[8:], 1<<62); return b }), "tensor count"},
		{"absurd key length", mod(func(b []byte) []byte { le.PutUint64(b[24:], 1<<40); return b }), "string of length"},
		{"unknown value type", mod(func(b []byte) []byte { le.PutUint32(b[52:], 99); return b }), "unknown value type"},
		{"absurd string length", mod(func(b []byte) []byte { le.PutUint64(b[56:], 1<<50); return b }), "string of length"},
		{"tensor data past end", good[:len(good)-20], "past the end"},
		{"truncated tensor infos", good[:75], "tensor info 0"},
	}
	for _, c := range cases {
		_, err := Parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestBadTensorInfo(t *testing.T) {
	// Rewrite the dimension count of a valid file's only tensor info
	// (name length 8 at 24, "w" at 32, n_dims at 33) to 5.
	var b0 Builder
	b0.AddTensor("w", TypeF32, []uint64{4}, make([]byte, 16))
	var buf0 bytes.Buffer
	if _, err := b0.WriteTo(&buf0); err != nil {
		t.Fatal(err)
	}
	fiveDims := buf0.Bytes()
	binary.LittleEndian.PutUint32(fiveDims[24+8+1:], 5)
	if _, err := Parse(fiveDims); err == nil || !strings.Contains(err.Error(), "dimensions") {
		t.Errorf("5 dims: %v", err)
	}
	// Unknown tensor type and a huge shape.
	var b Builder
	b.AddTensor("w", TypeF32, []uint64{4}, make([]byte, 16))
	var buf bytes.Buffer
	b.WriteTo(&buf)
	data := buf.Bytes()
	typOff := 24 + 8 + 1 + 4 + 8
	bad := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[typOff:], 77)
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "unsupported tensor type") {
		t.Errorf("unknown type: %v", err)
	}
	bad = append([]byte(nil), data...)
	binary.LittleEndian.PutUint64(bad[24+8+1+4:], 1<<62)
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "too many elements") {
		t.Errorf("huge shape: %v", err)
	}
	bad = append([]byte(nil), data...)
	binary.LittleEndian.PutUint64(bad[typOff+4:], 3)
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "not aligned") {
		t.Errorf("misaligned offset: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "empty file") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing.gguf")); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Errorf("directory: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(minimalFile(f))
	if data, err := os.ReadFile(filepath.Join(sharedDir, "models/stories260K-q4_0.gguf")); err == nil {
		f.Add(data[:4096])
	}
	f.Add(longKeyFile(f, 100_000))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			if len(err.Error()) > maxErrLen {
				t.Fatalf("error of %d bytes: %.200s...", len(err.Error()), err)
			}
			return
		}
		for i := range g.Tensors {
			_ = g.TensorData(&g.Tensors[i])
		}
		for _, kv := range g.Metadata {
			_ = kv.Value.Format(8)
		}
	})
}

// maxErrLen bounds a reader error: names read from the file are quoted at
// most 80 bytes long.
const maxErrLen = 1024

// longKeyFile is a GGUF file whose one metadata key is n bytes long and
// whose value type is invalid, as a corrupted key length makes it.
func longKeyFile(t testing.TB, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString(Magic)
	le(uint32(3))
	le(uint64(0)) // tensors
	le(uint64(1)) // metadata
	le(uint64(n)) // key length
	b.WriteString(strings.Repeat("k", n))
	le(uint32(99)) // no such value type
	b.Write(make([]byte, 16))
	return b.Bytes()
}

// A key corrupted to 100 KB is quoted, not echoed: the error used to be
// 256 KB long.
func TestErrorsQuoteLittle(t *testing.T) {
	_, err := Parse(longKeyFile(t, 100_000))
	if err == nil {
		t.Fatal("no error")
	}
	if len(err.Error()) > maxErrLen || !strings.Contains(err.Error(), "100000 bytes") {
		t.Errorf("error of %d bytes: %.300s", len(err.Error()), err)
	}
}

// Types kvgo cannot read are named as ggml names them (type 16 read
// "type(16)").
func TestTypeNames(t *testing.T) {
	for typ, want := range map[TensorType]string{0: "F32", 16: "IQ2_XXS", 23: "IQ4_XS", 29: "IQ1_M", 39: "MXFP4", 1000: "type(1000)"} {
		if got := typ.String(); got != want {
			t.Errorf("type %d: %q, want %q", uint32(typ), got, want)
		}
	}
	if TensorType(16).Known() {
		t.Error("IQ2_XXS is known: kvgo has no layout for it")
	}
}

func TestInt32sWidens(t *testing.T) {
	var b Builder
	b.Set("i8", []int8{-1, 2})
	b.Set("u16", []uint16{65535})
	b.Set("u32", []uint32{7})
	b.Set("u32big", []uint32{1 << 31})
	b.Set("f", []float32{1})
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]int32{"i8": {-1, 2}, "u16": {65535}, "u32": {7}} {
		if got, err := f.Int32s(key); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, %v", key, got, err)
		}
	}
	if _, err := f.Int32s("u32big"); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("u32 beyond int32: %v", err)
	}
	if _, err := f.Int32s("f"); err == nil {
		t.Error("float array accepted as int32s")
	}
}
