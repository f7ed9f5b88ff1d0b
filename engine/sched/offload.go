package sched

import (
	"fmt"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/offload"
)

// A scheduler whose engine has a cold tier (engine.Engine.Offload, kvgo
// serve --kv-offload) gives each sequence a store of its own: its pages go
// to a file and only the pages read most recently stay on the heap, so
// admission counts what is on the heap (kv.Cache.Bytes and OwnedBytes
// count exactly that, and the reservations are capped by coldBound). A
// sequence's file is removed when it finishes, whatever the reason;
// finished caches are not offered to the prefix cache (their pages would
// outlive the file), and chunk reuse is not used.

// coldCodecs puts the codecs of q's cache in a store of its own, when the
// engine has a cold tier.
func (s *Scheduler) coldCodecs(q *seq, cfg *kv.Config) error {
	if s.eng.Offload == nil {
		return nil
	}
	st, err := offload.Open(*s.eng.Offload)
	if err != nil {
		return err
	}
	if cfg.K, err = st.Codec(cfg.K); err == nil {
		cfg.V, err = st.Codec(cfg.V)
	}
	if err != nil {
		st.Close()
		return err
	}
	q.store = st
	return nil
}

// closeStore removes q's file.
func (s *Scheduler) closeStore(q *seq) {
	if err := q.store.Close(); err != nil {
		s.logf("sched: sequence %d: %v", q.id, err)
	}
	q.store = nil
}

// coldFailed fails q when its cold tier could not write or read a page
// in the last pass (a full disk): its attention then is not to be
// trusted. It reports whether q failed.
func (s *Scheduler) coldFailed(q *seq) bool {
	err := q.store.Err()
	if err == nil {
		return false
	}
	s.finish(q, Event{Done: true, Finish: FinishError, Err: fmt.Errorf("%w: %v", ErrInternal, err)})
	return true
}

// coldBound is the most bytes a stream-set of a sequence holding t tokens
// per stream keeps on the heap with a cold tier: the tier's budget of
// pages, and per stream what never goes to the file: the page being
// filled and a group codec's tail (the codec's own bytes for two of its
// periods, which hold both), positions and an evictor's statistics (4 and
// 8 bytes a token), and key summaries (per page, the minimum and maximum
// of every key channel in F32). Without a cold tier it is unbounded.
func (p *plan) coldBound(t int) int64 {
	o := p.f.cold
	if o == nil {
		return 1<<62 - 1
	}
	hot := o.HotBytes
	if hot == 0 {
		hot = offload.DefaultHotBytes
	}
	per := int64(4)
	if p.evicts {
		per += 8
	}
	page := kv.PageTokens
	if g := p.codec.period / 4; g > 0 && g < page {
		page = g
	}
	d := int64(widest(p.f.shape).Key)
	pages := int64(t/page + 1)
	return hot + p.streams*(p.codec.bytes(min(t, 2*p.codec.period))+per*int64(t)+pages*2*d*4)
}
