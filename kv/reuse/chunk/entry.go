// Package chunk keeps chunk caches: the keys and values of one chunk of a
// prompt (a retrieved document), computed once in a real request and
// reused by later requests wherever the chunk appears (kv.Repair decides
// how much of it to compute again). A Store holds them in RAM within a
// byte budget, evicting by utility, and writes them through to lower tiers
// (Disk: files that survive a restart; Redis: shared by several servers),
// from which a miss in RAM is filled.
//
// Entries are keyed by the model's identity, the codec they are stored in,
// the chunk's token hash and the tenant: one model's chunks never reach
// another, a chunk stored as KIVI-4 is reused only by KIVI-4 requests
// (whose store holds about three times as many chunks as an F16 one), and
// one tenant never reads another's. Off RAM an entry travels as one
// message of page envelopes (kv.MarshalCache, kv.MarshalPage) whose
// checksums and model identity are checked when it is read: a corrupt or
// foreign entry is dropped from its tier and the chunk is computed again.
package chunk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/kvgo/kvgo/kv"
)

// Key names a chunk cache.
type Key struct {
	// Model is the model's identity (engine.Engine.Identity).
	Model string
	// Codec is the canonical codec term the entry is stored in
	// ("f16", "kivi(bits=4,group=32,residual=128)").
	Codec string
	// Tenant keeps tenants apart (an API key's tenant or a request's
	// cache_salt); empty for a server without them.
	Tenant string
	// Tokens is the hash of the chunk's token ids.
	Tokens kv.ChunkHash
}

// ID is the key's name in the lower tiers: the hex SHA-256 of every field,
// so that a file name or a Redis key says nothing of the tenant, the model
// or the tokens, and keys of different tenants never meet.
func (k Key) ID() string {
	h := sha256.New()
	for _, s := range []string{"kvgo chunk v1", k.Model, k.Codec, k.Tenant} {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write(k.Tokens[:])
	return hex.EncodeToString(h.Sum(nil))
}

// Entry is one chunk cache.
type Entry struct {
	// Cache holds the chunk's tokens at positions Start..Start+Tokens-1
	// (where the request that computed them had them); splicing it
	// elsewhere re-rotates its keys.
	Cache  *kv.Cache
	Start  int32
	Tokens int
	// Hash is the chunk's token hash (Key.Tokens).
	Hash kv.ChunkHash
	// Stats is what Cache-Craft needs, recorded when it was computed;
	// nil when nothing was recorded.
	Stats *kv.ChunkStats
}

// Bytes is the memory the entry holds.
func (e *Entry) Bytes() int64 { return e.Cache.Bytes() + e.Stats.Bytes() + 64 }

// wireVersion is the version of an entry's message.
const wireVersion = 1

var magic = [4]byte{'K', 'V', 'C', 'H'}

// ErrCorrupt wraps every reason an entry's message is refused that is not
// the cache's own (kv.ErrCacheWire, kv.ErrPage*).
var ErrCorrupt = errors.New("chunk: bad entry")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Marshal writes an entry for model as one message:
//
//	magic "KVCH", version uint16, start int32, tokens uint32, hash [16],
//	stats: before count uint32 + hashes, inter floats (count uint32 +
//	values), A, B, Context (each count uint32 + float32 values),
//	cache: uint32 length + kv.MarshalCache's message,
//	crc32c of everything before it.
func Marshal(model string, e *Entry) ([]byte, error) {
	b := append([]byte(nil), magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, wireVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(e.Start))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.Tokens))
	b = append(b, e.Hash[:]...)
	s := e.Stats
	if s == nil {
		s = &kv.ChunkStats{}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Before)))
	for _, h := range s.Before {
		b = append(b, h[:]...)
	}
	for _, f := range [][]float32{s.Inter, s.A, s.B, s.Context} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		for _, x := range f {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	at := len(b)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b, err := kv.MarshalCache(b, model, e.Cache)
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// Layout is what rebuilding an entry's cache needs from the engine: the
// model's cache shape, a fresh config of the stored codec (RoPE set) and
// the capacity in positions.
type Layout struct {
	Shape    kv.Shape
	Config   func() (kv.Config, error)
	Capacity int
}

// Unmarshal rebuilds an entry written by Marshal for model and checks it
// against key k: the checksum first, then the cache's pages (model
// identity, codec, their own checksums), the token hash and lengths.
func Unmarshal(model string, k Key, lay Layout, b []byte) (*Entry, error) {
	if len(b) < 4+2+4+4+16+4+4 || string(b[:4]) != string(magic[:]) {
		return nil, fmt.Errorf("%w: no entry magic or too short (%d bytes)", ErrCorrupt, len(b))
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("%w: %w: crc32c %08x, stored %08x", ErrCorrupt, kv.ErrPageChecksum, got, want)
	}
	r := reader{b: body, off: 4}
	if v := r.u32n(2); v != wireVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrCorrupt, v, wireVersion)
	}
	e := &Entry{Start: int32(r.u32()), Tokens: int(r.u32())}
	copy(e.Hash[:], r.next(16))
	s := &kv.ChunkStats{}
	nb := int(r.u32())
	if nb > len(body)/16 {
		return nil, fmt.Errorf("%w: %d preceding chunks", ErrCorrupt, nb)
	}
	for range nb {
		var h kv.ChunkHash
		copy(h[:], r.next(16))
		s.Before = append(s.Before, h)
	}
	for _, f := range []*[]float32{&s.Inter, &s.A, &s.B, &s.Context} {
		n := int(r.u32())
		if n > len(body)/4 {
			return nil, fmt.Errorf("%w: %d statistics", ErrCorrupt, n)
		}
		for range n {
			*f = append(*f, math.Float32frombits(r.u32()))
		}
	}
	cb := r.next(int(r.u32()))
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%w: %d bytes after the cache", ErrCorrupt, len(body)-r.off)
	}
	if e.Hash != k.Tokens {
		return nil, fmt.Errorf("%w: the entry is of chunk %s, not %s", ErrCorrupt, e.Hash, k.Tokens)
	}
	if len(s.Context) != 0 && len(s.Context) != e.Tokens || len(s.Inter) != 0 && len(s.Inter) != len(s.Before) {
		return nil, fmt.Errorf("%w: statistics of %d tokens and %d preceding chunks for %d tokens", ErrCorrupt, len(s.Context), len(s.Before), e.Tokens)
	}
	if len(s.A)+len(s.Context)+len(s.Before) > 0 {
		e.Stats = s
	}
	cfg, err := lay.Config()
	if err != nil {
		return nil, err
	}
	c, err := kv.UnmarshalCache(model, lay.Shape, cfg, lay.Capacity, cb)
	if err != nil {
		return nil, err
	}
	if e.Tokens <= 0 || e.Start < 0 || c.Len() != e.Tokens || c.NextPos() != int(e.Start)+e.Tokens {
		return nil, fmt.Errorf("%w: a cache of %d tokens ending at %d for a chunk of %d at %d", ErrCorrupt, c.Len(), c.NextPos(), e.Tokens, e.Start)
	}
	e.Cache = c
	return e, nil
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: truncated (%d bytes wanted at %d of %d)", ErrCorrupt, n, r.off, len(r.b))
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u32() uint32 {
	s := r.next(4)
	if len(s) < 4 {
		return 0
	}
	return binary.LittleEndian.Uint32(s)
}

func (r *reader) u32n(n int) uint32 {
	s := r.next(n)
	if len(s) < 2 {
		return 0
	}
	return uint32(binary.LittleEndian.Uint16(s))
}
