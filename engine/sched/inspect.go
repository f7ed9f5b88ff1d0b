package sched

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kvgo/kvgo/kv"
)

// Inspection: what a sequence's KV cache holds, for kvgo serve's inspector
// page (GET /v1/kv/inspect).
//
// The loop answers between steps: Inspect queues a question and sets one
// atomic flag; the loop checks the flag after each step's bookkeeping and,
// only when it is set, walks the asked sequence's streams and writes a
// compact Snapshot (kept positions as run-length ranges, each page's
// positions, codec and bytes). Nothing is locked inside the decode loop and
// no key or value is copied. When nobody asks, the cost of a step is one
// atomic load, and a finished sequence's snapshot is made only if its
// request set Request.Inspect.

// Snapshot is a sequence's KV cache as the inspector shows it.
type Snapshot struct {
	Seq    uint64 `json:"seq"`
	Live   bool   `json:"live"` // still running; else its final state
	Recipe string `json:"recipe"`
	// Tokens are the prompt's then the generated tokens; position i holds
	// Tokens[i].
	Tokens  []int `json:"-"`
	Prompt  int   `json:"prompt_tokens"`
	Layers  int   `json:"layers"`
	KVHeads int   `json:"kv_heads"`
	// Positions is one past the largest position the cache has seen.
	Positions int `json:"positions"`
	// Bytes is what the cache holds; FullF16Bytes what the full F16 cache
	// would hold for the same positions.
	Bytes        int64  `json:"bytes"`
	FullF16Bytes int64  `json:"full_f16_bytes"`
	Codec        string `json:"codec"` // of every page (the tail is F16)
	// Selector names the recipe's selector, whose choice at the last
	// decode step each Page.Read gives ("" without one).
	Selector string   `json:"selector,omitempty"`
	Streams  []Stream `json:"streams"`
}

// Stream is one (layer, KV head) of a Snapshot.
type Stream struct {
	Layer int `json:"layer"`
	Head  int `json:"kv_head"`
	Kept  int `json:"kept"`
	// Ranges are the kept positions as [first, last] runs, in stream order.
	Ranges [][2]int32 `json:"ranges"`
	Pages  []Page     `json:"pages"`
	// Tail is the tokens not yet sealed into a page, held in F16.
	Tail      int   `json:"tail_tokens"`
	TailBytes int64 `json:"tail_bytes"`
	Bytes     int64 `json:"bytes"`
}

// Page is one sealed page of a Stream: the positions of its first and
// last token, its token count and the bytes of its key and value pages.
type Page struct {
	First  int32 `json:"first"`
	Last   int32 `json:"last"`
	Tokens int   `json:"tokens"`
	Bytes  int64 `json:"bytes"`
	// Read says whether the selector read the page at the last decode
	// step (nil: no selector, or the page is newer than that step).
	Read *bool `json:"read,omitempty"`
}

// inspector is the scheduler's side of Inspect.
type inspector struct {
	asked   atomic.Bool
	mu      sync.Mutex
	pending []inspectAsk
	// last holds, per tenant, the final snapshot of its latest sequence
	// that asked to be inspected (loop-owned).
	last map[string]*Snapshot
	// reads holds the read recorders of inspected sequences' caches
	// (inspect_reads.go; loop-owned).
	reads map[*kv.Cache]*readRecorder
}

type inspectAsk struct {
	tenant string
	reply  chan *Snapshot
}

// Inspect returns a snapshot of the tenant's latest sequence that set
// Request.Inspect: the running one (taken between two steps), else the
// final state of the last that finished; nil if there is none. A tenant
// only ever sees its own sequences.
func (s *Scheduler) Inspect(ctx context.Context, tenant string) (*Snapshot, error) {
	a := inspectAsk{tenant: tenant, reply: make(chan *Snapshot, 1)}
	s.insp.mu.Lock()
	s.insp.pending = append(s.insp.pending, a)
	s.insp.mu.Unlock()
	s.insp.asked.Store(true)
	s.poke()
	select {
	case snap := <-a.reply:
		return snap, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrShutdown
	}
}

// serveInspect answers the pending questions; the loop calls it between
// steps, and it returns at once when nobody asked.
func (s *Scheduler) serveInspect() {
	if !s.insp.asked.Load() {
		return
	}
	s.insp.asked.Store(false)
	s.insp.mu.Lock()
	asks := s.insp.pending
	s.insp.pending = nil
	s.insp.mu.Unlock()
	for _, a := range asks {
		var snap *Snapshot
		for _, q := range slices.Backward(s.running) {
			if q.req.Inspect && q.req.Tenant == a.tenant && q.cache != nil {
				snap = s.snapshot(q, true)
				break
			}
		}
		if snap == nil {
			snap = s.insp.last[a.tenant]
		}
		a.reply <- snap
	}
}

// keepInspected records the final state of a finishing sequence that asked
// to be inspected, before its cache goes.
func (s *Scheduler) keepInspected(q *seq) {
	if s.insp.last == nil || len(s.insp.last) >= 1024 {
		s.insp.last = map[string]*Snapshot{}
	}
	s.insp.last[q.req.Tenant] = s.snapshot(q, false)
	delete(s.insp.reads, q.cache)
}

// snapshot walks q's cache; it runs on the loop.
func (s *Scheduler) snapshot(q *seq, live bool) *Snapshot {
	c := q.cache
	sh := c.Shape()
	cfg := c.Config()
	codec := cfg.K.Name()
	if v := cfg.V.Name(); v != codec && !sh.ValueInKey {
		codec += "/" + v
	}
	snap := &Snapshot{Seq: q.id, Live: live, Recipe: q.recipe.String(),
		Tokens: append(slices.Clip(q.prompt[:q.fed]), q.generated...), Prompt: len(q.prompt),
		Layers: sh.Layers, KVHeads: sh.KVHeads, Positions: c.NextPos(),
		Bytes: c.Bytes(), FullF16Bytes: s.eng.FullCacheBytes(c.NextPos()), Codec: codec,
		Streams: make([]Stream, 0, sh.Layers*sh.KVHeads)}
	rec := s.insp.reads[c]
	if rec != nil {
		snap.Selector = rec.inner.Name()
	}
	for l := range sh.Layers {
		for h := range sh.KVHeads {
			st := c.Stream(l, h)
			pos := st.Positions()
			out := Stream{Layer: l, Head: h, Kept: len(pos), Ranges: ranges(pos), Tail: st.TailLen(), TailBytes: st.TailBytes(), Bytes: st.Bytes()}
			at := 0
			for i := range st.Pages() {
				n := st.PageLen(i)
				if n > 0 && at+n <= len(pos) {
					p := Page{First: pos[at], Last: pos[at+n-1], Tokens: n, Bytes: st.PageBytes(i)}
					if rec != nil && i < len(rec.reads[l*sh.KVHeads+h]) {
						read := rec.reads[l*sh.KVHeads+h][i] // a copy: the next step overwrites the mask
						p.Read = &read
					}
					out.Pages = append(out.Pages, p)
				}
				at += n
			}
			snap.Streams = append(snap.Streams, out)
		}
	}
	return snap
}

// ranges writes positions as runs of consecutive values.
func ranges(pos []int32) [][2]int32 {
	var r [][2]int32
	for i, p := range pos {
		if i > 0 && p == pos[i-1]+1 {
			r[len(r)-1][1] = p
			continue
		}
		r = append(r, [2]int32{p, p})
	}
	return r
}
