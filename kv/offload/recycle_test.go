package offload

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// twins returns n sealed pages of width d for each codec of recipe r (its
// key and value codecs), made in st, and the same pages in memory.
func twins(t *testing.T, st *Store, r string, n, d int) (cold, mem []kv.Page) {
	t.Helper()
	cfg := recipeConfig(t, r)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, c := range []kv.Codec{cfg.K, cfg.V} {
		sc, err := st.Codec(c)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			x := make([]float32, kv.PageTokens*d)
			for j := range x {
				x[j] = float32(rng.NormFloat64())
			}
			a, b := sc.NewPage(d, kv.PageTokens), c.NewPage(d, kv.PageTokens)
			a.Append(x, kv.PageTokens)
			b.Append(x, kv.PageTokens)
			cold, mem = append(cold, a), append(mem, b)
		}
	}
	return cold, mem
}

// TestOffloadLoadAllocs: once a few pages have been written out, reading
// pages back in turn, each one making another leave, allocates nothing:
// the page written out is refilled by the next read (kv.WireRefiller).
func TestOffloadLoadAllocs(t *testing.T) {
	for _, r := range []string{"f16", "q8", "q4(mode=asym)", "kivi(bits=2,residual=32)"} {
		t.Run(r, func(t *testing.T) {
			const d = 64
			st := openTiny(t)
			cold, mem := twins(t, st, r, 4, d)
			q := make([]float32, d)
			for i := range q {
				q[i] = float32(i%7) - 3
			}
			out, want := make([]float32, kv.PageTokens), make([]float32, kv.PageTokens)
			var sc kv.PageScratch
			cycle := func() {
				for i, p := range cold {
					p.Dot(q, 1, out, &sc)
					mem[i].Dot(q, 1, want, &sc)
					if !sameBits(out, want) {
						t.Fatalf("page %d read back scores differently", i)
					}
				}
			}
			cycle() // every page written out once, the spares filled
			before := st.Stats().Loads
			allocs := testing.AllocsPerRun(20, cycle)
			loads := st.Stats().Loads - before
			// AllocsPerRun runs the cycle once more to warm up.
			if want := int64(21 * len(cold)); loads != want {
				t.Fatalf("%d pages read back in 21 cycles of %d pages, want %d: the budget keeps pages on the heap", loads, len(cold), want)
			}
			if allocs >= 1 {
				t.Errorf("%v allocations per cycle reading %d pages back", allocs, len(cold))
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && (a[i] == a[i] || b[i] == b[i]) {
			return false
		}
	}
	return true
}

// TestOffloadConcurrentReads: workers read pages (Dot, AddWeighted,
// Decode, AppendWire) while every read makes other pages leave the heap,
// so pages are written out and refilled while other workers use them;
// every result is the in-memory page's bit for bit. Run with -race: a page
// refilled while a worker reads it is a data race.
func TestOffloadConcurrentReads(t *testing.T) {
	const d, workers, reads = 32, 6, 400
	st, err := Open(Options{Dir: t.TempDir(), HotBytes: 3 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var cold, mem []kv.Page
	for _, r := range []string{"f16", "kivi(bits=4,residual=32)", "q4(mode=asym)"} {
		c, m := twins(t, st, r, 6, d)
		cold, mem = append(cold, c...), append(mem, m...)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			var sc kv.PageScratch
			const g = 2
			q := make([]float32, g*d)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			wt := make([]float32, g*kv.PageTokens)
			for i := range wt {
				wt[i] = rng.Float32()
			}
			a, b := make([]float32, g*d), make([]float32, g*d)
			for i := 0; i < reads; i++ {
				k := rng.IntN(len(cold))
				p, m := cold[k], mem[k]
				var ok bool
				switch i % 4 {
				case 0:
					p.Dot(q, g, a[:g*kv.PageTokens], &sc)
					m.Dot(q, g, b[:g*kv.PageTokens], &sc)
					ok = sameBits(a[:g*kv.PageTokens], b[:g*kv.PageTokens])
				case 1:
					clear(a)
					clear(b)
					p.AddWeighted(wt, g, a, &sc)
					m.AddWeighted(wt, g, b, &sc)
					ok = sameBits(a, b)
				case 2:
					j := rng.IntN(kv.PageTokens)
					p.Decode(j, a[:d])
					m.Decode(j, b[:d])
					ok = sameBits(a[:d], b[:d])
				case 3:
					ok = bytes.Equal(p.(kv.WirePage).AppendWire(nil), m.(kv.WirePage).AppendWire(nil))
				}
				if !ok {
					errs <- fmt.Errorf("worker %d, read %d (kind %d) of page %d: differs from the page in memory", w, i, i%4, k)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if s := st.Stats(); s.Loads < workers*reads/2 {
		t.Fatalf("only %d pages read back in %d reads: the test did not make pages leave", s.Loads, workers*reads)
	}
}

// TestOffloadNewPageReuses: once pages have been written out, a new page
// of their codec is made in a spare page's memory, empty, holding as
// much as a page made new, and fills exactly as one.
func TestOffloadNewPageReuses(t *testing.T) {
	for _, r := range []string{"f16", "q8", "kivi(bits=2,residual=32)"} {
		t.Run(r, func(t *testing.T) {
			const d = 64
			st := openTiny(t)
			cold, _ := twins(t, st, r, 3, d)
			x := make([]float32, kv.PageTokens*d)
			for _, p := range cold {
				p.Decode(0, x) // read back, making another page spare
			}
			st.mu.Lock()
			if len(st.spare) == 0 {
				st.mu.Unlock()
				t.Fatal("no spare page after reading pages back")
			}
			spare := st.spare[len(st.spare)-1]
			st.mu.Unlock()
			rc, _ := recipe.Parse(r)
			cfg, _ := rc.Config()
			c := cfg.K
			if c.Name() != spare.k.name {
				c = cfg.V
			}
			sc, err := st.Codec(c)
			if err != nil {
				t.Fatal(err)
			}
			p, m := sc.NewPage(d, kv.PageTokens), c.NewPage(d, kv.PageTokens)
			if p.(*page).n.f != spare {
				t.Fatalf("%s: a new page was allocated, not made in the spare page", c.Name())
			}
			if p.Len() != 0 || p.Bytes() != m.Bytes() {
				t.Fatalf("%s: new page of %d tokens and %d bytes, want 0 and %d", c.Name(), p.Len(), p.Bytes(), m.Bytes())
			}
			for j := range x {
				x[j] = float32(j%13) - 6
			}
			p.Append(x, kv.PageTokens)
			m.Append(x, kv.PageTokens)
			if !bytes.Equal(p.(kv.WirePage).AppendWire(nil), m.(kv.WirePage).AppendWire(nil)) {
				t.Fatalf("%s: a page made in a spare's memory fills differently", c.Name())
			}
		})
	}
}
