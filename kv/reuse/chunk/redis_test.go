package chunk

import (
	"context"
	"net"
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

// TestSlowRedisIsAMiss: a server that accepts connections and never
// answers costs a lookup one timeout, and the chunk is a miss.
func TestSlowRedisIsAMiss(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	r, err := OpenRedis("redis://"+l.Addr().String()+"/0", 100*time.Millisecond, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lay := Layout{Shape: shape, Config: config(t, "f16", nil), Capacity: 4096}
	e := entry(t, lay, 0, 40, 8)
	s := New(1<<20, r)
	s.Timeout = 100 * time.Millisecond
	t0 := time.Now()
	if got, _ := s.Get(context.Background(), keyOf(e, ""), lay); got != nil {
		t.Fatal("a silent server served a chunk")
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("a lookup on a silent server took %v", d)
	}
	s.Put(keyOf(e, ""), e)
	s.Flush()
	if st := s.Stats()[1]; st.Errors != 2 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
}
