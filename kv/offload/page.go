package offload

import (
	"fmt"
	"hash/crc32"
	"runtime"
	"sync/atomic"

	"github.com/kvgo/kvgo/kv"
)

// Codec returns c whose pages the store may move to its file. c must have
// an exact wire form (kv.WireCodec: every kvgo codec has one).
func (s *Store) Codec(c kv.Codec) (kv.Codec, error) {
	if w, ok := c.(codec); ok && w.st == s {
		return c, nil
	}
	wc, ok := c.(kv.WireCodec)
	if !ok {
		return nil, fmt.Errorf("kv/offload: codec %s has no wire form, so its pages cannot leave the heap", c.Name())
	}
	return codec{wc, s}, nil
}

// codec is a codec whose pages are wrapped by the store. Its name,
// residual and group are the inner codec's.
type codec struct {
	kv.WireCodec
	st *Store
}

func (c codec) NewPage(d, capacity int) kv.Page {
	return c.st.wrap(c.WireCodec.NewPage(d, capacity), c.WireCodec, d, capacity, false)
}

func (c codec) PageFromWire(d int, payload []byte) (kv.Page, error) {
	p, err := c.WireCodec.PageFromWire(d, payload)
	if err != nil {
		return nil, err
	}
	return c.st.wrap(p, c.WireCodec, d, p.Len(), true), nil
}

// node is the store's record of one page. The store's LRU list holds
// nodes, never the pages wrapping them, so a page the cache drops (packed,
// rebuilt, evicted whole) becomes garbage and its cleanup gives its slot
// and its heap bytes back.
type node struct {
	st         *Store
	prev, next *node        // the LRU list, while hot
	p          kv.Page      // the codec's page while on the heap; nil while cold
	codec      kv.WireCodec //
	off        int64        // the page's slot in the file
	hot, cold  atomic.Int64 // bytes on the heap; bytes only in the file
	n          atomic.Int32 // Len, read without the lock
	sum        uint32       // CRC-32C of the payload in the file
	d, cap     int32        // vector width and capacity in tokens
	slot, size int32        // the slot's size and the payload's (0: no slot)
	listed     bool         // in the LRU list
	sealed     bool         // the page has been full once: it may be written out
	dirty      bool         // the heap copy differs from the file's (or there is none)
	dead       bool         // the page was dropped
}

// page is a kv.Page whose codes may live in the store's file.
type page struct{ n *node }

func (s *Store) wrap(p kv.Page, c kv.WireCodec, d, capacity int, sealed bool) kv.Page {
	n := &node{st: s, p: p, codec: c, d: int32(d), cap: int32(capacity), sealed: sealed || (capacity > 0 && p.Len() >= capacity), dirty: true}
	n.n.Store(int32(p.Len()))
	if _, ok := p.(kv.WirePage); !ok {
		n.sealed = false // cannot be written out; stays on the heap
	}
	w := &page{n}
	runtime.AddCleanup(w, func(n *node) { n.st.drop(n) }, n)
	s.mu.Lock()
	b := p.Bytes()
	n.hot.Store(b)
	s.hot += b
	s.touch(n)
	s.shrink(n)
	s.mu.Unlock()
	return w
}

// drop forgets a page the cache no longer holds.
func (s *Store) drop(n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.dead = true
	s.unlist(n)
	s.hot -= n.hot.Swap(0)
	s.cold -= n.cold.Swap(0)
	if n.slot > 0 {
		s.release(n.off, int(n.slot))
		n.slot = 0
	}
	n.p = nil
}

// touch makes n the most recently used page.
func (s *Store) touch(n *node) {
	if s.head == n {
		return
	}
	s.unlist(n)
	n.next = s.head
	if s.head != nil {
		s.head.prev = n
	}
	s.head = n
	if s.tail == nil {
		s.tail = n
	}
	n.listed = true
}

func (s *Store) unlist(n *node) {
	if !n.listed {
		return
	}
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		s.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next, n.listed = nil, nil, false
}

// shrink writes out the least recently used sealed pages, other than
// keep, until the pages on the heap fit the budget.
func (s *Store) shrink(keep *node) {
	for c := s.tail; s.hot > s.limit && c != nil && s.err == nil; {
		prev := c.prev
		if c != keep && c.sealed {
			s.evict(c)
		}
		c = prev
	}
}

// evict writes n's page to the file (unless the file already holds it)
// and drops the heap copy.
func (s *Store) evict(n *node) {
	if s.closed {
		return
	}
	if n.dirty || n.slot == 0 {
		b := n.p.(kv.WirePage).AppendWire(s.buf[:0])
		s.buf = b
		if len(b) > int(n.slot) {
			s.release(n.off, int(n.slot))
			n.off, n.slot = s.alloc(len(b)), int32(len(b))
		}
		if _, err := s.f.WriteAt(b, n.off); err != nil {
			s.fail(fmt.Errorf("kv/offload: writing a page of %d bytes to the cold tier in %s: %w", len(b), s.dir, unwrapPath(err)))
			return
		}
		n.size, n.sum, n.dirty = int32(len(b)), crc32.Checksum(b, castagnoli), false
		s.stats.Writes++
		s.stats.WriteBytes += int64(len(b))
	}
	s.unlist(n)
	s.hot -= n.hot.Swap(0)
	n.cold.Store(int64(n.size))
	s.cold += int64(n.size)
	n.p = nil
}

// load reads n's page back from the file.
func (s *Store) load(n *node) bool {
	if s.closed {
		s.fail(ErrClosed)
		return false
	}
	if s.err != nil {
		return false
	}
	if cap(s.buf) < int(n.size) {
		s.buf = make([]byte, n.size)
	}
	b := s.buf[:n.size]
	if _, err := s.f.ReadAt(b, n.off); err != nil {
		s.fail(fmt.Errorf("kv/offload: reading a page of %d bytes from the cold tier in %s: %w", n.size, s.dir, unwrapPath(err)))
		return false
	}
	if crc32.Checksum(b, castagnoli) != n.sum {
		s.fail(fmt.Errorf("kv/offload: a page read back from the cold tier in %s: %w", s.dir, kv.ErrPageChecksum))
		return false
	}
	p, err := n.codec.PageFromWire(int(n.d), b)
	if err != nil {
		s.fail(fmt.Errorf("kv/offload: a page read back from the cold tier in %s: %w", s.dir, err))
		return false
	}
	n.p = p
	hb := p.Bytes()
	n.hot.Store(hb)
	s.hot += hb
	s.cold -= n.cold.Swap(0)
	s.stats.Loads++
	s.stats.LoadBytes += int64(n.size)
	return true
}

// get returns n's page on the heap, read back if it was cold, or nil
// after a failure (Err). The page stays valid for the caller even if
// another worker writes it out meanwhile: writing out only drops the
// store's reference.
func (s *Store) get(n *node) kv.Page {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.p == nil && (n.dead || !s.load(n)) {
		return nil
	}
	s.touch(n)
	s.shrink(n)
	return n.p
}

// mutate runs fn on n's page under the store's lock and accounts for
// what it changed. It reports false after a failure (Err).
func (s *Store) mutate(n *node, fn func(p kv.Page)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.p == nil && (n.dead || !s.load(n)) {
		return false
	}
	fn(n.p)
	l := n.p.Len()
	n.n.Store(int32(l))
	if n.cap > 0 && l >= int(n.cap) {
		if _, ok := n.p.(kv.WirePage); ok {
			n.sealed = true
		}
	}
	n.dirty = true
	hb := n.p.Bytes()
	s.hot += hb - n.hot.Swap(hb)
	s.touch(n)
	s.shrink(n)
	return true
}

func (w *page) Len() int { return int(w.n.n.Load()) }

// Bytes is the page's memory on the heap (0 while it is only in the
// file).
func (w *page) Bytes() int64 { return w.n.hot.Load() }

// ColdBytes is the page's bytes held only in the file (kv.ColdPage).
func (w *page) ColdBytes() int64 { return w.n.cold.Load() }

func (w *page) Append(x []float32, k int) {
	w.n.st.mutate(w.n, func(p kv.Page) { p.Append(x, k) })
}

func (w *page) Delete(i int) {
	w.n.st.mutate(w.n, func(p kv.Page) { p.Delete(i) })
}

func (w *page) Dot(q []float32, g int, out []float32, sc *kv.PageScratch) {
	p := w.n.st.get(w.n)
	if p == nil {
		clear(out[:g*w.Len()])
		return
	}
	p.Dot(q, g, out, sc)
}

func (w *page) AddWeighted(wt []float32, g int, out []float32, sc *kv.PageScratch) {
	if p := w.n.st.get(w.n); p != nil {
		p.AddWeighted(wt, g, out, sc)
	}
}

func (w *page) Decode(i int, dst []float32) {
	p := w.n.st.get(w.n)
	if p == nil {
		clear(dst[:int(w.n.d)])
		return
	}
	p.Decode(i, dst)
}

// AppendFrom appends token i of src by copying its codes when the
// codec's page can (kv.Stream packs pages this way; exact).
func (w *page) AppendFrom(src kv.Page, i int) bool {
	if sw, ok := src.(*page); ok {
		if src = sw.n.st.get(sw.n); src == nil {
			return false
		}
	}
	copied := false
	w.n.st.mutate(w.n, func(p kv.Page) {
		if c, ok := p.(interface{ AppendFrom(kv.Page, int) bool }); ok {
			copied = c.AppendFrom(src, i)
		}
	})
	return copied
}

// Clone returns an exact copy in the same store (copy-on-write after
// kv.Cache.Fork).
func (w *page) Clone() kv.Page {
	n := w.n
	d, capacity := int(n.d), int(n.cap)
	p := n.st.get(n)
	if p == nil {
		return n.st.wrap(n.codec.NewPage(d, capacity), n.codec, d, capacity, false)
	}
	var q kv.Page
	if c, ok := p.(interface{ Clone() kv.Page }); ok {
		q = c.Clone()
	} else {
		q = n.codec.NewPage(d, max(capacity, p.Len()))
		x := make([]float32, d)
		for i := 0; i < p.Len(); i++ {
			p.Decode(i, x)
			q.Append(x, 1)
		}
	}
	n.st.mu.Lock()
	sealed := n.sealed
	n.st.mu.Unlock()
	return n.st.wrap(q, n.codec, d, capacity, sealed)
}

// Width is the page's vector width (kv.WirePage).
func (w *page) Width() int { return int(w.n.d) }

// AppendWire appends the page's payload (kv.WirePage), read back from the
// file if it is there.
func (w *page) AppendWire(b []byte) []byte {
	p := w.n.st.get(w.n)
	if p == nil {
		return b
	}
	return p.(kv.WirePage).AppendWire(b)
}
