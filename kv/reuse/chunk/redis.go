package chunk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps entries in a Redis server shared by several kvgo servers:
// one string value per key (the entry's message), set with a TTL. The
// client fails fast (no retries, short dial, read and write timeouts), so
// a server that is down or slow costs a request the time of one timeout
// and a recomputed chunk, never a failure.
type Redis struct {
	c      *redis.Client
	prefix string
	ttl    time.Duration
	bytes  atomic.Int64
}

// OpenRedis connects to the server at url ("redis://host:6379/0"; see
// redis.ParseURL) with the given operation timeout; values expire after
// ttl (0: never). It does not wait for the server: a server that is down
// now may be up at the first request.
func OpenRedis(url string, timeout, ttl time.Duration) (*Redis, error) {
	quiet.Do(func() { redis.SetLogger(silent{}) })
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("chunk: redis tier: %w", err)
	}
	if timeout <= 0 {
		timeout = 250 * time.Millisecond
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = timeout, timeout, timeout
	opt.MaxRetries = -1 // no retries: a chunk that cannot be read is computed
	opt.PoolTimeout = timeout
	opt.ContextTimeoutEnabled = true
	return &Redis{c: redis.NewClient(opt), prefix: "kvgo:chunk:", ttl: ttl}, nil
}

// Name is "redis".
func (r *Redis) Name() string { return "redis" }

// Get reads an entry's message.
func (r *Redis) Get(ctx context.Context, id string) ([]byte, error) {
	b, err := r.c.Get(ctx, r.prefix+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return b, err
}

// Put writes an entry's message with the tier's TTL.
func (r *Redis) Put(ctx context.Context, id string, b []byte) error {
	if err := r.c.Set(ctx, r.prefix+id, b, r.ttl).Err(); err != nil {
		return err
	}
	r.bytes.Add(int64(len(b)))
	return nil
}

// Delete removes an entry.
func (r *Redis) Delete(ctx context.Context, id string) error {
	return r.c.Del(ctx, r.prefix+id).Err()
}

// Bytes is what this server has written to Redis (the shared server's
// own total is not asked for on every scrape).
func (r *Redis) Bytes() int64 { return r.bytes.Load() }

// Ping checks the server.
func (r *Redis) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }

// Close closes the client.
func (r *Redis) Close() error { return r.c.Close() }

// quiet keeps go-redis from logging every failed dial to stderr: a
// server that is down is counted in the tier's errors instead.
var quiet sync.Once

type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}
