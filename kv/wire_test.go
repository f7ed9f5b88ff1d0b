package kv

import (
	"errors"
	"strings"
	"testing"
)

// The envelope with every codec is tested in kv/quant (wire_test.go),
// where the codecs are; these are the envelope's own corners.

// TestWireCut checks that identities in error messages are quoted and cut:
// a page's bytes never reach a message raw or at length.
func TestWireCut(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"m", `"m"`},
		{strings.Repeat("a", 40), `"` + strings.Repeat("a", 40) + `"`},
		{strings.Repeat("b", 256), `"` + strings.Repeat("b", 40) + `"…`},
		{"\x00\xff\n", `"\x00\xff\n"`},
	} {
		if got := cut(tc.in); got != tc.want {
			t.Errorf("cut(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestWireShortInputs checks the first bytes: anything that does not start
// like a page is ErrNotPage, however short; a prefix of the magic is a
// truncated page.
func TestWireShortInputs(t *testing.T) {
	var c wireOnly
	for _, tc := range []struct {
		b    string
		want error
	}{
		{"", ErrPageTruncated},
		{"K", ErrPageTruncated},
		{"KVPG", ErrPageTruncated},
		{"KVPG\x01", ErrPageTruncated},
		{"KVPG\x02\x00", ErrPageVersion},
		{"x", ErrNotPage},
		{"KVPx", ErrNotPage},
		{"GGUF\x03\x00\x00\x00", ErrNotPage},
	} {
		if _, err := UnmarshalPage("m", c, 8, []byte(tc.b)); !errors.Is(err, tc.want) {
			t.Errorf("%q: %v, want %v", tc.b, err, tc.want)
		}
	}
}

// wireOnly is a codec that can read pages but has none to read.
type wireOnly struct{}

func (wireOnly) Name() string                 { return "none" }
func (wireOnly) Residual() int                { return 0 }
func (wireOnly) Group() int                   { return 0 }
func (wireOnly) NewPage(d, capacity int) Page { return nil }
func (wireOnly) PageFromWire(d int, payload []byte) (Page, error) {
	return nil, errors.New("no pages")
}
