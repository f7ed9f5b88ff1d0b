package chunk

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
)

var shape = kv.Shape{Layers: 2, KVHeads: 2, HeadDim: 64}

// codecs builds a codec-only config by the name of a kv/quant method.
func config(t testing.TB, name string, args kv.Args) func() (kv.Config, error) {
	return func() (kv.Config, error) {
		for _, m := range kvquant.Methods {
			if m.Name == name {
				a := kv.Args{}
				for _, p := range m.Params {
					v, _ := p.Parse(p.Default)
					a[p.Name] = v
				}
				for k, v := range args {
					a[k] = v
				}
				k, v, err := m.NewCodec(a)
				return kv.Config{K: k, V: v}, err
			}
		}
		t.Fatalf("no codec %s", name)
		return kv.Config{}, nil
	}
}

// entry makes a chunk cache of n random tokens at positions start.. .
func entry(t testing.TB, lay Layout, start, n int, seed uint64) *Entry {
	cfg, err := lay.Config()
	if err != nil {
		t.Fatal(err)
	}
	c, err := kv.New(lay.Shape, cfg, lay.Capacity)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(start + i)
	}
	if err := c.Begin(pos); err != nil {
		t.Fatal(err)
	}
	w := lay.Shape.KVHeads * lay.Shape.HeadDim
	for l := 0; l < lay.Shape.Layers; l++ {
		k, v := make([]float32, n*w), make([]float32, n*w)
		for i := range k {
			k[i], v[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		c.Store(l, k, v)
	}
	c.End()
	c.Seal()
	toks := make([]int, n)
	for i := range toks {
		toks[i] = int(seed)*1000 + i
	}
	st := &kv.ChunkStats{Before: []kv.ChunkHash{{1}, {2}}, Inter: []float32{0.5, 0.25}, A: []float32{1, 2}, B: []float32{3, 4}, Context: make([]float32, n)}
	return &Entry{Cache: c, Start: int32(start), Tokens: n, Hash: kv.TokenHash(toks), Stats: st}
}

func keyOf(e *Entry, tenant string) Key {
	return Key{Model: "model-a", Codec: "f16", Tenant: tenant, Tokens: e.Hash}
}

// sameCache compares every stored vector of two caches exactly.
func sameCache(t *testing.T, a, b *kv.Cache) {
	t.Helper()
	sh := a.Shape()
	for l := 0; l < sh.Layers; l++ {
		for h := 0; h < sh.KVHeads; h++ {
			sa, sb := a.Stream(l, h), b.Stream(l, h)
			if sa.Len() != sb.Len() {
				t.Fatalf("stream %d/%d: %d vs %d tokens", l, h, sa.Len(), sb.Len())
			}
			ka, va := make([]float32, sa.Dim()), make([]float32, sa.ValueDim())
			kb, vb := make([]float32, sb.Dim()), make([]float32, sb.ValueDim())
			for i := 0; i < sa.Len(); i++ {
				sa.Vector(i, ka, va)
				sb.Vector(i, kb, vb)
				for c := range ka {
					if ka[c] != kb[c] || va[c] != vb[c] {
						t.Fatalf("stream %d/%d token %d channel %d: %g/%g vs %g/%g", l, h, i, c, ka[c], va[c], kb[c], vb[c])
					}
				}
				if sa.Positions()[i] != sb.Positions()[i] {
					t.Fatalf("positions differ")
				}
			}
		}
	}
}

// TestEntryRoundTrip: an entry's message rebuilds it bit for bit, in a
// per-token codec and in KIVI (pages plus an F16 tail), and a KIVI-4 entry
// is about a third of an F16 one.
func TestEntryRoundTrip(t *testing.T) {
	sizes := map[string]int64{}
	for _, c := range []struct {
		name string
		args kv.Args
	}{{"f16", nil}, {"q8", nil}, {"kivi", kv.Args{"bits": "4", "group": 32, "residual": 128}}} {
		lay := Layout{Shape: shape, Config: config(t, c.name, c.args), Capacity: 4096}
		if c.name == "kivi" {
			lay.Config = config(t, "kivi", kv.Args{"bits": "4"})
		}
		e := entry(t, lay, 100, 160, 7)
		b, err := Marshal("model-a", e)
		if err != nil {
			t.Fatal(err)
		}
		sizes[c.name] = e.Cache.Bytes()
		got, err := Unmarshal("model-a", keyOf(e, ""), lay, b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.Start != 100 || got.Tokens != 160 || got.Stats == nil || got.Stats.Inter[1] != 0.25 || got.Stats.B[1] != 4 {
			t.Fatalf("%s: %+v", c.name, got)
		}
		sameCache(t, e.Cache, got.Cache)
		t.Logf("%-5s %d tokens: %d bytes in RAM, %d on the wire", c.name, e.Tokens, e.Cache.Bytes(), len(b))
	}
	if r := float64(sizes["f16"]) / float64(sizes["kivi"]); r < 2.5 {
		t.Errorf("an f16 chunk is only %.2f times a KIVI-4 one", r)
	}
}

// TestEntryFaults: a flipped byte, a truncation, another model's entry or
// another chunk's are refused, never rebuilt.
func TestEntryFaults(t *testing.T) {
	lay := Layout{Shape: shape, Config: config(t, "f16", nil), Capacity: 4096}
	e := entry(t, lay, 0, 40, 3)
	b, _ := Marshal("model-a", e)
	k := keyOf(e, "")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		bad := append([]byte(nil), b...)
		bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
		if _, err := Unmarshal("model-a", k, lay, bad); err == nil {
			t.Fatalf("a flipped byte was accepted")
		}
		if _, err := Unmarshal("model-a", k, lay, b[:rng.IntN(len(b))]); err == nil {
			t.Fatalf("a truncated entry was accepted")
		}
	}
	if _, err := Unmarshal("model-b", k, lay, b); !errors.Is(err, kv.ErrPageModel) {
		t.Errorf("another model's entry: %v", err)
	}
	other := k
	other.Tokens = kv.ChunkHash{9}
	if _, err := Unmarshal("model-a", other, lay, b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("another chunk's entry: %v", err)
	}
	lay8 := Layout{Shape: shape, Config: config(t, "q8", nil), Capacity: 4096}
	if _, err := Unmarshal("model-a", k, lay8, b); !errors.Is(err, kv.ErrPageCodec) {
		t.Errorf("an f16 entry read as q8: %v", err)
	}
}

// TestUtilityEviction: a full store evicts, never refuses; the entry that
// was hit keeps its place while newer unused ones go.
func TestUtilityEviction(t *testing.T) {
	lay := Layout{Shape: shape, Config: config(t, "f16", nil), Capacity: 4096}
	ctx := context.Background()
	es := make([]*Entry, 6)
	for i := range es {
		es[i] = entry(t, lay, 0, 64, uint64(10+i))
	}
	one := es[0].Bytes()
	s := New(3*one + one/2)
	s.Put(keyOf(es[0], ""), es[0])
	for range 5 {
		if got, tier := s.Get(ctx, keyOf(es[0], ""), lay); got == nil || tier != "ram" {
			t.Fatal("entry 0 missing")
		}
	}
	for _, e := range es[1:] {
		s.Put(keyOf(e, ""), e)
		if s.Bytes() > s.Budget {
			t.Fatalf("%d bytes held, budget %d", s.Bytes(), s.Budget)
		}
	}
	if got, _ := s.Get(ctx, keyOf(es[0], ""), lay); got == nil {
		t.Error("the popular entry was evicted")
	}
	if got, _ := s.Get(ctx, keyOf(es[5], ""), lay); got == nil {
		t.Error("the newest entry was refused")
	}
	if got, _ := s.Get(ctx, keyOf(es[1], ""), lay); got != nil {
		t.Error("an unused old entry outlived the budget")
	}
	st := s.Stats()[0]
	if st.Entries != 3 || st.Evictions != 3 {
		t.Errorf("ram stats %+v", st)
	}
}

// TestDiskTier: entries survive a new Store over the same directory, a
// tenant's entry is not another's, and a corrupted file is dropped and
// counted, then replaced by the next Put.
func TestDiskTier(t *testing.T) {
	dir := t.TempDir()
	lay := Layout{Shape: shape, Config: config(t, "f16", nil), Capacity: 4096}
	ctx := context.Background()
	e := entry(t, lay, 5, 50, 42)
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := New(1<<20, d)
	s.Put(keyOf(e, "alice"), e)
	s.Flush()
	if d.Bytes() == 0 {
		t.Fatal("nothing written")
	}

	d2, _ := OpenDisk(dir) // a restart
	s2 := New(1<<20, d2)
	got, tier := s2.Get(ctx, keyOf(e, "alice"), lay)
	if got == nil || tier != "disk" {
		t.Fatalf("after a restart: %v from %q", got, tier)
	}
	sameCache(t, e.Cache, got.Cache)
	if got, _ := s2.Get(ctx, keyOf(e, "bob"), lay); got != nil {
		t.Fatal("bob read alice's chunk")
	}

	// Corrupt the file: the next reader drops it and misses.
	p := d2.Path(keyOf(e, "alice").ID())
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)
	s3 := New(1<<20, d2)
	if got, _ := s3.Get(ctx, keyOf(e, "alice"), lay); got != nil {
		t.Fatal("a corrupted file was served")
	}
	if st := s3.Stats()[1]; st.Corrupt != 1 {
		t.Errorf("disk stats %+v", st)
	}
	if _, err := os.Stat(p); err == nil {
		t.Error("the corrupted file is still there")
	}
	s3.Put(keyOf(e, "alice"), e)
	s3.Flush()
	if got, tier := New(1<<20, d2).Get(ctx, keyOf(e, "alice"), lay); got == nil || tier != "disk" {
		t.Error("the recomputed entry was not written back")
	}
}
