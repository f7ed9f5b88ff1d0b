package chunk

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// StartRedis runs a private redis-server (Debian's; .ci/run installs it)
// on a free loopback port without persistence, stopped at the end of the
// test. The test skips when redis-server is not installed.
func StartRedis(t testing.TB) (url string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server): skipping the Redis tier test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return fmt.Sprintf("redis://127.0.0.1:%d/0", port), stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return "", nil
}

// TestRedisTier: a second store (another server) reads what the first
// wrote; with the server stopped, a lookup is a miss within the timeout
// and a Put is dropped, never an error.
func TestRedisTier(t *testing.T) {
	url, stop := StartRedis(t)
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
