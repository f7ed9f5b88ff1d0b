// Package loadtest drives an OpenAI-compatible kvgo server with concurrent
// streaming clients and reports throughput, latency (time to first token,
// inter-token gaps) and the server's KV gauges sampled from /metrics while
// it runs. It is the client behind `kvgo loadtest`.
//
// A load test is bounded three ways: it starts at most Config.Requests
// requests, starts none after Config.Duration (at most MaxDuration), and
// gives each request at most Config.Timeout. It only talks to servers on
// this machine (LoopbackURL): it must never send traffic elsewhere.
package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kvgo/kvgo/internal/units"
)

// MaxDuration is the longest Config.Duration a load test accepts.
const MaxDuration = time.Hour

// Format is the value of Report.Format: the schema of the JSON report.
const Format = "kvgo-loadtest/1"

// Config is one load test.
type Config struct {
	// URL is the server, e.g. http://127.0.0.1:8080; only loopback hosts
	// are accepted (see LoopbackURL).
	URL string
	// Clients is the number of concurrent streaming clients (at least 1);
	// each sends its next request when the last one ends.
	Clients int
	// Duration: no request starts after it (0 < Duration <= MaxDuration).
	Duration time.Duration
	// Requests is the most requests started in all (at least 1).
	Requests int
	// PromptTokens is the approximate prompt length in tokens; MaxTokens
	// the tokens each request generates (sent with ignore_eos). Both at
	// least 1.
	PromptTokens, MaxTokens int
	// KV is the request's "kv" recipe; empty leaves the server's default.
	KV string
	// Model is the model id; empty takes the first of /v1/models.
	Model string
	// Chat uses /v1/chat/completions instead of /v1/completions.
	Chat        bool
	Temperature float64
	// Timeout is how long one request may take (positive). The whole test
	// ends at the latest after Duration + Timeout.
	Timeout time.Duration
	// HTTPClient sends the requests; nil makes one with enough idle
	// connections for Clients.
	HTTPClient *http.Client
	// RAG, if set, sends the RAG workload (rag.go) instead of filler
	// prompts; PromptTokens is then unused.
	RAG *RAG
}

// Validate checks the bounds of c.
func (c Config) Validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("loadtest: %d clients: want at least 1", c.Clients)
	case c.Requests < 1:
		return fmt.Errorf("loadtest: %d requests: want at least 1", c.Requests)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("loadtest: duration %s: want one in (0, %s]", c.Duration, MaxDuration)
	case (c.PromptTokens < 1 && c.RAG == nil) || c.MaxTokens < 1:
		return fmt.Errorf("loadtest: %d prompt tokens, %d max tokens: want at least 1 each", c.PromptTokens, c.MaxTokens)
	case c.Timeout <= 0:
		return fmt.Errorf("loadtest: timeout %s: want a positive one", c.Timeout)
	}
	_, err := LoopbackURL(c.URL)
	return err
}

// Report is the result of one load test (Format in JSON).
type Report struct {
	Format       string  `json:"format"`
	URL          string  `json:"url"`
	Model        string  `json:"model"`
	Recipe       string  `json:"recipe"`
	Clients      int     `json:"clients"`
	Seconds      float64 `json:"seconds"`
	OK           int     `json:"ok"`
	Failed       int     `json:"failed"`
	Rejected     int     `json:"rejected_429"`
	PromptTokens int     `json:"prompt_tokens"`
	GenTokens    int     `json:"generated_tokens"`
	TokPerSec    float64 `json:"generated_tokens_per_second"`
	ReqPerSec    float64 `json:"requests_per_second"`
	// PromptTokPerSec counts prompt tokens of finished requests, cached
	// ones included; CachedTokens is the sum of their
	// usage.prompt_tokens_details.cached_tokens.
	PromptTokPerSec float64 `json:"prompt_tokens_per_second"`
	CachedTokens    int     `json:"cached_tokens"`
	TTFTMean        float64 `json:"ttft_mean_ms"`
	TTFTp50         float64 `json:"ttft_p50_ms"`
	TTFTp90         float64 `json:"ttft_p90_ms"`
	TTFTp99         float64 `json:"ttft_p99_ms"`
	ITLp50          float64 `json:"itl_p50_ms"`
	ITLp99          float64 `json:"itl_p99_ms"`
	// From the server's /metrics, sampled during the run.
	MaxRunning  float64 `json:"max_running_sequences"`
	MeanRunning float64 `json:"mean_running_sequences"`
	MaxQueue    float64 `json:"max_queue_depth"`
	MaxKVBytes  float64 `json:"max_kv_bytes_in_use"`
	PeakKV      float64 `json:"server_peak_kv_bytes"`
	KVBudget    float64 `json:"kv_budget_bytes"`
	Compression float64 `json:"mean_compression_ratio"`
	// RAG is the RAG workload's shape and answers (Config.RAG).
	RAG *RAGStats `json:"rag,omitempty"`
	// Errors are the first few failures (429s are only counted).
	Errors []string `json:"errors,omitempty"`
}

// maxErrors is how many failure messages a report keeps.
const maxErrors = 5

// LoopbackURL parses an http(s) URL whose host is on this machine
// (127.0.0.0/8, ::1 or localhost) and drops a trailing slash from its path.
func LoopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http URL", s)
	}
	h := u.Hostname()
	if h != "localhost" {
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("%q: the load test only targets loopback addresses (127.0.0.0/8, ::1, localhost)", s)
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// Run runs the load test and returns its report. The error is for a test
// that could not start (bad config, no model listed); failed requests are
// counted in the report instead, so a report with OK == 0 is possible.
// Cancelling ctx stops the clients and the report holds what finished.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := LoopbackURL(cfg.URL)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients + 2, DisableCompression: true}}
	}
	model := cfg.Model
	if model == "" {
		var err error
		if model, err = firstModel(ctx, client, u); err != nil {
			return nil, err
		}
	}
	rep := &Report{Format: Format, URL: u.String(), Model: model, Recipe: cfg.KV, Clients: cfg.Clients}
	if rep.Recipe == "" {
		rep.Recipe = "(server default)"
	}
	lt := &loadTest{client: client, base: u, model: model, kv: cfg.KV, chat: cfg.Chat, temp: cfg.Temperature,
		maxTokens: cfg.MaxTokens, promptTokens: cfg.PromptTokens, timeout: cfg.Timeout}
	var rag *ragRun
	if cfg.RAG != nil {
		var err error
		if rag, err = newRAGRun(*cfg.RAG, cfg.KV); err != nil {
			return nil, err
		}
		lt.rag = rag
		rep.RAG = rag.stats()
		// The warm-up: its own questions, through the same clients, not
		// timed or counted (its failures are).
		for _, r := range lt.drive(ctx, cfg.Clients, rag.warm, cfg.Timeout*time.Duration(max(1, rag.warm)), func() (*ragItem, bool) { return rag.nextWarm() }) {
			if r.err != nil {
				rep.RAG.WarmFailed++
				if len(rep.Errors) < maxErrors {
					rep.Errors = append(rep.Errors, "warm-up: "+r.err.Error())
				}
			}
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Timeout)
	defer cancel()
	deadline := time.Now().Add(cfg.Duration)
	next := func() (*ragItem, bool) {
		if time.Now().After(deadline) {
			return nil, false
		}
		if rag != nil {
			return rag.next(), true
		}
		return nil, true
	}
	// Sample the server's gauges while the clients run.
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		lt.sample(runCtx, rep, stopSampling)
	}()
	t0 := time.Now()
	results := lt.drive(runCtx, cfg.Clients, cfg.Requests, 0, next)
	rep.Seconds = time.Since(t0).Seconds()
	close(stopSampling)
	<-sampled

	var ttft, itl []float64
	for _, r := range results {
		switch {
		case r.status == http.StatusTooManyRequests:
			rep.Rejected++
			rep.Failed++
		case r.err != nil:
			rep.Failed++
			if len(rep.Errors) < maxErrors {
				rep.Errors = append(rep.Errors, r.err.Error())
			}
		default:
			rep.OK++
			rep.PromptTokens += r.prompt
			rep.CachedTokens += r.cached
			rep.GenTokens += r.gen
			if r.ttft > 0 {
				ttft = append(ttft, r.ttft.Seconds()*1000)
			}
			itl = append(itl, r.itl...)
			if r.rag != nil {
				rep.RAG.count(r.rag, r.text)
			}
		}
	}
	rep.TokPerSec = float64(rep.GenTokens) / rep.Seconds
	rep.PromptTokPerSec = float64(rep.PromptTokens) / rep.Seconds
	rep.ReqPerSec = float64(rep.OK) / rep.Seconds
	rep.TTFTMean = mean(ttft)
	rep.TTFTp50, rep.TTFTp90, rep.TTFTp99 = percentile(ttft, 50), percentile(ttft, 90), percentile(ttft, 99)
	rep.ITLp50, rep.ITLp99 = percentile(itl, 50), percentile(itl, 99)
	if rep.RAG != nil {
		rep.RAG.finish(rep)
	}
	return rep, nil
}

// drive runs clients until n requests have started or next says stop;
// timeout > 0 bounds the whole drive. Each client sends its next request
// when its last one ends.
func (lt *loadTest) drive(ctx context.Context, clients, n int, timeout time.Duration, next func() (*ragItem, bool)) []reqResult {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var issued, mu = 0, sync.Mutex{}
	take := func() (*ragItem, bool) {
		mu.Lock()
		defer mu.Unlock()
		if issued >= n || ctx.Err() != nil {
			return nil, false
		}
		item, ok := next()
		if ok {
			issued++
		}
		return item, ok
	}
	var wg sync.WaitGroup
	results := make([][]reqResult, clients)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 0x6b76676f))
			for {
				item, ok := take()
				if !ok {
					return
				}
				results[c] = append(results[c], lt.one(ctx, rng, item))
			}
		})
	}
	wg.Wait()
	var all []reqResult
	for _, rs := range results {
		all = append(all, rs...)
	}
	return all
}

func firstModel(ctx context.Context, client *http.Client, u *url.URL) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+"/v1/models", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("reaching the server: %w", err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Data) == 0 {
		return "", fmt.Errorf("GET /v1/models: status %d, no model listed", resp.StatusCode)
	}
	return list.Data[0].ID, nil
}

type loadTest struct {
	client       *http.Client
	base         *url.URL
	model, kv    string
	chat         bool
	temp         float64
	maxTokens    int
	promptTokens int
	timeout      time.Duration
	rag          *ragRun
}

type reqResult struct {
	status      int
	err         error
	ttft        time.Duration
	itl         []float64 // ms
	prompt, gen int
	cached      int
	text        string   // the generated text (RAG answers)
	rag         *ragItem // the question asked, in RAG mode
}

// loadWords make prompts: plain English words are about one to two tokens
// each for the small vocabularies kvgo's test models have.
var loadWords = strings.Fields("the cache keeps keys and values of every token so attention over the past does not recompute them a server admits requests by the memory they need and compression turns saved bytes into more users on the same machine while quality stays close to the full cache")

func (lt *loadTest) prompt(rng *rand.Rand) string {
	var b strings.Builder
	// A random start keeps prompts distinct, so the prefix cache does not
	// turn the test into a cache benchmark.
	fmt.Fprintf(&b, "Request %d: ", rng.IntN(1_000_000))
	for i := 0; i < lt.promptTokens*2/3; i++ {
		b.WriteString(loadWords[rng.IntN(len(loadWords))])
		b.WriteByte(' ')
	}
	return b.String()
}

// one runs one streaming request and times its chunks.
func (lt *loadTest) one(ctx context.Context, rng *rand.Rand, item *ragItem) (r reqResult) {
	ctx, cancel := context.WithTimeout(ctx, lt.timeout)
	defer cancel()
	body := map[string]any{"model": lt.model, "max_tokens": lt.maxTokens, "temperature": lt.temp, "stream": true,
		"ignore_eos": true, "seed": rng.Int64()}
	path := "/v1/completions"
	var text strings.Builder
	defer func() { r.text = text.String() }()
	switch {
	case item != nil:
		r.rag = item
		lt.rag.body(body, item)
	case lt.chat:
		path = "/v1/chat/completions"
		body["messages"] = []map[string]string{{"role": "user", "content": lt.prompt(rng)}}
	default:
		body["prompt"] = lt.prompt(rng)
	}
	if lt.kv != "" {
		body["kv"] = lt.kv
	}
	j, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lt.base.String()+path, bytes.NewReader(j))
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := lt.client.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		r.err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		return r
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var last time.Time
	done := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var chunk struct {
			Choices []struct {
				Text  string `json:"text"`
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens        int `json:"prompt_tokens"`
				CompletionTokens    int `json:"completion_tokens"`
				PromptTokensDetails *struct {
					CachedTokens int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			r.err = fmt.Errorf("bad chunk %q: %w", data, err)
			return r
		}
		if chunk.Error != nil {
			r.err = errors.New("error event: " + chunk.Error.Message)
			return r
		}
		if chunk.Usage != nil {
			r.prompt, r.gen = chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens
			if d := chunk.Usage.PromptTokensDetails; d != nil {
				r.cached = d.CachedTokens
			}
		}
		if len(chunk.Choices) > 0 && chunk.Choices[0].Text+chunk.Choices[0].Delta.Content != "" {
			text.WriteString(chunk.Choices[0].Text + chunk.Choices[0].Delta.Content)
			now := time.Now()
			if last.IsZero() {
				r.ttft = now.Sub(start)
			} else {
				r.itl = append(r.itl, float64(now.Sub(last).Microseconds())/1000)
			}
			last = now
		}
	}
	if err := sc.Err(); err != nil && r.err == nil {
		r.err = err
	} else if !done {
		r.err = errors.New("the stream ended without [DONE]")
	}
	return r
}

var metricLine = regexp.MustCompile(`(?m)^(kvgo_[a-z_]+) (\S+)$`)

// sample scrapes /metrics every 100 ms until stop.
func (lt *loadTest) sample(ctx context.Context, rep *Report, stop <-chan struct{}) {
	var sumRunning, sumRatio float64
	var n, nRatio int
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		m := lt.scrape(ctx)
		if m != nil {
			rep.MaxRunning = max(rep.MaxRunning, m["kvgo_running_sequences"])
			rep.MaxQueue = max(rep.MaxQueue, m["kvgo_queue_depth"])
			rep.MaxKVBytes = max(rep.MaxKVBytes, m["kvgo_kv_bytes_in_use"])
			rep.PeakKV = m["kvgo_kv_bytes_peak"]
			rep.KVBudget = m["kvgo_kv_budget_bytes"]
			sumRunning += m["kvgo_running_sequences"]
			n++
			if r := m["kvgo_kv_compression_ratio"]; r > 0 {
				sumRatio += r
				nRatio++
			}
		}
		select {
		case <-stop:
			if n > 0 {
				rep.MeanRunning = sumRunning / float64(n)
			}
			if nRatio > 0 {
				rep.Compression = sumRatio / float64(nRatio)
			}
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (lt *loadTest) scrape(ctx context.Context) map[string]float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lt.base.String()+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := lt.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	out := map[string]float64{}
	for _, m := range metricLine.FindAllSubmatch(body, -1) {
		if v, err := strconv.ParseFloat(string(m[2]), 64); err == nil {
			out[string(m[1])] = v
		}
	}
	return out
}

// mean is the mean of xs (0 when empty).
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// percentile is the nearest-rank percentile of xs (0 when empty).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// WriteText prints the report as `kvgo loadtest` does.
func (r *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "kvgo loadtest: %s, model %s, recipe %s, %d clients, %.1f s\n", r.URL, r.Model, r.Recipe, r.Clients, r.Seconds)
	fmt.Fprintf(&b, "requests:    %d ok, %d failed (%d rejected with 429)\n", r.OK, r.Failed, r.Rejected)
	fmt.Fprintf(&b, "tokens:      %d prompt, %d generated\n", r.PromptTokens, r.GenTokens)
	fmt.Fprintf(&b, "throughput:  %.1f generated tok/s, %.2f req/s\n", r.TokPerSec, r.ReqPerSec)
	fmt.Fprintf(&b, "TTFT:        p50 %.1f ms, p90 %.1f ms, p99 %.1f ms (mean %.1f)\n", r.TTFTp50, r.TTFTp90, r.TTFTp99, r.TTFTMean)
	fmt.Fprintf(&b, "inter-token: p50 %.2f ms, p99 %.2f ms\n", r.ITLp50, r.ITLp99)
	fmt.Fprintf(&b, "server:      running sequences max %.0f (mean %.1f), queue max %.0f, compression %.2fx\n",
		r.MaxRunning, r.MeanRunning, r.MaxQueue, r.Compression)
	fmt.Fprintf(&b, "KV memory:   sampled max %s, server peak %s, budget %s\n",
		units.Bytes(int64(r.MaxKVBytes)), units.Bytes(int64(r.PeakKV)), units.Bytes(int64(r.KVBudget)))
	if r.RAG != nil {
		r.RAG.writeText(&b, r)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "error:       %s\n", e)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteJSON prints the report as indented JSON (Format).
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
