package kv

// Read-only views of a stream's pages for inspection (kvgo serve's KV
// inspector): they walk what is there and copy nothing of the cache.

// PageBytes is the memory page i holds: its key page plus its value page.
func (s *Stream) PageBytes(i int) int64 {
	p := s.pages[i]
	b := p.k.Bytes()
	if p.v != nil {
		b += p.v.Bytes()
	}
	return b
}

// TailLen is the number of tokens in the stream's F16 tail (not yet
// sealed into a page).
func (s *Stream) TailLen() int { return s.tailLen() }

// TailBytes is the memory of the tail, keys and values.
func (s *Stream) TailBytes() int64 { return int64(cap(s.tk)+cap(s.tv)) * 2 }
