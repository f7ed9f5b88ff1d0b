package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/internal/units"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
	"github.com/kvgo/kvgo/server"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[-m FILE] [--host ADDR] [--port N] [--kv RECIPE] [--kv-mem SIZE] [flags]")
	var mf modelFlags
	mf.register(fs)
	host := fs.String("host", "127.0.0.1", "`address` to listen on (0.0.0.0 for every interface)")
	port := fs.Int("port", 8080, "TCP `port` (0: any free port, printed at start)")
	name := fs.String("model-name", "", "model `id` clients send (default: the file name without .gguf, or kvgo-tiny)")
	kvFlag := fs.String("kv", recipe.Default, "default KV cache `recipe` of requests without \"kv\" (see kvgo kv list)")
	allow := fs.String("kv-allow", "*", "comma-separated KV `methods` a request's \"kv\" may name (* = all)")
	mem := fs.String("kv-mem", "2GiB", "KV cache memory `budget`; requests are admitted while their predicted bytes fit (e.g. 512MiB, 2GiB)")
	queue := fs.Int("queue", 64, "requests that may wait for admission; more get 429")
	maxSeqs := fs.Int("max-seqs", 32, "sequences running at once, at most")
	batch := fs.Int("batch", 256, "tokens per forward pass (decode tokens plus prefill chunks)")
	chunk := fs.Int("prefill-chunk", 128, "prompt tokens fed per step, so long prompts do not stall running streams")
	nctx := ctxFlag(fs, 0, "context size per sequence in tokens (default: the model's)")
	maxTokens := fs.Int("max-tokens", 512, "max_tokens of requests that give none")
	drain := fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM or Ctrl-C, how long in-flight requests may take to finish")
	maxBody := fs.String("max-body", "4MiB", "largest request body")
	usePrefix := fs.Bool("prefix-cache", true, "reuse the KV of earlier requests' prompts (recipes without an evictor)")
	chunks := addChunkFlags(fs, "256MiB")
	quiet := fs.Bool("quiet", false, "do not log each request (the access log on stderr), nor the drain and stop")
	var keys apiKeys
	fs.Var(&keys, "api-key", "API `key` clients must send (Authorization: Bearer KEY); repeat or separate with commas for several; also $KVGO_API_KEY")
	keyFile := fs.String("api-key-file", "", "read API keys from `file`, one per line")
	var of offloadFlags
	of.register(fs)
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := keys.load(os.Getenv("KVGO_API_KEY"), *keyFile); err != nil {
		return err
	}
	switch {
	case *maxSeqs < 1:
		return usagef("invalid value %d for --max-seqs: must be at least 1", *maxSeqs)
	case *batch < 2:
		return usagef("invalid value %d for --batch: must be at least 2", *batch)
	case *chunk < 1:
		return usagef("invalid value %d for --prefill-chunk: must be at least 1", *chunk)
	case *queue < 1:
		return usagef("invalid value %d for --queue: must be at least 1", *queue)
	case *drain < 0:
		return usagef("invalid value %s for --drain-timeout: must not be negative", *drain)
	case *nctx < 0:
		return usagef("invalid value %d for --ctx: must not be negative", *nctx)
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	budget, err := parseSize(*mem)
	if err != nil {
		return usagef("invalid value %q for --kv-mem: %v", *mem, err)
	}
	bodyMax, err := parseSize(*maxBody)
	if err != nil {
		return usagef("invalid value %q for --max-body: %v", *maxBody, err)
	}
	if _, err := parseRecipe(*kvFlag); err != nil {
		return err
	}
	if *port < 0 || *port > 65535 {
		return usagef("invalid value %d for --port", *port)
	}
	if *maxTokens < 1 {
		return usagef("invalid value %d for --max-tokens: must be at least 1", *maxTokens)
	}
	var methods []string
	for _, m := range strings.Split(*allow, ",") {
		if m = strings.TrimSpace(m); m != "" {
			methods = append(methods, m)
		}
	}
	e, err := mf.load()
	if err != nil {
		return err
	}
	defer e.Close()
	if _, err := of.options(); err != nil {
		return err
	}
	if of.dir != "" {
		// Without a writable directory the server may keep its caches
		// in memory only if --kv-mem holds one sequence of the whole
		// context that way.
		n, err := e.ContextFor(*nctx)
		if err != nil {
			return usageError{err.Error()}
		}
		if err := of.apply(e, e.FullCacheBytes(n), budget, stderr); err != nil {
			return err
		}
		if e.Offload != nil {
			fmt.Fprintf(stderr, "kvgo serve: KV pages in a cold tier in %s, at most %s of each sequence's pages on the heap; admission counts heap bytes, and the prefix cache and chunk reuse are off\n", e.Offload.Dir, of.hot)
		}
	}
	id := *name
	if id == "" {
		id = "kvgo-tiny"
		if mf.path != "" {
			id = strings.TrimSuffix(filepath.Base(mf.path), ".gguf")
		}
	}
	logger := log.New(stderr, "kvgo serve: ", log.LstdFlags)
	sc := sched.Config{
		KVBudget: budget, MaxQueue: *queue, MaxSeqs: *maxSeqs, Batch: *batch, PrefillChunk: *chunk, Context: *nctx,
		Logf: logger.Printf,
	}
	if *usePrefix {
		sc.Prefix = prefix.New()
	}
	store, closeStore, err := chunks.open()
	if err != nil {
		return err
	}
	defer closeStore()
	sc.Chunks = store
	sch, err := sched.New(e, sc)
	if err != nil {
		return usageError{err.Error()}
	}
	defer sch.Close()
	def, _ := recipe.Parse(*kvFlag)
	if need, err := sch.Reservation(def, 1, 1); err == nil && need > budget {
		return usagef("--kv-mem %s cannot hold a single 2-token sequence of recipe %s, which needs %s", *mem, def, units.Bytes(need))
	}
	var accessLog io.Writer
	if !*quiet {
		accessLog = stderr
	}
	srv, err := server.New(server.Config{
		Engine: e, Sched: sch, ModelID: id, DefaultRecipe: *kvFlag, AllowMethods: methods,
		MaxBodyBytes: bodyMax, DefaultMaxTokens: *maxTokens, Logf: logger.Printf, ChunkSep: chunks.sep,
		APIKeys: keys, AccessLog: accessLog,
	})
	if err != nil {
		return usageError{err.Error()}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	opt := server.ServeOptions{
		DrainTimeout: *drain,
		ErrorLog:     logger,
		Listening: func(addr net.Addr) {
			auth := ""
			if len(keys) > 0 {
				auth = fmt.Sprintf(", %d API keys", len(keys))
			}
			fmt.Fprintf(stderr, "kvgo serve: listening on http://%s (model %q from %s, context %d, KV budget %s, default recipe %s%s)\n",
				addr, id, e.Source, sch.Context(), units.Bytes(budget), def, auth)
		},
	}
	if !*quiet {
		opt.Draining = func(st sched.Stats) {
			fmt.Fprintf(stderr, "kvgo serve: draining %d running and %d queued requests (up to %s)\n", st.Running, st.Queued, *drain)
		}
	}
	if err := srv.ListenAndServe(ctx, net.JoinHostPort(*host, strconv.Itoa(*port)), opt); err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintln(stderr, "kvgo serve: stopped")
	}
	return nil
}

// parseSize reads a byte count: a plain number, or a number with a unit,
// binary (KiB, MiB, GiB, TiB; K, M, G, T) or decimal (kB, MB, GB, TB).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB, 2GiB, 1073741824)", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q in %q (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)", unit, s)
	}
	b := v * mult
	if b < 1 || b > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int64(b), nil
}

// apiKeys collects --api-key values: repeated flags, comma-separated
// lists, $KVGO_API_KEY and --api-key-file.
type apiKeys []string

func (k *apiKeys) String() string { return fmt.Sprintf("%d keys", len(*k)) }

func (k *apiKeys) Set(v string) error {
	n := len(*k)
	k.add(v, ",")
	if len(*k) == n {
		return errors.New("empty API key")
	}
	return nil
}

func (k *apiKeys) add(list, sep string) {
	for _, key := range strings.Split(list, sep) {
		if key = strings.TrimSpace(key); key != "" && !slices.Contains(*k, key) {
			*k = append(*k, key)
		}
	}
}

// load adds the keys of the environment and of a key file.
func (k *apiKeys) load(env, file string) error {
	k.add(env, ",")
	if file == "" {
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--api-key-file: %w", err)
	}
	n := len(*k)
	k.add(string(data), "\n")
	if len(*k) == n {
		return usagef("--api-key-file %s holds no key", file)
	}
	return nil
}
