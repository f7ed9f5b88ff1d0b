package kv

// A ColdPage is a page whose codes may live off the heap, in a cold tier's
// file (kv/offload): its Bytes counts only what is on the heap now, and
// ColdBytes what is held elsewhere. A cache whose codecs make such pages
// keeps its page summaries, positions and tail on the heap as always.
type ColdPage interface {
	Page
	ColdBytes() int64
}

// ColdBytes is the memory of the cache's pages held off the heap by a cold
// tier (kv/offload). Bytes counts only what is on the heap, so Bytes plus
// ColdBytes is what the cache would hold with every page in memory (up to
// the spare capacity of pages, which a page read back from the tier does
// not have). Zero for a cache without one.
func (c *Cache) ColdBytes() int64 {
	var b int64
	for _, s := range c.streams {
		for _, p := range s.pages {
			if cp, ok := p.k.(ColdPage); ok {
				b += cp.ColdBytes()
			}
			if cp, ok := p.v.(ColdPage); ok {
				b += cp.ColdBytes()
			}
		}
	}
	return b
}
