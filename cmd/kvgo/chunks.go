package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	kvchunk "github.com/kvgo/kvgo/kv/reuse/chunk"
)

// chunkFlags are the chunk store's flags, shared by serve and run: chunk
// caches are used by requests whose recipe has a repair policy that
// reuses them (cachecraft, cacheblend, epic, naive; kvgo kv list).
type chunkFlags struct {
	mem, dir, redis, sep string
	ttl, timeout         time.Duration
}

func addChunkFlags(fs *flag.FlagSet, mem string) *chunkFlags {
	c := &chunkFlags{}
	fs.StringVar(&c.mem, "chunk-mem", mem, "RAM `budget` of chunk caches (RAG documents reused across requests; evicted by utility)")
	fs.StringVar(&c.dir, "chunk-dir", "", "keep chunk caches as files in `dir` too (they survive a restart)")
	fs.StringVar(&c.redis, "chunk-redis", "", "share chunk caches through the Redis server at `url` (redis://host:6379/0)")
	fs.DurationVar(&c.ttl, "chunk-ttl", time.Hour, "how long chunk caches live in Redis")
	fs.DurationVar(&c.timeout, "chunk-timeout", 250*time.Millisecond, "bound of each disk or Redis operation; a slower one is a miss and the chunk is computed")
	fs.StringVar(&c.sep, "chunk-sep", "", "`separator` marking the chunks of a plain prompt, e.g. \" # # \": text before the first and after the last is always computed")
	return c
}

// open builds the store; close releases its Redis client after pending
// writes.
func (c *chunkFlags) open() (store *kvchunk.Store, close func(), err error) {
	budget, err := parseSize(c.mem)
	if err != nil {
		return nil, nil, usagef("invalid value %q for --chunk-mem: %v", c.mem, err)
	}
	var tiers []kvchunk.Tier
	var closers []io.Closer
	if c.dir != "" {
		d, err := kvchunk.OpenDisk(c.dir)
		if err != nil {
			return nil, nil, err
		}
		tiers = append(tiers, d)
	}
	if c.redis != "" {
		r, err := kvchunk.OpenRedis(c.redis, c.timeout, c.ttl)
		if err != nil {
			return nil, nil, usagef("invalid value %q for --chunk-redis: %v", c.redis, err)
		}
		tiers = append(tiers, r)
		closers = append(closers, r)
	}
	store = kvchunk.New(budget, tiers...)
	store.Timeout = c.timeout
	return store, func() {
		store.Flush()
		for _, x := range closers {
			x.Close()
		}
	}, nil
}

// describe is the store in one phrase for a start-up line.
func (c *chunkFlags) describe() string {
	s := fmt.Sprintf("chunk caches: %s RAM", c.mem)
	if c.dir != "" {
		s += ", disk " + c.dir
	}
	if c.redis != "" {
		s += ", redis " + c.redis
	}
	return s
}

// textList is a repeatable string flag.
type textList []string

func (l *textList) String() string     { return fmt.Sprint(*l) }
func (l *textList) Set(s string) error { *l = append(*l, s); return nil }
