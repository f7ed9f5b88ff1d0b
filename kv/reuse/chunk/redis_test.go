package chunk

import (
	"context"
	"testing"
	"time"

	"github.com/kvgo/kvgo/kv/reuse/chunk/chunktest"
)

// TestRedisTier: a second store (another server) reads what the first
// wrote; with the server stopped, a lookup is a miss within the timeout
// and a Put is dropped, never an error.
func TestRedisTier(t *testing.T) {
	url, stop := chunktest.StartRedis(t)
	lay := Layout{Shape: shape, Config: config(t, "f16", nil), Capacity: 4096}
	ctx := context.Background()
	e := entry(t, lay, 3, 70, 5)
	r1, err := OpenRedis(url, 200*time.Millisecond, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := New(1<<20, r1)
	a.Put(keyOf(e, ""), e)
	a.Flush()
	r2, _ := OpenRedis(url, 200*time.Millisecond, time.Hour)
	b := New(1<<20, r2)
	got, tier := b.Get(ctx, keyOf(e, ""), lay)
	if got == nil || tier != "redis" {
		t.Fatalf("second server: %v from %q", got, tier)
	}
	sameCache(t, e.Cache, got.Cache)
	if got, _ := b.Get(ctx, keyOf(e, "other tenant"), lay); got != nil {
		t.Fatal("another tenant read the chunk")
	}

	stop()
	c := New(1<<20, r2)
	t0 := time.Now()
	if got, _ := c.Get(ctx, keyOf(e, ""), lay); got != nil {
		t.Fatal("a stopped server served a chunk")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("a lookup on a stopped server took %v", d)
	}
	c.Put(keyOf(e, "x"), e)
	c.Flush()
	st := c.Stats()[1]
	if st.Errors < 2 || st.Dropped != 1 {
		t.Errorf("redis stats with the server down: %+v", st)
	}
	if got, tier := c.Get(ctx, keyOf(e, "x"), lay); got == nil || tier != "ram" {
		t.Error("the entry did not stay in RAM")
	}
}
