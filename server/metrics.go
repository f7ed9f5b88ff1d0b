package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kvgo/kvgo/engine/sched"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (no global default registry: two servers in one process, as in tests,
// must not share counters).
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	promptTokens prometheus.Counter
	cachedTokens prometheus.Counter
	genTokens    prometheus.Counter
	ttft         prometheus.Histogram
	itl          prometheus.Histogram
	duration     prometheus.Histogram
}

// latencyBuckets cover a tiny model on one core (sub-millisecond steps) up
// to a large model's long prefill (tens of seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics(s *sched.Scheduler) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kvgo_requests_total", Help: "HTTP requests by endpoint and status code.",
	}, []string{"endpoint", "code"})
	m.promptTokens = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kvgo_prompt_tokens_total", Help: "Prompt tokens of admitted requests.",
	})
	m.cachedTokens = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kvgo_prompt_cached_tokens_total", Help: "Prompt tokens taken from the prefix cache instead of being computed.",
	})
	m.genTokens = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kvgo_generated_tokens_total", Help: "Tokens generated and sent to clients.",
	})
	m.ttft = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kvgo_time_to_first_token_seconds", Help: "Time from receiving a request to its first generated token.",
		Buckets: latencyBuckets,
	})
	m.itl = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kvgo_inter_token_latency_seconds", Help: "Time between consecutive generated tokens of a request.",
		Buckets: latencyBuckets,
	})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kvgo_request_duration_seconds", Help: "Time from receiving a generation request to its last byte.",
		Buckets: latencyBuckets,
	})
	m.reg.MustRegister(m.requests, m.promptTokens, m.cachedTokens, m.genTokens, m.ttft, m.itl, m.duration, schedCollector{s}, chunkCollector{s})
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// schedCollector reads one scheduler snapshot per scrape, so that the KV
// gauges of one scrape are consistent with each other.
type schedCollector struct{ s *sched.Scheduler }

var (
	descInUse    = prometheus.NewDesc("kvgo_kv_bytes_in_use", "KV-cache bytes held: running sequences plus the prefix cache.", nil, nil)
	descSeqBytes = prometheus.NewDesc("kvgo_kv_sequence_bytes", "KV-cache bytes held by running sequences.", nil, nil)
	descReserved = prometheus.NewDesc("kvgo_kv_bytes_reserved", "KV-cache bytes reserved by running sequences (admission holds reservations within the budget).", nil, nil)
	descBudget   = prometheus.NewDesc("kvgo_kv_budget_bytes", "The KV-cache memory budget (--kv-mem).", nil, nil)
	descPeak     = prometheus.NewDesc("kvgo_kv_bytes_peak", "Largest KV-cache bytes held since start.", nil, nil)
	descRatio    = prometheus.NewDesc("kvgo_kv_compression_ratio", "Full F16 cache bytes for the running sequences' tokens divided by the bytes they hold (1 = no compression; 0 when idle).", nil, nil)
	descQueue    = prometheus.NewDesc("kvgo_queue_depth", "Requests waiting for admission.", nil, nil)
	descRunning  = prometheus.NewDesc("kvgo_running_sequences", "Sequences being prefilled or decoded.", nil, nil)
	descPrefixB  = prometheus.NewDesc("kvgo_prefix_cache_bytes", "KV-cache bytes held by the prefix cache.", nil, nil)
	descPrefixQ  = prometheus.NewDesc("kvgo_prefix_cache_queries_total", "Admissions that looked up the prefix cache.", nil, nil)
	descPrefixH  = prometheus.NewDesc("kvgo_prefix_cache_hits_total", "Admissions that reused a cached prefix.", nil, nil)
	descSteps    = prometheus.NewDesc("kvgo_scheduler_steps_total", "Forward passes run by the scheduler.", nil, nil)
	descPreempt  = prometheus.NewDesc("kvgo_kv_preempted_total", "Sequences failed to keep the KV budget (a memory prediction fell short).", nil, nil)
	descPanics   = prometheus.NewDesc("kvgo_recovered_panics_total", "Panics recovered by the scheduler (each failed one sequence or batch).", nil, nil)
)

func (c schedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInUse, descSeqBytes, descReserved, descBudget, descPeak, descRatio, descQueue, descRunning, descPrefixB, descPrefixQ, descPrefixH, descSteps, descPreempt, descPanics} {
		ch <- d
	}
}

func (c schedCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g(descInUse, float64(st.InUse))
	g(descSeqBytes, float64(st.SeqBytes))
	g(descReserved, float64(st.Reserved))
	g(descBudget, float64(st.Budget))
	g(descPeak, float64(st.Peak))
	ratio := 0.0
	if st.SeqBytes > 0 {
		ratio = float64(st.FullEquivalent) / float64(st.SeqBytes)
	}
	g(descRatio, ratio)
	g(descQueue, float64(st.Queued))
	g(descRunning, float64(st.Running))
	g(descPrefixB, float64(st.PrefixBytes))
	n(descPrefixQ, st.PrefixQueries)
	n(descPrefixH, st.PrefixHits)
	n(descSteps, st.Steps)
	n(descPreempt, st.Preempted)
	n(descPanics, st.Panics)
}

// statusRecorder remembers the status a handler wrote, for the requests
// counter, and whether anything was written, for panic recovery.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.written {
		r.status, r.written = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets SSE handlers flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (m *metrics) count(endpoint string, status int) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}

// tokenClock times one request's tokens for the TTFT and ITL histograms.
type tokenClock struct {
	m     *metrics
	start time.Time
	first time.Time
	last  time.Time
	n     int
}

func (c *tokenClock) tick() {
	now := time.Now()
	if c.n == 0 {
		c.first = now
		c.m.ttft.Observe(now.Sub(c.start).Seconds())
	} else {
		c.m.itl.Observe(now.Sub(c.last).Seconds())
	}
	c.last = now
	c.n++
	c.m.genTokens.Inc()
}
