package quant

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/kv"
)

// wireVariants are the parameter values the wire tests try for every
// method of Methods that has the parameter, in every combination, besides
// the defaults: q8/q4 sym and asym with groups 16, 32 and 64; KIVI 2 and
// 4 bits with groups 16, 32 and 64 (and the default residual, plus 0).
var wireVariants = map[string][]string{
	"mode":     {"sym", "asym"},
	"group":    {"16", "32", "64"},
	"bits":     {"2", "4"},
	"residual": {"128", "0"},
}

// wireCodecs returns every key and value codec that Methods builds with
// the defaults and wireVariants, plus 2-bit blocks outside KIVI, one per
// name. It fails the test if two codecs with different parameters share a
// name: the envelope identifies a page's layout by the codec's name.
func wireCodecs(t testing.TB) []kv.Codec {
	t.Helper()
	byName := map[string]string{}
	var out []kv.Codec
	add := func(c kv.Codec) {
		id := fmt.Sprintf("%#v", c)
		if prev, ok := byName[c.Name()]; ok {
			if prev != id {
				t.Fatalf("codecs %s and %s are both named %q", prev, id, c.Name())
			}
			return
		}
		byName[c.Name()] = id
		out = append(out, c)
	}
	for _, m := range Methods {
		// Every combination of the parameters' values.
		combos := []map[string]string{{}}
		for _, p := range m.Params {
			vals := append([]string{p.Default}, wireVariants[p.Name]...)
			var next []map[string]string
			for _, c := range combos {
				for _, v := range vals {
					n := map[string]string{p.Name: v}
					for k, x := range c {
						n[k] = x
					}
					next = append(next, n)
				}
			}
			combos = next
		}
		for _, c := range combos {
			a := kv.Args{}
			for _, p := range m.Params {
				v, err := p.Parse(c[p.Name])
				if err != nil {
					t.Fatalf("%s: %v", m.Name, err)
				}
				a[p.Name] = v
			}
			k, v, err := m.NewCodec(a)
			if err != nil {
				t.Fatalf("%s %v: %v", m.Name, c, err)
			}
			add(k)
			add(v)
		}
	}
	add(mustBlock(t, 2, 32, true))
	add(mustBlock(t, 2, 16, true))
	return out
}

// wirePage is a page under test and how it was made.
type wirePage struct {
	name string
	p    kv.Page
	full bool // no spare capacity: a rebuilt page has the same Bytes()
}

// wirePages builds the pages of codec c at width d that the round trip
// covers: full, partial, single-token and empty pages, pages after
// deletions (a few, and enough to shrink the allocation), every token
// deleted from a KIVI group, and values that are not finite.
func wirePages(rng *rand.Rand, c kv.Codec, d int) []wirePage {
	cp := kv.PageTokens
	if g := c.Group(); g > 0 {
		cp = g
	}
	mk := func(n int, del ...int) kv.Page {
		p := c.NewPage(d, cp)
		if n > 0 {
			p.Append(kvData(rng, n, d), n)
		}
		for _, i := range del {
			p.Delete(i)
		}
		return p
	}
	var shrinkDel []int
	for i := cp - 1; i >= 1 && len(shrinkDel) < cp*3/4; i -= 1 {
		shrinkDel = append(shrinkDel, i)
	}
	var allDel []int
	for i := cp - 1; i >= 0; i-- {
		allDel = append(allDel, i)
	}
	special := kvData(rng, cp, d)
	for i, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 1e-40, -1e-42, 7e4, -1e30} {
		special[(i*37+3)%len(special)] = v
	}
	sp := c.NewPage(d, cp)
	sp.Append(special, cp)
	pages := []wirePage{
		{"full", mk(cp), true},
		{"partial", mk(cp/2 + 1), false},
		{"single", mk(1), cp == 1},
		{"empty", mk(0), false},
		{"deleted", mk(cp, cp-1, cp/2, 0), false},
		{"shrunk", mk(cp, shrinkDel...), false},
		{"specials", sp, true},
	}
	if c.Group() > 0 {
		pages = append(pages, wirePage{"all-deleted", mk(cp, allDel...), false})
	}
	return pages
}

// wireDims are the head sizes of the round trip: real ones, one that the
// default group does not divide (40: blocks of 20, a planar remainder of
// 40 channels), a head smaller than the group, and an odd one.
var wireDims = []int{64, 128, 40, 8, 7}

const testModel = "sha256:5f1c0dbb-test-model"

// TestWireRoundTrip marshals every page of every codec, rebuilds it and
// checks that the copy is the same page: same Len, Bytes() the payload's
// size (the original's when it had no spare capacity), bit-identical
// Decode, Dot and AddWeighted for 1, 3 and 7 heads, the same envelope
// when marshaled again, and the same page after one more token appended.
func TestWireRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	codecs := wireCodecs(t)
	if len(codecs) < 30 {
		t.Fatalf("only %d codecs", len(codecs))
	}
	for _, c := range codecs {
		for _, d := range wireDims {
			for _, wp := range wirePages(rng, c, d) {
				name := fmt.Sprintf("%s/d=%d/%s", c.Name(), d, wp.name)
				b, err := kv.MarshalPage(testModel, c, wp.p)
				if err != nil {
					t.Fatalf("%s: marshal: %v", name, err)
				}
				q, err := kv.UnmarshalPage(testModel, c, d, b)
				if err != nil {
					t.Fatalf("%s: unmarshal: %v", name, err)
				}
				payload := len(b) - (26 + len(testModel) + len(c.Name()))
				if q.Bytes() != int64(payload) {
					t.Errorf("%s: rebuilt page holds %d bytes, its payload %d", name, q.Bytes(), payload)
				}
				if wp.full && q.Bytes() != wp.p.Bytes() {
					t.Errorf("%s: rebuilt page holds %d bytes, the original %d", name, q.Bytes(), wp.p.Bytes())
				}
				if q.Bytes() > wp.p.Bytes() {
					t.Errorf("%s: rebuilt page holds %d bytes, more than the original's %d", name, q.Bytes(), wp.p.Bytes())
				}
				samePage(t, name, rng, d, wp.p, q)
				b2, err := kv.MarshalPage(testModel, c, q)
				if err != nil || !bytes.Equal(b, b2) {
					t.Fatalf("%s: the rebuilt page marshals differently (err %v)", name, err)
				}
				// The rebuilt page keeps working as a page of its codec.
				if n := wp.p.Len(); c.Group() == 0 || (n == 0 && q.(*kiviKeyPage).sz == nil) {
					m := 1
					if c.Group() > 0 {
						m = c.Group()
					}
					x := kvData(rng, m, d)
					wp.p.Append(x, m)
					q.Append(x, m)
					samePage(t, name+"+append", rng, d, wp.p, q)
				}
			}
		}
	}
}

// samePage checks that b is a, bit for bit, through the Page interface.
func samePage(t *testing.T, name string, rng *rand.Rand, d int, a, b kv.Page) {
	t.Helper()
	n := a.Len()
	if b.Len() != n {
		t.Fatalf("%s: Len %d, want %d", name, b.Len(), n)
	}
	xa, xb := make([]float32, d), make([]float32, d)
	for i := 0; i < n; i++ {
		a.Decode(i, xa)
		b.Decode(i, xb)
		if !sameBits(xa, xb) {
			t.Fatalf("%s: token %d decodes differently", name, i)
		}
	}
	var sc kv.PageScratch
	for _, g := range []int{1, 3, 7} {
		q := make([]float32, g*d)
		for i := range q {
			q[i] = float32(rng.NormFloat64())
		}
		oa, ob := make([]float32, g*n), make([]float32, g*n)
		a.Dot(q, g, oa, &sc)
		b.Dot(q, g, ob, &sc)
		if !sameBits(oa, ob) {
			t.Fatalf("%s: Dot with %d heads differs", name, g)
		}
		w := make([]float32, g*n)
		for i := range w {
			if rng.IntN(4) > 0 {
				w[i] = rng.Float32()
			}
		}
		sa, sb := make([]float32, g*d), make([]float32, g*d)
		for i := range sa {
			sa[i] = float32(rng.NormFloat64())
		}
		copy(sb, sa)
		a.AddWeighted(w, g, sa, &sc)
		b.AddWeighted(w, g, sb, &sc)
		if !sameBits(sa, sb) {
			t.Fatalf("%s: AddWeighted with %d heads differs", name, g)
		}
	}
}

// TestWireLayout spells out one envelope byte by byte, as the format's
// documentation (kv/wire.go) describes it.
func TestWireLayout(t *testing.T) {
	p := F32{}.NewPage(2, 1)
	p.Append([]float32{1.5, -2}, 1)
	b, err := kv.MarshalPage("m", F32{}, p)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'K', 'V', 'P', 'G', // magic
		1, 0, // version
		1, 0, 'm', // model
		3, 0, 'f', '3', '2', // codec
		2, 0, 0, 0, // d
		1, 0, 0, 0, // tokens
		8, 0, 0, 0, // payload length
		0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0, // 1.5, -2
	}
	want = binary.LittleEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))
	if !bytes.Equal(b, want) {
		t.Fatalf("envelope\n% x\nwant\n% x", b, want)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/wire from the current codecs")

// TestWireGolden reads pages written by an earlier build
// (testdata/wire/<codec>.txt: per head size, the envelope in hex, then each
// token's decoded float32 bits) and checks that they still decode to the
// same bits and marshal back to the same bytes. It fails when a payload's
// layout, or a rule that derives it (BlockSize, the planar order), changes
// without kv.WireVersion; a change to an encoder alone does not touch it.
// -update rewrites the files from pages of 3 tokens encoded now.
func TestWireGolden(t *testing.T) {
	k2, v2 := mustKIVI(t, 2, 32, 128)
	k4, v4 := mustKIVI(t, 4, 32, 128)
	k216, _ := mustKIVI(t, 2, 16, 128)
	codecs := []kv.Codec{
		F32{}, F16{},
		mustBlock(t, 8, 32, false), mustBlock(t, 8, 32, true),
		mustBlock(t, 4, 32, false), mustBlock(t, 4, 32, true), mustBlock(t, 4, 16, false),
		mustBlock(t, 2, 32, true),
		k2, v2, k4, v4, k216,
	}
	for _, c := range codecs {
		path := filepath.Join("testdata", "wire", c.Name()+".txt")
		if *update {
			var out strings.Builder
			out.WriteString("# " + c.Name() + " pages of 3 tokens: d, the envelope (model \"golden\"), each token's decoded float32 bits\n")
			for _, d := range []int{40, 64} {
				rng := rand.New(rand.NewPCG(uint64(d), uint64(len(c.Name()))))
				p := c.NewPage(d, max(3, c.Group()))
				p.Append(kvData(rng, 3, d), 3)
				b, err := kv.MarshalPage("golden", c, p)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&out, "d=%d %x\n", d, b)
				x := make([]float32, d)
				for i := 0; i < p.Len(); i++ {
					p.Decode(i, x)
					for c, v := range x {
						if c > 0 {
							out.WriteByte(' ')
						}
						fmt.Fprintf(&out, "%08x", math.Float32bits(v))
					}
					out.WriteByte('\n')
				}
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		var p kv.Page
		var env []byte
		var d, tok int
		for ln, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
			where := fmt.Sprintf("%s:%d", path, ln+1)
			switch {
			case strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "d="):
				if p != nil && tok != p.Len() {
					t.Fatalf("%s: %d tokens listed, the page has %d", where, tok, p.Len())
				}
				var hx string
				if _, err := fmt.Sscanf(line, "d=%d %s", &d, &hx); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if env, err = hex.DecodeString(hx); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if p, err = kv.UnmarshalPage("golden", c, d, env); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if again, err := kv.MarshalPage("golden", c, p); err != nil || !bytes.Equal(again, env) {
					t.Errorf("%s: the page marshals differently now (%v)", where, err)
				}
				tok = 0
			default:
				if p == nil || tok >= p.Len() {
					t.Fatalf("%s: a token line without a page token for it", where)
				}
				x := make([]float32, d)
				p.Decode(tok, x)
				words := strings.Fields(line)
				if len(words) != d {
					t.Fatalf("%s: %d values, want %d", where, len(words), d)
				}
				for c, w := range words {
					var bits uint32
					if _, err := fmt.Sscanf(w, "%x", &bits); err != nil {
						t.Fatalf("%s: %v", where, err)
					}
					if got := math.Float32bits(x[c]); got != bits {
						t.Fatalf("%s: token %d value %d decodes to %08x, was %08x", where, tok, c, got, bits)
					}
				}
				tok++
			}
		}
		if p == nil || tok != p.Len() {
			t.Fatalf("%s: incomplete", path)
		}
	}
}

// wireFields are the fields of an envelope, for crafting pages whose
// checksum is right and whose content is not.
type wireFields struct {
	magic           [4]byte
	version         uint16
	model, codec    string
	d, n            uint32
	payload         []byte
	payloadLen      *uint32 // nil: len(payload)
	modelLen, cdLen *uint16
}

func parseWire(t testing.TB, b []byte) wireFields {
	t.Helper()
	var f wireFields
	copy(f.magic[:], b)
	f.version = binary.LittleEndian.Uint16(b[4:])
	ml := int(binary.LittleEndian.Uint16(b[6:]))
	f.model = string(b[8 : 8+ml])
	o := 8 + ml
	cl := int(binary.LittleEndian.Uint16(b[o:]))
	f.codec = string(b[o+2 : o+2+cl])
	o += 2 + cl
	f.d = binary.LittleEndian.Uint32(b[o:])
	f.n = binary.LittleEndian.Uint32(b[o+4:])
	pl := int(binary.LittleEndian.Uint32(b[o+8:]))
	f.payload = append([]byte(nil), b[o+12:o+12+pl]...)
	if o+12+pl+4 != len(b) {
		t.Fatalf("parseWire: %d bytes, fields end at %d", len(b), o+12+pl+4)
	}
	return f
}

// bytes writes the fields with a correct checksum.
func (f wireFields) bytes() []byte {
	b := append([]byte(nil), f.magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, f.version)
	ml, cl, pl := uint16(len(f.model)), uint16(len(f.codec)), uint32(len(f.payload))
	if f.modelLen != nil {
		ml = *f.modelLen
	}
	if f.cdLen != nil {
		cl = *f.cdLen
	}
	if f.payloadLen != nil {
		pl = *f.payloadLen
	}
	b = binary.LittleEndian.AppendUint16(b, ml)
	b = append(b, f.model...)
	b = binary.LittleEndian.AppendUint16(b, cl)
	b = append(b, f.codec...)
	b = binary.LittleEndian.AppendUint32(b, f.d)
	b = binary.LittleEndian.AppendUint32(b, f.n)
	b = binary.LittleEndian.AppendUint32(b, pl)
	b = append(b, f.payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// unmarshalAlloc unmarshals b and returns the error and the bytes
// allocated meanwhile.
func unmarshalAlloc(c kv.Codec, d int, b []byte) (kv.Page, error, uint64) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	p, err := kv.UnmarshalPage(testModel, c, d, b)
	runtime.ReadMemStats(&m1)
	return p, err, m1.TotalAlloc - m0.TotalAlloc
}

// TestWireRefuses checks that every damaged or foreign page is refused with
// the error that says why, in a short message, allocating no more than a
// small multiple of its input.
func TestWireRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	codecs := wireCodecs(t)
	const d = 64
	expect := func(name string, c kv.Codec, d int, b []byte, want error) {
		t.Helper()
		p, err, alloc := unmarshalAlloc(c, d, b)
		if !errors.Is(err, want) {
			t.Fatalf("%s: got page %v, error %v; want %v", name, p != nil, err, want)
		}
		if len(err.Error()) > 160 {
			t.Errorf("%s: error of %d characters: %v", name, len(err.Error()), err)
		}
		if alloc > uint64(2*len(b)+1024) {
			t.Errorf("%s: allocated %d bytes for a refused page of %d", name, alloc, len(b))
		}
	}
	long := strings.Repeat("0123456789abcdef", 16) // 256 bytes, the most allowed
	for _, c := range codecs {
		p := wirePages(rng, c, d)[0].p // full
		b, err := kv.MarshalPage(testModel, c, p)
		if err != nil {
			t.Fatal(err)
		}
		name := c.Name()
		_, err, alloc := unmarshalAlloc(c, d, b)
		if err != nil || alloc > uint64(2*len(b)+1024) {
			t.Fatalf("%s: valid page: error %v, %d bytes allocated for %d", name, err, alloc, len(b))
		}
		f := parseWire(t, b)
		hdr := len(b) - len(f.payload) - 4 // the payload starts here

		// Any single flipped byte is an error; in the model, codec, d,
		// tokens, payload and checksum it is the checksum's.
		for i := range b {
			x := bytes.Clone(b)
			x[i] ^= 1 << (i % 8)
			_, err := kv.UnmarshalPage(testModel, c, d, x)
			if err == nil {
				t.Fatalf("%s: byte %d flipped: no error", name, i)
			}
			inModel := i >= 8 && i < 8+len(f.model)
			inCodec := i >= 10+len(f.model) && i < 10+len(f.model)+len(f.codec)
			inSizes := i >= hdr-12 && i < hdr-4 // d and tokens
			if (inModel || inCodec || inSizes || i >= hdr) && !errors.Is(err, kv.ErrPageChecksum) {
				t.Fatalf("%s: byte %d flipped: %v, want a checksum mismatch", name, i, err)
			}
		}
		// Every truncation.
		for n := 0; n < len(b); n++ {
			expect(fmt.Sprintf("%s cut to %d bytes", name, n), c, d, b[:n], kv.ErrPageTruncated)
		}
		expect(name+" with a byte more", c, d, append(bytes.Clone(b), 0), kv.ErrPageSize)
		expect(name+" wrong d", c, d/2, b, kv.ErrPageSize)

		// Foreign pages.
		for _, o := range codecs {
			if o.Name() != name {
				expect(name+" read as "+o.Name(), o, d, b, kv.ErrPageCodec)
			}
		}
		if _, err := kv.UnmarshalPage("other-model", c, d, b); !errors.Is(err, kv.ErrPageModel) ||
			!strings.Contains(err.Error(), fmt.Sprintf("page is for model %q, not %q", testModel, "other-model")) {
			t.Fatalf("%s: other model: %v", name, err)
		}
		bl, err := kv.MarshalPage(long, c, p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = kv.UnmarshalPage(long[:255]+"!", c, d, bl)
		if !errors.Is(err, kv.ErrPageModel) || len(err.Error()) > 160 {
			t.Fatalf("%s: other long model: %v", name, err)
		}

		// Crafted envelopes with a valid checksum.
		craft := func(what string, want error, edit func(*wireFields)) {
			t.Helper()
			g := parseWire(t, b)
			edit(&g)
			expect(name+" "+what, c, d, g.bytes(), want)
		}
		craft("bad magic", kv.ErrNotPage, func(g *wireFields) { g.magic[3] = 'Q' })
		craft("version+1", kv.ErrPageVersion, func(g *wireFields) { g.version++ })
		craft("version 0", kv.ErrPageVersion, func(g *wireFields) { g.version = 0 })
		craft("empty model", kv.ErrPageSize, func(g *wireFields) { g.model = "" })
		craft("model of 257 bytes", kv.ErrPageSize, func(g *wireFields) { g.model = long + "x" })
		craft("codec of 65 bytes", kv.ErrPageSize, func(g *wireFields) { g.codec = long[:65] })
		craft("one token more", kv.ErrPageSize, func(g *wireFields) { g.n++ })
		craft("no tokens", kv.ErrPageSize, func(g *wireFields) { g.n = 0 })
		craft("payload a byte short", kv.ErrPageSize, func(g *wireFields) { g.payload = g.payload[:len(g.payload)-1] })
		craft("payload a byte long", kv.ErrPageSize, func(g *wireFields) { g.payload = append(g.payload, 0) })
		craft("d of 2^32-1", kv.ErrPageSize, func(g *wireFields) { g.d = 1<<32 - 1 })
		huge := uint32(1<<32 - 1)
		craft("payload of 4 GiB", kv.ErrPageTruncated, func(g *wireFields) { g.payloadLen = &huge })
		big := uint16(65535)
		craft("model length 65535", kv.ErrPageSize, func(g *wireFields) { g.modelLen = &big })
		if _, ok := c.(F32); !ok {
			if _, ok := c.(F16); !ok {
				// The first scale of a quantized page, made infinite.
				at := len(f.payload) - 2*d
				if bp, ok := p.(*blockPage); ok {
					at = p.Len() * int(bp.rb)
				}
				for _, h := range []uint16{0x7c00, 0xfc00, 0x7e01} {
					craft(fmt.Sprintf("scale %04x", h), kv.ErrPageInvalid, func(g *wireFields) {
						binary.LittleEndian.PutUint16(g.payload[at:], h)
					})
				}
			}
		}
	}
}

// TestWireMarshalRefuses checks what MarshalPage will not write.
func TestWireMarshalRefuses(t *testing.T) {
	p := F16{}.NewPage(8, 1)
	p.Append(make([]float32, 8), 1)
	for _, tc := range []struct {
		model string
		c     kv.Codec
		p     kv.Page
	}{
		{"", F16{}, p},
		{strings.Repeat("m", 257), F16{}, p},
		{"m", longName{F16{}}, p},
		{"m", plainCodec{F16{}}, p},
		{"m", F16{}, plainPage{p}},
		{"m", nil, p},
		{"m", F16{}, nil},
	} {
		if b, err := kv.MarshalPage(tc.model, tc.c, tc.p); err == nil {
			t.Errorf("model of %d bytes, codec %T, page %T: marshaled %d bytes", len(tc.model), tc.c, tc.p, len(b))
		}
	}
	if _, err := kv.UnmarshalPage("m", plainCodec{F16{}}, 8, nil); err == nil {
		t.Error("a codec without PageFromWire read a page")
	}
	if _, err := kv.UnmarshalPage("m", nil, 8, nil); err == nil {
		t.Error("no codec read a page")
	}
}

// longName is F16 with a name too long for the envelope.
type longName struct{ F16 }

func (longName) Name() string { return strings.Repeat("f16", 30) }

// plainCodec and plainPage hide the wire methods.
type plainCodec struct{ c kv.Codec }

func (c plainCodec) Name() string                    { return c.c.Name() }
func (c plainCodec) Residual() int                   { return 0 }
func (c plainCodec) Group() int                      { return 0 }
func (c plainCodec) NewPage(d, capacity int) kv.Page { return c.c.NewPage(d, capacity) }

type plainPage struct{ kv.Page }

// wireWidthOf is d from an envelope's header, or 0.
func wireWidthOf(b []byte) int {
	if len(b) < 8 {
		return 0
	}
	o := 8 + int(binary.LittleEndian.Uint16(b[6:]))
	if len(b) < o+2 {
		return 0
	}
	o += 2 + int(binary.LittleEndian.Uint16(b[o:]))
	if len(b) < o+4 {
		return 0
	}
	return int(binary.LittleEndian.Uint32(b[o:]))
}

// FuzzUnmarshalPage feeds envelopes to every codec, with d read from the
// envelope itself, each input twice: as it is, and with its last four
// bytes replaced by the right checksum, so that mutations reach the
// payload parsers (almost every mutated input fails the checksum). A page
// that is accepted must marshal back to the same bytes, and decode, score
// and sum without panicking; a refusal must be short.
func FuzzUnmarshalPage(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	codecs := wireCodecs(f)
	for _, c := range codecs {
		for _, d := range []int{8, 40} {
			for _, wp := range wirePages(rng, c, d)[:4] {
				b, err := kv.MarshalPage(testModel, c, wp.p)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := wireWidthOf(b)
		if d > 4096 {
			d = 64
		}
		fuzzPage(t, codecs, d, b)
		if n := len(b) - 4; n >= 0 {
			fixed := binary.LittleEndian.AppendUint32(bytes.Clone(b[:n]), crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)))
			fuzzPage(t, codecs, d, fixed)
		}
	})
}

// fuzzPage unmarshals b with every codec and checks what comes out.
func fuzzPage(t *testing.T, codecs []kv.Codec, d int, b []byte) {
	var sc kv.PageScratch
	for _, c := range codecs {
		p, err := kv.UnmarshalPage(testModel, c, d, b)
		if err != nil {
			if p != nil {
				t.Fatalf("%s: a page and an error: %v", c.Name(), err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("%s: error of %d characters", c.Name(), len(err.Error()))
			}
			continue
		}
		b2, err := kv.MarshalPage(testModel, c, p)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("%s: accepted page marshals differently (%v)", c.Name(), err)
		}
		n, g := p.Len(), 2
		x := make([]float32, d)
		for i := 0; i < n; i++ {
			p.Decode(i, x)
		}
		q := make([]float32, g*d)
		for i := range q {
			q[i] = float32(i%7) - 3
		}
		w := make([]float32, g*n)
		for i := range w {
			w[i] = 0.25
		}
		p.Dot(q, g, make([]float32, g*n), &sc)
		p.AddWeighted(w, g, make([]float32, g*d), &sc)
	}
}

// BenchmarkWire marshals (into a reused buffer) and unmarshals a full page
// of 32 tokens at d = 64 and 128; bytes/s are of the envelope.
func BenchmarkWire(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	k2, v2 := mustKIVI(b, 2, 32, 128)
	k4, _ := mustKIVI(b, 4, 32, 128)
	codecs := []kv.Codec{F32{}, F16{}, mustBlock(b, 8, 32, false), mustBlock(b, 4, 32, false), mustBlock(b, 4, 32, true), k2, v2, k4}
	for _, d := range []int{64, 128} {
		for _, c := range codecs {
			p := c.NewPage(d, kv.PageTokens)
			p.Append(kvData(rng, kv.PageTokens, d), kv.PageTokens)
			msg, err := kv.MarshalPage(testModel, c, p)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("d=%d/%s/marshal", d, c.Name()), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				buf := make([]byte, 0, len(msg))
				for b.Loop() {
					buf, _ = kv.AppendPage(buf[:0], testModel, c, p)
				}
			})
			b.Run(fmt.Sprintf("d=%d/%s/unmarshal", d, c.Name()), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := kv.UnmarshalPage(testModel, c, d, msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestWireRefill checks that RefillFromWire is PageFromWire in another
// page's memory: for every page of the round trip, rebuilt into a full page
// of its own codec and width (a tier's steady state: the rebuilt page is
// that page, and allocates nothing), a larger one of another width, a page
// too small, and a page of another codec, the result is the fresh page bit
// for bit and marshals the same, and keeps working when appended to; a
// refused payload is refused with PageFromWire's error and leaves the old
// page as it was.
func TestWireRefill(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range wireCodecs(t) {
		rc, ok := c.(kv.WireRefiller)
		if !ok {
			t.Fatalf("%s: no RefillFromWire", c.Name())
		}
		for _, d := range wireDims {
			pages := wirePages(rng, c, d)
			for _, wp := range pages {
				name := fmt.Sprintf("%s/d=%d/%s", c.Name(), d, wp.name)
				payload := wp.p.(kv.WirePage).AppendWire(nil)
				want, err := rc.PageFromWire(d, payload)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				olds := []struct {
					name  string
					p     kv.Page
					reuse bool // the result must be this page
				}{
					{"own", wirePages(rng, c, d)[0].p, wp.full},
					{"wider", wirePages(rng, c, 2*d)[0].p, wp.p.Len() > 0},
					{"too small", c.NewPage(d, 0), false},
					{"other codec", F32{}.NewPage(d, 4), false},
					{"nil", nil, false},
				}
				if _, ok := c.(F32); ok {
					olds[3].p = F16{}.NewPage(d, 4)
				}
				for _, o := range olds {
					got, err := rc.RefillFromWire(o.p, d, payload)
					if err != nil {
						t.Fatalf("%s into %s: %v", name, o.name, err)
					}
					if o.reuse && got != o.p {
						t.Errorf("%s into %s: built in new memory", name, o.name)
					}
					samePage(t, name+" into "+o.name, rng, d, want, got)
					if !bytes.Equal(got.(kv.WirePage).AppendWire(nil), payload) {
						t.Fatalf("%s into %s: marshals differently", name, o.name)
					}
					if c.Group() == 0 {
						x := kvData(rng, 1, d)
						a, _ := rc.PageFromWire(d, payload)
						a.Append(x, 1)
						got.Append(x, 1)
						samePage(t, name+" into "+o.name+"+append", rng, d, a, got)
					}
				}
				if wp.full && wp.p.Len() > 0 {
					old := wirePages(rng, c, d)[0].p
					if n := testing.AllocsPerRun(20, func() {
						if old, err = rc.RefillFromWire(old, d, payload); err != nil {
							t.Fatal(err)
						}
					}); n != 0 {
						t.Errorf("%s: %v allocations per refill into a page of its size", name, n)
					}
				}
			}

			// Refused payloads: PageFromWire's error, the old page untouched.
			full := pages[0].p
			payload := full.(kv.WirePage).AppendWire(nil)
			bad := [][]byte{payload[:len(payload)-1], append(bytes.Clone(payload), 0)}
			if _, ok := c.(F32); !ok {
				if _, ok := c.(F16); !ok {
					x := bytes.Clone(payload)
					at := len(x) - 2*d // a KIVI group's first scale
					if bp, ok := full.(*blockPage); ok {
						at = full.Len() * int(bp.rb)
					}
					binary.LittleEndian.PutUint16(x[at:], 0x7c00)
					bad = append(bad, x)
				}
			}
			for i, b := range bad {
				name := fmt.Sprintf("%s/d=%d/refused %d", c.Name(), d, i)
				_, want := rc.PageFromWire(d, b)
				old := wirePages(rng, c, d)[0].p
				before := old.(kv.WirePage).AppendWire(nil)
				p, err := rc.RefillFromWire(old, d, b)
				if want == nil || err == nil || err.Error() != want.Error() || p != nil {
					t.Fatalf("%s: page %v, error %v; want %v", name, p != nil, err, want)
				}
				if !bytes.Equal(old.(kv.WirePage).AppendWire(nil), before) {
					t.Fatalf("%s: the old page changed", name)
				}
			}
		}
	}
}

// TestWireF16s: halves go to bytes little-endian and come back, for every
// length around the four-at-a-time loop's steps.
func TestWireF16s(t *testing.T) {
	for n := range 11 {
		x := make([]uint16, n)
		var want []byte
		for i := range x {
			x[i] = uint16(0x9137*i + 0x0102)
			want = append(want, byte(x[i]), byte(x[i]>>8))
		}
		b := appendF16s([]byte{0xee}, x)
		if !bytes.Equal(b[1:], want) || b[0] != 0xee {
			t.Fatalf("n=%d: appended % x, want ee % x", n, b, want)
		}
		back := make([]uint16, n)
		readF16s(back, b[1:])
		if !slices.Equal(back, x) {
			t.Fatalf("n=%d: read back %v, want %v", n, back, x)
		}
	}
}

// BenchmarkWireF16s: one f16 page of 32 tokens × 64 values to its wire
// bytes and back.
func BenchmarkWireF16s(b *testing.B) {
	x := make([]uint16, 2048)
	buf := make([]byte, 0, 4096)
	b.Run("append", func(b *testing.B) {
		b.SetBytes(4096)
		for b.Loop() {
			buf = appendF16s(buf[:0], x)
		}
	})
	buf = appendF16s(buf[:0], x)
	b.Run("read", func(b *testing.B) {
		b.SetBytes(4096)
		for b.Loop() {
			readF16s(x, buf)
		}
	})
}
