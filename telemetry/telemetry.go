// Package telemetry is what an operator plugs into: Prometheus metrics
// (served by Handler in the text exposition format) and OpenTelemetry
// traces (exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set).
//
// A Telemetry records HTTP requests (by route pattern, method and status),
// generations (by provider, model and outcome), provider retries, quota
// refusals, the job queue, variant renders (RenderDone, WatchRenders),
// and the latency and failures of every metadata
// and blob store operation, through wrappers of the domain's store
// interfaces (stores.go) that also open a span per operation when tracing
// is on. The Go runtime, the process and the build are reported too.
package telemetry

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/imaged/imaged"
)

// Telemetry holds the service's metrics and, when tracing is on, its tracer.
// A nil *Telemetry records nothing, so that callers need no checks.
type Telemetry struct {
	Registry *prometheus.Registry

	requests      *prometheus.HistogramVec // route, method, code
	inFlight      prometheus.Gauge
	bodyIn        *prometheus.CounterVec // route
	bodyOut       *prometheus.CounterVec // route
	generations   *prometheus.HistogramVec
	retries       *prometheus.CounterVec
	quotaRefusals prometheus.Counter
	storeOps      *prometheus.HistogramVec // store, operation
	storeErrors   *prometheus.CounterVec   // store, operation
	renders       *prometheus.HistogramVec // outcome

	tracer trace.Tracer // nil when tracing is off

	// The series every request and store operation records into, found
	// once by their labels instead of hashed on every call (bounded: routes
	// are patterns, methods a fixed list, statuses three digits).
	requestSeries sync.Map // requestLabels → *requestSeries
	storeSeries   sync.Map // [2]string{store, operation} → prometheus.Observer
}

type requestLabels struct {
	route, method string
	status        int
}

// requestSeries are the series a request with some requestLabels counts in.
type requestSeries struct {
	latency prometheus.Observer
	in, out prometheus.Counter // by route only
}

// latencyBuckets suit requests and store operations: 0.5 ms to 10 s.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// generationBuckets suit provider calls: 50 ms to 5 min.
var generationBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}

// New returns a Telemetry with every metric registered on a registry of
// its own.
func New() *Telemetry {
	t := &Telemetry{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imaged_http_request_duration_seconds", Buckets: latencyBuckets,
			Help: "HTTP requests by route pattern, method and status code, and their latency.",
		}, []string{"route", "method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imaged_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		bodyIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imaged_http_request_body_bytes_total", Help: "Bytes of request bodies read (uploads), by route pattern.",
		}, []string{"route"}),
		bodyOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imaged_http_response_body_bytes_total", Help: "Bytes of answers written (images served, JSON), by route pattern.",
		}, []string{"route"}),
		generations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imaged_generation_duration_seconds", Buckets: generationBuckets,
			Help: "Generations by provider, model and outcome (ok or the error code), and their latency, retries and storing included.",
		}, []string{"provider", "model", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imaged_provider_retries_total", Help: "Provider calls retried after a retryable failure (429, 5xx, network).",
		}, []string{"provider"}),
		quotaRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imaged_quota_refusals_total", Help: "Generations refused because the owner was over a quota.",
		}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imaged_store_operation_duration_seconds", Buckets: latencyBuckets,
			Help: "Metadata and blob store operations and their latency.",
		}, []string{"store", "operation"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imaged_store_operation_errors_total", Help: "Metadata and blob store operations that failed (not counting not-found answers).",
		}, []string{"store", "operation"}),
		renders: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imaged_render_duration_seconds", Buckets: latencyBuckets,
			Help: "Variant renders that had a worker, by outcome (ok or the error code), and their latency.",
		}, []string{"outcome"}),
	}
	t.Registry.MustRegister(
		t.requests, t.inFlight, t.bodyIn, t.bodyOut, t.generations, t.retries, t.quotaRefusals,
		t.storeOps, t.storeErrors, t.renders,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return t
}

// Handler serves the metrics in the Prometheus text format. With a token,
// a scrape must send "Authorization: Bearer <token>".
func (t *Telemetry) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if len(got) > 7 && strings.EqualFold(string(got[:7]), "bearer ") {
			copy(got, "Bearer ")
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imaged metrics"`)
			http.Error(w, "metrics need a bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// RequestStarted counts a request in flight; call RequestDone when it ends.
func (t *Telemetry) RequestStarted() {
	if t != nil {
		t.inFlight.Inc()
	}
}

// RequestDone records one answered request. route is the pattern that
// matched ("GET /api/images/{id}"); its method part is dropped.
func (t *Telemetry) RequestDone(route, method string, status int, d time.Duration, in, out int64) {
	if t == nil {
		return
	}
	t.inFlight.Dec()
	if _, path, ok := strings.Cut(route, " "); ok {
		route = path
	}
	if route == "" || route == "/" {
		route = "unmatched"
	}
	method = knownMethod(method)
	k := requestLabels{route, method, status}
	v, ok := t.requestSeries.Load(k)
	if !ok {
		v, _ = t.requestSeries.LoadOrStore(k, &requestSeries{
			latency: t.requests.WithLabelValues(route, method, statusText(status)),
			in:      t.bodyIn.WithLabelValues(route),
			out:     t.bodyOut.WithLabelValues(route),
		})
	}
	series := v.(*requestSeries)
	series.latency.Observe(d.Seconds())
	if in > 0 {
		series.in.Add(float64(in))
	}
	if out > 0 {
		series.out.Add(float64(out))
	}
}

// knownMethod is method as a label: one of the methods of RFC 9110 and
// PATCH, else "other", so that a client inventing methods cannot add
// series without end.
func knownMethod(method string) string {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return method
	}
	return "other"
}

// statusText avoids formatting the common codes.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 201:
		return "201"
	case 404:
		return "404"
	}
	b := [3]byte{byte('0' + code/100%10), byte('0' + code/10%10), byte('0' + code%10)}
	return string(b[:])
}

// Generated records one generation's outcome (implements generation.Observer).
func (t *Telemetry) Generated(provider, model string, err error, d time.Duration) {
	if t == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = strings.ToLower(string(imaged.ErrCode(err)))
	}
	t.generations.WithLabelValues(provider, model, outcome).Observe(d.Seconds())
}

// ProviderRetried records a retried provider call (implements generation.Observer).
func (t *Telemetry) ProviderRetried(provider string) {
	if t != nil {
		t.retries.WithLabelValues(provider).Inc()
	}
}

// QueueStats is what a job store tells about its queue.
type QueueStats interface {
	// QueuedJobs returns how many jobs wait to run and when the oldest
	// was created (zero when none).
	QueuedJobs(ctx context.Context) (n int, oldest time.Time, err error)
}

// WatchQueue reports the job queue's depth and the age of its oldest job,
// asked of q at each scrape (bounded to 2 s).
func (t *Telemetry) WatchQueue(q QueueStats) {
	if t == nil || q == nil {
		return
	}
	t.Registry.MustRegister(&queueCollector{q: q,
		depth: prometheus.NewDesc("imaged_job_queue_depth", "Generation jobs waiting to run.", nil, nil),
		age:   prometheus.NewDesc("imaged_job_queue_oldest_age_seconds", "Age of the oldest job waiting to run (0 when none).", nil, nil),
	})
}

type queueCollector struct {
	q          QueueStats
	depth, age *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth; ch <- c.age }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.q.QueuedJobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, err)
		return
	}
	age := 0.0
	if n > 0 && !oldest.IsZero() {
		age = max(0, time.Since(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}
