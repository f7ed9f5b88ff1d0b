package main

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
)

// loadReport is the result of one load test (kvgo-loadtest/1 in JSON).
type loadReport struct {
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
	TTFTp50      float64 `json:"ttft_p50_ms"`
	TTFTp99      float64 `json:"ttft_p99_ms"`
	ITLp50       float64 `json:"itl_p50_ms"`
	ITLp99       float64 `json:"itl_p99_ms"`
	// From the server's /metrics, sampled during the run.
	MaxRunning  float64  `json:"max_running_sequences"`
	MeanRunning float64  `json:"mean_running_sequences"`
	MaxQueue    float64  `json:"max_queue_depth"`
	MaxKVBytes  float64  `json:"max_kv_bytes_in_use"`
	PeakKV      float64  `json:"server_peak_kv_bytes"`
	KVBudget    float64  `json:"kv_budget_bytes"`
	Compression float64  `json:"mean_compression_ratio"`
	Errors      []string `json:"errors,omitempty"`
}

func cmdLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("loadtest", "[--url http://127.0.0.1:8080] [-c N] [--duration D] [--requests N] [--kv RECIPE] [flags]")
	base := fs.String("url", "http://127.0.0.1:8080", "server `URL` (loopback only: 127.0.0.0/8, ::1, localhost)")
	clients := fs.Int("c", 8, "concurrent streaming `clients`")
	duration := fs.Duration("duration", 30*time.Second, "stop starting requests after this long")
	requests := fs.Int("requests", 200, "stop after this many requests in all")
	promptTokens := fs.Int("prompt-tokens", 200, "approximate prompt length in tokens")
	maxTokens := fs.Int("max-tokens", 64, "tokens to generate per request (sent with ignore_eos)")
	kvFlag := fs.String("kv", "", "KV `recipe` to request (\"kv\" field; default: the server's)")
	model := fs.String("model", "", "model id (default: the first of /v1/models)")
	useChat := fs.Bool("chat", false, "use /v1/chat/completions instead of /v1/completions")
	temp := fs.Float64("temp", 0.8, "sampling temperature")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on one request after this long")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	switch {
	case *clients < 1:
		return usagef("invalid value %d for -c: must be at least 1", *clients)
	case *requests < 1:
		return usagef("invalid value %d for --requests: must be at least 1", *requests)
	case *duration <= 0 || *duration > time.Hour:
		return usagef("invalid value %s for --duration: must be in (0, 1h]", *duration)
	case *maxTokens < 1 || *promptTokens < 1:
		return usagef("--max-tokens and --prompt-tokens must be at least 1")
	}
	u, err := loopbackURL(*base)
	if err != nil {
		return usageError{err.Error()}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients + 2, DisableCompression: true}}
	if *model == "" {
		if *model, err = firstModel(ctx, client, u); err != nil {
			return err
		}
	}
	rep := &loadReport{Format: "kvgo-loadtest/1", URL: u.String(), Model: *model, Recipe: *kvFlag, Clients: *clients}
	if rep.Recipe == "" {
		rep.Recipe = "(server default)"
	}
	lt := &loadTest{client: client, base: u, model: *model, kv: *kvFlag, chat: *useChat, temp: *temp,
		maxTokens: *maxTokens, promptTokens: *promptTokens, timeout: *timeout}

	runCtx, cancel := context.WithTimeout(ctx, *duration+*timeout)
	defer cancel()
	deadline := time.Now().Add(*duration)
	var issued, mu = 0, sync.Mutex{}
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if issued >= *requests || time.Now().After(deadline) || runCtx.Err() != nil {
			return false
		}
		issued++
		return true
	}
	// Sample the server's gauges while the clients run.
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		lt.sample(runCtx, rep, stopSampling)
	}()
	t0 := time.Now()
	var wg sync.WaitGroup
	results := make([][]reqResult, *clients)
	for c := range *clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 0x6b76676f))
			for take() {
				results[c] = append(results[c], lt.one(runCtx, rng))
			}
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(t0).Seconds()
	close(stopSampling)
	<-sampled

	var ttft, itl []float64
	for _, rs := range results {
		for _, r := range rs {
			switch {
			case r.status == http.StatusTooManyRequests:
				rep.Rejected++
				rep.Failed++
			case r.err != nil:
				rep.Failed++
				if len(rep.Errors) < 5 {
					rep.Errors = append(rep.Errors, r.err.Error())
				}
			default:
				rep.OK++
				rep.PromptTokens += r.prompt
				rep.GenTokens += r.gen
				if r.ttft > 0 {
					ttft = append(ttft, r.ttft.Seconds()*1000)
				}
				itl = append(itl, r.itl...)
			}
		}
	}
	rep.TokPerSec = float64(rep.GenTokens) / rep.Seconds
	rep.ReqPerSec = float64(rep.OK) / rep.Seconds
	rep.TTFTp50, rep.TTFTp99 = percentile(ttft, 50), percentile(ttft, 99)
	rep.ITLp50, rep.ITLp99 = percentile(itl, 50), percentile(itl, 99)
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printLoadReport(stdout, rep)
	}
	if rep.OK == 0 {
		return fmt.Errorf("no request succeeded (%d failed)", rep.Failed)
	}
	return nil
}

// loopbackURL accepts only servers on this machine: a load test must never
// send traffic elsewhere.
func loopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not an http URL", s)
	}
	h := u.Hostname()
	if h != "localhost" {
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--url %q: the load test only targets loopback addresses (127.0.0.0/8, ::1, localhost)", s)
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
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
}

type reqResult struct {
	status      int
	err         error
	ttft        time.Duration
	itl         []float64 // ms
	prompt, gen int
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
func (lt *loadTest) one(ctx context.Context, rng *rand.Rand) (r reqResult) {
	ctx, cancel := context.WithTimeout(ctx, lt.timeout)
	defer cancel()
	body := map[string]any{"model": lt.model, "max_tokens": lt.maxTokens, "temperature": lt.temp, "stream": true,
		"ignore_eos": true, "seed": rng.Int64()}
	path := "/v1/completions"
	if lt.chat {
		path = "/v1/chat/completions"
		body["messages"] = []map[string]string{{"role": "user", "content": lt.prompt(rng)}}
	} else {
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
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
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
		}
		if len(chunk.Choices) > 0 && chunk.Choices[0].Text+chunk.Choices[0].Delta.Content != "" {
			now := time.Now()
			if last.IsZero() {
				r.ttft = now.Sub(start)
			} else {
				r.itl = append(r.itl, float64(now.Sub(last).Microseconds())/1000)
			}
			last = now
		}
	}
	if err := sc.Err(); err != nil {
		r.err = err
	} else if !done {
		r.err = errors.New("the stream ended without [DONE]")
	}
	return r
}

var metricLine = regexp.MustCompile(`(?m)^(kvgo_[a-z_]+) (\S+)$`)

// sample scrapes /metrics every 100 ms until stop.
func (lt *loadTest) sample(ctx context.Context, rep *loadReport, stop <-chan struct{}) {
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

func printLoadReport(w io.Writer, r *loadReport) {
	fmt.Fprintf(w, "kvgo loadtest: %s, model %s, recipe %s, %d clients, %.1f s\n", r.URL, r.Model, r.Recipe, r.Clients, r.Seconds)
	fmt.Fprintf(w, "requests:    %d ok, %d failed (%d rejected with 429)\n", r.OK, r.Failed, r.Rejected)
	fmt.Fprintf(w, "tokens:      %d prompt, %d generated\n", r.PromptTokens, r.GenTokens)
	fmt.Fprintf(w, "throughput:  %.1f generated tok/s, %.2f req/s\n", r.TokPerSec, r.ReqPerSec)
	fmt.Fprintf(w, "TTFT:        p50 %.1f ms, p99 %.1f ms\n", r.TTFTp50, r.TTFTp99)
	fmt.Fprintf(w, "inter-token: p50 %.2f ms, p99 %.2f ms\n", r.ITLp50, r.ITLp99)
	fmt.Fprintf(w, "server:      running sequences max %.0f (mean %.1f), queue max %.0f, compression %.2fx\n",
		r.MaxRunning, r.MeanRunning, r.MaxQueue, r.Compression)
	fmt.Fprintf(w, "KV memory:   sampled max %s, server peak %s, budget %s\n",
		bytesString(int64(r.MaxKVBytes)), bytesString(int64(r.PeakKV)), bytesString(int64(r.KVBudget)))
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error:       %s\n", e)
	}
}
