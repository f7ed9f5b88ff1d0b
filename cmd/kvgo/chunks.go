package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
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

// runChunks tokenizes kvgo run's prompt with its chunks (--chunk texts
// before the prompt, or the prompt split at --chunk-sep) and, when the
// recipe's repair policy reuses chunk caches, opens the store for it.
// done waits for the store's writes.
func runChunks(e *engine.Engine, r *recipe.Recipe, chunks []string, prompt string, cf *chunkFlags) (ids []int, req engine.Request, done func(), err error) {
	done = func() {}
	var parts []engine.Part
	for _, c := range chunks {
		parts = append(parts, engine.Part{Text: c, Chunk: true})
	}
	if len(chunks) > 0 {
		parts = append(parts, engine.Part{Text: prompt})
	} else {
		parts = engine.SplitChunks(prompt, cf.sep)
	}
	p := e.EncodeParts(parts, true, false)
	req.Chunks = p.Chunks
	rep, err := r.Repair()
	if err != nil || rep == nil || rep.Reuse() != kv.ReuseChunks || len(p.Chunks) == 0 {
		return p.Tokens, req, done, err
	}
	store, done, err := cf.open()
	if err != nil {
		return nil, req, func() {}, err
	}
	req.Reuse = &engine.ChunkOptions{Store: store, Repair: rep, Recipe: r, Model: e.Identity()}
	return p.Tokens, req, done, nil
}

// printReuse is kvgo run's line about chunk reuse.
func printReuse(w io.Writer, st engine.ReuseStats) {
	tiers := ""
	for _, t := range []string{"ram", "disk", "redis"} {
		if n := st.Tiers[t]; n > 0 {
			tiers += fmt.Sprintf(" %s %d", t, n)
		}
	}
	fmt.Fprintf(w, "chunks: %d of %d found (%s) | chunk tokens: %d reused, %d recomputed of %d | prompt tokens computed: %d\n",
		st.Hits, st.Chunks, strings.TrimSpace(tiers+" "), st.Reused, st.Recomputed, st.ChunkTokens, st.Computed)
}
