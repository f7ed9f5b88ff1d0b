package kv

import (
	"cmp"
	"slices"
	"sort"

	"github.com/kvgo/kvgo/kernel"
)

// Overwriting held tokens in batches. Chunk repair (CacheBlend, EPIC,
// Cache-Craft: kv/reuse/repair) recomputes chosen tokens of a reused chunk
// through every layer, and Cache.Begin/Store write their fresh keys and
// values over the spliced ones. A page cannot change one token in place
// (its codes may share per-group statistics, as KIVI's per-channel key
// scales do), so a touched page is rebuilt. Rebuilding it once per
// overwritten token made a repair batch cost O(tokens × page) per stream:
// with KIVI-4 on kvgo-tiny, `cachecraft+kivi(bits=4)` spent a third of its
// prefill decoding and re-quantizing the same groups, and was slower than
// full prefill (docs/RAG.md). overwriteAll takes a batch's overwrites of
// one stream together and rebuilds each touched page once, with all of
// its new tokens: a KIVI key group is quantized again once per batch, from
// its other tokens' decoded values and the batch's exact ones.

// tokenWrite is one overwrite: stream index i gets key k and value v.
type tokenWrite struct {
	i    int
	k, v []float32
}

func byIndex(a, b tokenWrite) int { return cmp.Compare(a.i, b.i) }

// overwriteAll replaces the keys and values of the tokens in ws (distinct
// stream indices, in any order). Tail tokens are written in place; each
// page holding some of them is rebuilt once.
func (s *Stream) overwriteAll(ws []tokenWrite, buf *[]float32) {
	if len(ws) == 1 {
		s.overwrite(ws[0].i, ws[0].k, ws[0].v, buf)
		return
	}
	// starts[p] is the stream index of page p's first token; the tail
	// starts at starts[len(pages)].
	starts := make([]int, len(s.pages)+1)
	for p, pp := range s.pages {
		starts[p+1] = starts[p] + pp.k.Len()
	}
	// A batch's positions usually come sorted (chunk repair sorts them).
	if !slices.IsSortedFunc(ws, byIndex) {
		slices.SortFunc(ws, byIndex)
	}
	for a := 0; a < len(ws); {
		pi := sort.SearchInts(starts, ws[a].i+1) - 1
		if pi >= len(s.pages) {
			for _, w := range ws[a:] {
				j := w.i - starts[len(s.pages)]
				kernel.ToF16(s.tk[j*s.dk:(j+1)*s.dk], w.k)
				if !s.shared {
					kernel.ToF16(s.tv[j*s.dv:(j+1)*s.dv], w.v)
				}
			}
			return
		}
		b := a
		for b < len(ws) && ws[b].i < starts[pi+1] {
			b++
		}
		s.rebuildPage(pi, starts[pi], ws[a:b], buf)
		a = b
	}
}

// rebuildPage replaces page pi (whose first token is stream index base)
// by pages of the same codecs holding ws's new keys and values.
func (s *Stream) rebuildPage(pi, base int, ws []tokenWrite, buf *[]float32) {
	p := &s.pages[pi]
	p.k = s.rebuildMany(p.k, s.kc, s.dk, base, ws, false, buf)
	if p.v != nil {
		p.v = s.rebuildMany(p.v, s.vc, s.dv, base, ws, true, buf)
	}
	if p.ref != nil {
		p.ref.Add(-1)
		p.ref = nil
		p.sum = nil
	}
	if s.sums {
		s.summarize(pi, buf)
	}
}

// rebuildMany returns a new page of codec c with page old's tokens, those
// in ws (stream indices from base, sorted) replaced by their key (or
// value).
func (s *Stream) rebuildMany(old Page, c Codec, d, base int, ws []tokenWrite, value bool, buf *[]float32) Page {
	n := old.Len()
	row := func(w tokenWrite) []float32 {
		if value {
			return w.v
		}
		return w.k
	}
	if s.group == 0 {
		q := c.NewPage(d, PageTokens)
		w := 0
		for t := 0; t < n; t++ {
			if w < len(ws) && ws[w].i-base == t {
				q.Append(row(ws[w]), 1)
				w++
				continue
			}
			copyToken(q, old, t, d, buf)
		}
		return q
	}
	all := make([]float32, n*d)
	w := 0
	for t := 0; t < n; t++ {
		if w < len(ws) && ws[w].i-base == t {
			copy(all[t*d:(t+1)*d], row(ws[w]))
			w++
			continue
		}
		old.Decode(t, all[t*d:(t+1)*d])
	}
	q := c.NewPage(d, n)
	q.Append(all, n)
	return q
}

// batchWrites appends to ws the current batch's overwrites of stream s
// (KV head h): k and v hold the batch's rows as Cache.Store receives them.
// Store hands the same ws back for every stream of every layer, so a
// repair batch does not allocate one per stream.
func (c *Cache) batchWrites(ws []tokenWrite, s *Stream, h int, k, v []float32, dk, dv int) []tokenWrite {
	H := c.shape.KVHeads
	for i, over := range c.batchOver {
		if !over {
			continue
		}
		w := tokenWrite{i: s.index(c.batch[i]), k: k[i*H*dk+h*dk : i*H*dk+(h+1)*dk]}
		if v != nil {
			w.v = v[i*H*dv+h*dv : i*H*dv+(h+1)*dv]
		}
		ws = append(ws, w)
	}
	return ws
}
