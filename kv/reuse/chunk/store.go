package chunk

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A Tier keeps entries' messages off RAM: a directory (Disk), a Redis
// server (Redis). Get returns ErrNotFound for a key it does not hold; any
// other error (the server is down, the operation timed out) makes the
// Store go on as if the tier had missed: a chunk it cannot read is
// computed again, never a failed request.
type Tier interface {
	Name() string
	Get(ctx context.Context, id string) ([]byte, error)
	Put(ctx context.Context, id string, b []byte) error
	Delete(ctx context.Context, id string) error
	// Bytes is what the tier holds (or has written, when it cannot tell).
	Bytes() int64
}

// ErrNotFound is a tier's miss.
var ErrNotFound = errors.New("chunk: not found")

// TierStats are a tier's counters since the Store was made.
type TierStats struct {
	Tier string
	// Hits and Misses count lookups; Errors counts failed operations
	// (unreachable, timed out) and Corrupt entries that failed their
	// checks and were dropped.
	Hits, Misses, Errors, Corrupt int64
	// Puts counts entries written; Dropped those not written because
	// too many writes were already in flight or the write failed.
	Puts, Dropped, Evictions int64
	// Bytes held now.
	Bytes int64
	// Entries held now (RAM only).
	Entries int
}

// Store keeps chunk caches in RAM within Budget bytes and writes them
// through to its lower tiers, which fill RAM misses. It is safe for
// concurrent use; entries are immutable once stored, so a reader may
// splice an entry while another request evicts it.
//
// RAM evicts by utility, not recency: each entry has the priority
// L + hits·tokens/bytes (Greedy-Dual-Size-Frequency, Cherkasova 1998),
// hits counting its insertion, tokens the chunk's length (the prefill a
// hit saves at most) and L the priority of the last entry evicted, which
// ages entries that stop being used so that a chunk popular long ago does
// not stay forever. A chunk that saves many tokens per byte (long chunks,
// small codecs) and recurs often stays longest.
type Store struct {
	// Budget is the most bytes RAM holds (kv.Cache.Bytes of the entries
	// plus their statistics).
	Budget int64
	// Timeout bounds each lower-tier operation (default 250ms).
	Timeout time.Duration
	// MaxWrites bounds the writes to lower tiers in flight (default 8);
	// further ones are dropped (the entry stays in RAM).
	MaxWrites int

	tiers []Tier

	mu    sync.Mutex
	items map[Key]*item
	bytes int64
	age   float64 // L: the priority of the last entry evicted
	stats map[string]*TierStats
	sem   chan struct{}
	wg    sync.WaitGroup
}

type item struct {
	e     *Entry
	bytes int64
	hits  int64
	prio  float64
}

// New returns a store of budget bytes of RAM over the given lower tiers,
// searched in order (put the fastest first).
func New(budget int64, tiers ...Tier) *Store {
	s := &Store{Budget: budget, tiers: tiers, items: map[Key]*item{}, stats: map[string]*TierStats{"ram": {Tier: "ram"}}}
	for _, t := range tiers {
		s.stats[t.Name()] = &TierStats{Tier: t.Name()}
	}
	return s
}

func (s *Store) timeout() time.Duration {
	if s.Timeout <= 0 {
		return 250 * time.Millisecond
	}
	return s.Timeout
}

// Get returns the entry of k and the tier it came from ("ram", "disk",
// "redis"), or nil and "" on a miss. An entry read from a lower tier is
// checked (Unmarshal: checksums, model identity, codec, token hash) and
// kept in RAM; one that fails the checks is deleted from its tier and
// counted Corrupt.
func (s *Store) Get(ctx context.Context, k Key, lay Layout) (*Entry, string) {
	s.mu.Lock()
	if it, ok := s.items[k]; ok {
		it.hits++
		it.prio = s.age + float64(it.hits)*float64(it.e.Tokens)/float64(it.bytes)
		s.stats["ram"].Hits++
		s.mu.Unlock()
		return it.e, "ram"
	}
	s.stats["ram"].Misses++
	s.mu.Unlock()
	id := k.ID()
	for _, t := range s.tiers {
		st := s.stat(t.Name())
		tctx, cancel := context.WithTimeout(ctx, s.timeout())
		b, err := t.Get(tctx, id)
		cancel()
		switch {
		case errors.Is(err, ErrNotFound):
			s.count(&st.Misses)
			continue
		case err != nil:
			s.count(&st.Errors)
			continue
		}
		e, err := Unmarshal(k.Model, k, lay, b)
		if err != nil {
			s.count(&st.Corrupt)
			dctx, cancel := context.WithTimeout(context.Background(), s.timeout())
			_ = t.Delete(dctx, id)
			cancel()
			continue
		}
		s.count(&st.Hits)
		s.insert(k, e)
		return e, t.Name()
	}
	return nil, ""
}

func (s *Store) stat(name string) *TierStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats[name]
}

func (s *Store) count(c *int64) {
	s.mu.Lock()
	*c++
	s.mu.Unlock()
}

// Put stores an entry computed for k: in RAM (evicting by utility to make
// room; an entry larger than the whole budget is not kept in RAM) and,
// in the background, in every lower tier.
func (s *Store) Put(k Key, e *Entry) {
	s.insert(k, e)
	if len(s.tiers) == 0 {
		return
	}
	b, err := Marshal(k.Model, e)
	if err != nil {
		for _, t := range s.tiers {
			s.count(&s.stat(t.Name()).Dropped)
		}
		return
	}
	id := k.ID()
	for _, t := range s.tiers {
		st := s.stat(t.Name())
		s.mu.Lock()
		if s.sem == nil {
			s.sem = make(chan struct{}, max(s.MaxWrites, 8))
		}
		sem := s.sem
		s.mu.Unlock()
		select {
		case sem <- struct{}{}:
		default:
			s.count(&st.Dropped)
			continue
		}
		s.wg.Add(1)
		go func(t Tier) {
			defer s.wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
			defer cancel()
			if err := t.Put(ctx, id, b); err != nil {
				s.count(&st.Errors)
				s.count(&st.Dropped)
				return
			}
			s.count(&st.Puts)
		}(t)
	}
}

// insert keeps e in RAM under k, evicting the entries of lowest priority
// while the budget is exceeded.
func (s *Store) insert(k Key, e *Entry) {
	b := e.Bytes()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.items[k]; ok {
		s.bytes -= old.bytes
		delete(s.items, k)
	}
	if b > s.Budget {
		return
	}
	it := &item{e: e, bytes: b, hits: 1}
	it.prio = s.age + float64(e.Tokens)/float64(b)
	s.items[k] = it
	s.bytes += b
	s.stats["ram"].Puts++
	for s.bytes > s.Budget {
		var victim Key
		var low *item
		for key, x := range s.items {
			if x != it && (low == nil || x.prio < low.prio) {
				victim, low = key, x
			}
		}
		if low == nil {
			break
		}
		s.age = low.prio
		s.bytes -= low.bytes
		delete(s.items, victim)
		s.stats["ram"].Evictions++
	}
}

// Flush waits for the background writes to the lower tiers.
func (s *Store) Flush() { s.wg.Wait() }

// Bytes is what RAM holds.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Stats returns the counters of RAM and of each lower tier, in order.
func (s *Store) Stats() []TierStats {
	s.mu.Lock()
	out := []TierStats{*s.stats["ram"]}
	out[0].Bytes, out[0].Entries = s.bytes, len(s.items)
	for _, t := range s.tiers {
		out = append(out, *s.stats[t.Name()])
	}
	s.mu.Unlock()
	for i, t := range s.tiers {
		out[i+1].Bytes = t.Bytes()
	}
	return out
}

// Tiers are the store's lower tiers.
func (s *Store) Tiers() []Tier { return s.tiers }
