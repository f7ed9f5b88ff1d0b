// Package offload is the cold tier of a KV cache: a sequence's sealed pages
// live in a file, and only the pages read most recently stay on the heap,
// within a budget in bytes. A selector that reads a few pages per decode
// step (Quest, ActQKV: kv/retrieve) keeps its page summaries on the heap
// and chooses from them, so a context can be far longer than the memory
// given to the sequence; a dense cache works too, slowly (every step reads
// every page back).
//
// The store wraps the cache's codecs (Store.Codec): their pages are the
// codec's own pages behind a wrapper that moves the codes to the file
// (the page's exact wire payload, kv.WirePage, written at an offset with
// WriteAt) when the page has gone unread longest and the heap budget is
// exceeded, and reads them back (ReadAt, kv.WireCodec.PageFromWire) when
// attention asks. Pages are not mapped into memory: a mapping's resident
// pages would count in the process's RSS as they are touched, which is
// what the tier exists to bound. Reading a page back is exact for every
// codec, so the tokens a sequence produces do not change. Nor does it
// allocate in steady state: a page read back, and a new page, are made in
// the memory of a page written out that no attention worker still reads
// (kv.WireRefiller; see frame), since a prefill batch reads every page of
// a layer back and each page read would otherwise be a page of garbage.
//
// What stays on the heap: the pages read most recently (Options.HotBytes),
// the page being filled (a page is written out only once it has been
// full), and everything the stream keeps per token or per page outside its
// pages (positions, key summaries, the unsealed tail). Bytes of the cache
// (kv.Cache.Bytes) counts those, and kv.Cache.ColdBytes the pages in the
// file.
//
// The file is unlinked as soon as it is created, so it leaves the
// directory even when the process is killed; its space is given back when
// the store is closed (Close, when the sequence ends) or the process
// exits.
package offload

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
)

// DefaultHotBytes is the heap budget of pages when Options.HotBytes is 0:
// at depth 32768 on smollm2-135m's shape (30 layers × 3 KV heads, 64-wide
// heads, F16) one layer's pages are 25 MiB and a quest(budget=2048) decode
// step reads 45 MiB of them, so 64 MiB holds a step's working set and a
// prefill batch's layer without reading a page back twice.
const DefaultHotBytes = 64 << 20

// Options configure a store.
type Options struct {
	// Dir is the directory of the sequence's file.
	Dir string
	// HotBytes bounds the bytes of pages kept on the heap (0:
	// DefaultHotBytes). Pages being filled are not counted against it
	// when nothing else can be written out.
	HotBytes int64
}

func (o Options) hot() int64 {
	if o.HotBytes == 0 {
		return DefaultHotBytes
	}
	return o.HotBytes
}

// Validate reports options no store can have.
func (o Options) Validate() error {
	if o.Dir == "" {
		return errors.New("kv/offload: no directory given")
	}
	if o.HotBytes < 0 {
		return fmt.Errorf("kv/offload: heap budget of pages %d must not be negative", o.HotBytes)
	}
	return nil
}

// file is what a store needs of its file (tests give a full disk).
type file interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// ErrClosed is the error of a page read after its store was closed.
var ErrClosed = errors.New("kv/offload: store closed")

// Store is the cold tier of one sequence (and of caches forked from it,
// which share its pages). It is safe for concurrent use: attention reads
// pages from several workers at once.
type Store struct {
	limit int64
	dir   string

	mu     sync.Mutex
	f      file
	path   string          // still to remove at Close; "" once removed
	end    int64           // the file's length: where a new slot goes
	free   map[int][]int64 // free slots by size
	head   *node           // most recently used hot page
	tail   *node           // least recently used hot page
	hot    int64           // bytes of the pages on the heap
	cold   int64           // bytes of the pages only in the file
	err    error           // the first failure, sticky
	closed bool
	buf    []byte   // payload scratch
	spare  []*frame // pages to refill, at most maxSpare (recycle)
	stats  Stats
}

// Stats counts a store's traffic.
type Stats struct {
	Loads, Writes         int64 // pages read back, pages written
	LoadBytes, WriteBytes int64
	FileBytes             int64 // the file's length
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Open creates the store's file in o.Dir. A directory that cannot be
// written is an error here, not at the first page written out.
func Open(o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(o.Dir, "kvgo-cold-*.kv")
	if err != nil {
		return nil, fmt.Errorf("kv/offload: cannot create the cold tier's file in %s: %w", o.Dir, unwrapPath(err))
	}
	s := newStore(o, f, f.Name())
	// Unlinked at once: the file never outlives the process. Where the
	// system refuses (a file open elsewhere on Windows), Close removes it.
	if os.Remove(f.Name()) == nil {
		s.path = ""
	}
	return s, nil
}

func newStore(o Options, f file, path string) *Store {
	return &Store{limit: o.hot(), dir: o.Dir, f: f, path: path, free: map[int][]int64{}}
}

// unwrapPath drops the *PathError's repetition of the temporary name.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Check reports whether a store can be opened in dir and a page written
// there: a read-only, missing or full directory is an error, found before
// any sequence starts.
func Check(dir string) error {
	s, err := Open(Options{Dir: dir})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.f.WriteAt(make([]byte, 4096), 0); err != nil {
		return fmt.Errorf("kv/offload: cannot write to the cold tier's file in %s: %w", dir, unwrapPath(err))
	}
	return nil
}

// Err is the first failure of moving pages (a full disk, a read error).
// A page cannot return an error from attention, so a sequence must check
// Err after each forward pass: once it is set, the attention outputs of
// that pass are not to be trusted.
func (s *Store) Err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fail records the first failure.
func (s *Store) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// HotBytes is the bytes of pages on the heap; ColdBytes of pages only in
// the file.
func (s *Store) HotBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hot
}

// ColdBytes is the bytes of pages held only in the file.
func (s *Store) ColdBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cold
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.FileBytes = s.end
	return st
}

// Close closes and removes the file. Pages still in it cannot be read
// afterwards (Err says so); pages on the heap still can. Close on a nil
// store does nothing, so callers may close what they may not have opened.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.f.Close()
	if s.path != "" {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
		s.path = ""
	}
	s.free, s.spare = nil, nil
	if err != nil {
		return fmt.Errorf("kv/offload: closing the cold tier's file in %s: %w", s.dir, err)
	}
	return nil
}

// alloc returns a slot of size bytes: a freed one of the same size, or a
// new one at the end of the file.
func (s *Store) alloc(size int) int64 {
	if l := s.free[size]; len(l) > 0 {
		off := l[len(l)-1]
		s.free[size] = l[:len(l)-1]
		return off
	}
	off := s.end
	s.end += int64(size)
	return off
}

// release gives a slot back.
func (s *Store) release(off int64, size int) {
	if size > 0 && s.free != nil {
		s.free[size] = append(s.free[size], off)
	}
}
