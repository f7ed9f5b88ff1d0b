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
	k := &kind{c: wc, name: c.Name()}
	k.refill, _ = wc.(kv.WireRefiller)
	return codec{wc, s, k}, nil
}

// codec is a codec whose pages are wrapped by the store. Its name,
// residual and group are the inner codec's.
type codec struct {
	kv.WireCodec
	st *Store
	k  *kind
}

// NewPage returns an empty page, made in the memory of a spare page of
// the codec when there is one (Store.renew): a sequence's pages are
// written out as fast as new ones fill, so a page made new each time would
// be a page of garbage each time.
func (c codec) NewPage(d, capacity int) kv.Page {
	if p := c.st.renew(c.k, d, capacity); p != nil {
		return p
	}
	return c.st.wrap(c.WireCodec.NewPage(d, capacity), c.k, d, capacity, false)
}

func (c codec) PageFromWire(d int, payload []byte) (kv.Page, error) {
	p, err := c.WireCodec.PageFromWire(d, payload)
	if err != nil {
		return nil, err
	}
	return c.st.wrap(p, c.k, d, p.Len(), true), nil
}

// kind is the codec of a node's pages. Caches make a codec per stream, so
// its name (which the wire envelope takes to identify a layout) is what
// tells whether a spare page of one stream can be refilled for another.
type kind struct {
	c      kv.WireCodec
	refill kv.WireRefiller // c, when it can rebuild a page in another's memory
	name   string
}

// node is the store's record of one page. The store's LRU list holds
// nodes, never the pages wrapping them, so a page the cache drops (packed,
// rebuilt, evicted whole) becomes garbage and its cleanup gives its slot
// and its heap bytes back.
type node struct {
	st         *Store
	prev, next *node        // the LRU list, while hot
	f          *frame       // the codec's page while on the heap; nil while cold
	k          *kind        // the codec
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

// frame holds a codec's page on the heap, and counts the callers using it
// outside the store's lock: get hands the page to attention workers, and
// another worker's read may write the page out meanwhile. Once the store
// has let go of a frame (its page written out or dropped) and nobody uses
// it, its page is kept to be refilled by the next read of a page of its
// codec (Store.recycle), so that reading pages back makes no garbage.
type frame struct {
	p     kv.Page
	k     *kind
	d     int32
	room  int32        // tokens p holds without growing, once let go
	state atomic.Int32 // callers using p, plus gone once the store let go
}

// gone is the bit of frame.state set when the store lets go of a frame.
const gone = 1 << 30

// page is a kv.Page whose codes may live in the store's file.
type page struct{ n *node }

func (s *Store) wrap(p kv.Page, k *kind, d, capacity int, sealed bool) kv.Page {
	return s.wrapFrame(&frame{p: p, k: k, d: int32(d)}, d, capacity, sealed)
}

// renew returns an empty page of codec k made in a spare page's memory
// (RefillFromWire of an empty payload keeps the arrays), or nil when no
// spare page of k and width d holds capacity tokens. A page asked without
// capacity is made new: it would take a whole page's arrays for nothing.
func (s *Store) renew(k *kind, d, capacity int) kv.Page {
	if k.refill == nil || capacity <= 0 {
		return nil
	}
	s.mu.Lock()
	f := s.takeSpare(k, int32(d), func(f *frame) int64 {
		if int(f.room) < capacity {
			return -1
		}
		return int64(f.room)
	})
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	p, err := k.refill.RefillFromWire(f.p, d, nil)
	if err != nil {
		return nil // a codec without an empty payload: made new
	}
	f.p, f.k, f.d = p, k, int32(d)
	return s.wrapFrame(f, d, capacity, false)
}

func (s *Store) wrapFrame(f *frame, d, capacity int, sealed bool) kv.Page {
	p := f.p
	n := &node{st: s, f: f, k: f.k, d: int32(d), cap: int32(capacity), sealed: sealed || (capacity > 0 && p.Len() >= capacity), dirty: true}
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
	s.letGo(n)
}

// letGo takes n's page off the heap: its frame is recycled now if nobody
// uses it, or by the last caller using it (unpin). The store's lock is
// held.
func (s *Store) letGo(n *node) {
	f := n.f
	if f == nil {
		return
	}
	n.f = nil
	f.room = int32(f.p.Len()) // its arrays hold at least its tokens
	if f.state.Or(gone) == 0 {
		s.recycle(f)
	}
}

// unpin ends a caller's use of f, which get pinned.
func (s *Store) unpin(f *frame) {
	if f.state.Add(-1) == gone {
		s.mu.Lock()
		s.recycle(f)
		s.mu.Unlock()
	}
}

// maxSpare bounds the pages kept for refilling: a read back writes out
// about one page of the same size, so a few cover the workers' reads in
// flight and the key and value codecs of a layer. They are outside the
// heap budget: at most maxSpare pages more than HotBytes.
const maxSpare = 8

// recycle keeps f, which nobody uses any more, for the next page read
// back of its codec; the oldest spare makes room. The store's lock is
// held.
func (s *Store) recycle(f *frame) {
	if f.k.refill == nil || s.closed {
		return
	}
	f.state.Store(0)
	if len(s.spare) == maxSpare {
		copy(s.spare, s.spare[1:])
		s.spare = s.spare[:maxSpare-1]
	}
	s.spare = append(s.spare, f)
}

// takeSpare returns the spare frame of codec k and width d that fits
// best: the one of the smallest size(f) that is not negative (the page's
// bytes or tokens; -1 when it is too small), or nil. The store's lock is
// held.
func (s *Store) takeSpare(k *kind, d int32, size func(*frame) int64) *frame {
	best := -1
	var bb int64
	for i, f := range s.spare {
		if f.d != d || (f.k != k && f.k.name != k.name) {
			continue
		}
		if b := size(f); b >= 0 && (best < 0 || b < bb) {
			best, bb = i, b
		}
	}
	if best < 0 {
		return nil
	}
	f := s.spare[best]
	last := len(s.spare) - 1
	s.spare[best] = s.spare[last]
	s.spare[last] = nil
	s.spare = s.spare[:last]
	return f
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
		b := n.f.p.(kv.WirePage).AppendWire(s.buf[:0])
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
	s.letGo(n)
}

// load reads n's page back from the file, into a spare page of its codec
// when there is one (kv.WireRefiller): in steady state, when every page
// read back makes another leave, reading allocates nothing.
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
	var p kv.Page
	var err error
	var f *frame
	if n.k.refill != nil {
		f = s.takeSpare(n.k, n.d, func(f *frame) int64 {
			if b := f.p.Bytes(); b >= int64(n.size) {
				return b
			}
			return -1
		})
	}
	if f != nil {
		p, err = n.k.refill.RefillFromWire(f.p, int(n.d), b)
	} else {
		p, err = n.k.c.PageFromWire(int(n.d), b)
		f = &frame{k: n.k, d: n.d}
	}
	if err != nil {
		s.fail(fmt.Errorf("kv/offload: a page read back from the cold tier in %s: %w", s.dir, err))
		return false
	}
	f.p, f.k = p, n.k
	n.f = f
	hb := p.Bytes()
	n.hot.Store(hb)
	s.hot += hb
	s.cold -= n.cold.Swap(0)
	s.stats.Loads++
	s.stats.LoadBytes += int64(n.size)
	return true
}

// get returns the frame of n's page on the heap, read back if it was
// cold, or nil after a failure (Err). The frame is pinned: its page stays
// n's, unchanged, until the caller's unpin, even if another worker writes
// it out meanwhile (the page is then recycled at the unpin).
func (s *Store) get(n *node) *frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.f == nil && (n.dead || !s.load(n)) {
		return nil
	}
	s.touch(n)
	s.shrink(n)
	n.f.state.Add(1)
	return n.f
}

// mutate runs fn on n's page under the store's lock and accounts for
// what it changed. It reports false after a failure (Err).
func (s *Store) mutate(n *node, fn func(p kv.Page)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.f == nil && (n.dead || !s.load(n)) {
		return false
	}
	p := n.f.p
	fn(p)
	l := p.Len()
	n.n.Store(int32(l))
	if n.cap > 0 && l >= int(n.cap) {
		if _, ok := p.(kv.WirePage); ok {
			n.sealed = true
		}
	}
	n.dirty = true
	hb := p.Bytes()
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
	st := w.n.st
	f := st.get(w.n)
	if f == nil {
		clear(out[:g*w.Len()])
		return
	}
	f.p.Dot(q, g, out, sc)
	st.unpin(f)
}

func (w *page) AddWeighted(wt []float32, g int, out []float32, sc *kv.PageScratch) {
	st := w.n.st
	if f := st.get(w.n); f != nil {
		f.p.AddWeighted(wt, g, out, sc)
		st.unpin(f)
	}
}

func (w *page) Decode(i int, dst []float32) {
	st := w.n.st
	f := st.get(w.n)
	if f == nil {
		clear(dst[:int(w.n.d)])
		return
	}
	f.p.Decode(i, dst)
	st.unpin(f)
}

// AppendFrom appends token i of src by copying its codes when the
// codec's page can (kv.Stream packs pages this way; exact).
func (w *page) AppendFrom(src kv.Page, i int) bool {
	if sw, ok := src.(*page); ok {
		f := sw.n.st.get(sw.n)
		if f == nil {
			return false
		}
		defer sw.n.st.unpin(f)
		src = f.p
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
	f := n.st.get(n)
	if f == nil {
		return n.st.wrap(n.k.c.NewPage(d, capacity), n.k, d, capacity, false)
	}
	p := f.p
	var q kv.Page
	if c, ok := p.(interface{ Clone() kv.Page }); ok {
		q = c.Clone()
	} else {
		q = n.k.c.NewPage(d, max(capacity, p.Len()))
		x := make([]float32, d)
		for i := 0; i < p.Len(); i++ {
			p.Decode(i, x)
			q.Append(x, 1)
		}
	}
	n.st.unpin(f)
	n.st.mu.Lock()
	sealed := n.sealed
	n.st.mu.Unlock()
	return n.st.wrap(q, n.k, d, capacity, sealed)
}

// Width is the page's vector width (kv.WirePage).
func (w *page) Width() int { return int(w.n.d) }

// AppendWire appends the page's payload (kv.WirePage), read back from the
// file if it is there.
func (w *page) AppendWire(b []byte) []byte {
	f := w.n.st.get(w.n)
	if f == nil {
		return b
	}
	b = f.p.(kv.WirePage).AppendWire(b)
	w.n.st.unpin(f)
	return b
}
