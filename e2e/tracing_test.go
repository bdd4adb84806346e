package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpCollector is an OTLP/HTTP trace receiver (POST /v1/traces with a
// protobuf ExportTraceServiceRequest, as the OpenTelemetry specification
// defines it) that keeps every span it receives.
type otlpCollector struct {
	*httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	t.Helper()
	c := &otlpCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			t.Errorf("OTLP export with Content-Type %q, want application/x-protobuf", ct)
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("OTLP export is not an ExportTraceServiceRequest: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					c.services = append(c.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// trace returns the spans received for traceID.
func (c *otlpCollector) trace(traceID []byte) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range c.spans {
		if bytes.Equal(s.TraceId, traceID) {
			out = append(out, s)
		}
	}
	return out
}

func intAttr(s *tracepb.Span, key string) (int64, bool) {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.GetValue().GetIntValue(), true
		}
	}
	return 0, false
}

// TestTracing runs imaged with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a
// collector: a request carrying a W3C traceparent gets a server span in
// that trace, child of the caller's span, named after its route, with its
// status, and the metadata lookup it made is a child span of it.
func TestTracing(t *testing.T) {
	col := newOTLPCollector(t)
	s := startServer(t, serverOpts{Env: map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": col.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100", // ms: export soon
		"OTEL_SERVICE_NAME":           "imaged-e2e",
	}})
	alice, _ := users(t)
	token := s.Token(alice)
	img := s.upload(t, token, file{Name: "traced.png", Data: pngImage(t, 10, 10, 9)})

	traceID, parent := make([]byte, 16), make([]byte, 8)
	rand.Read(traceID)
	rand.Read(parent)
	// The first GET by id after the upload is not cached: it reads the
	// metadata store.
	r := s.send(t, request{Method: "GET", Target: "/api/images/" + img.ID, Token: token, Header: map[string]string{
		"traceparent": "00-" + hex.EncodeToString(traceID) + "-" + hex.EncodeToString(parent) + "-01",
	}})
	wantOK(t, r, http.StatusOK)

	var server *tracepb.Span
	var spans []*tracepb.Span
	deadline := time.Now().Add(15 * time.Second)
	for server == nil || len(spans) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the collector has %d spans of the trace: %v", len(spans), spans)
		}
		time.Sleep(100 * time.Millisecond)
		spans = col.trace(traceID)
		for _, sp := range spans {
			if sp.Kind == tracepb.Span_SPAN_KIND_SERVER {
				server = sp
			}
		}
	}
	if !bytes.Equal(server.ParentSpanId, parent) {
		t.Errorf("the server span's parent is %x, want the caller's span %x", server.ParentSpanId, parent)
	}
	if server.Name != "GET /api/images/{id}" {
		t.Errorf("the server span is named %q, want the route pattern", server.Name)
	}
	if code, ok := intAttr(server, "http.response.status_code"); !ok || code != 200 {
		t.Errorf("http.response.status_code = %d (present %v), want 200", code, ok)
	}
	var lookup *tracepb.Span
	for _, sp := range spans {
		if sp.Name == "metadata.find_image" {
			lookup = sp
		}
	}
	if lookup == nil {
		t.Fatalf("no metadata.find_image span in the trace; spans: %v", names(spans))
	}
	if !bytes.Equal(lookup.ParentSpanId, server.SpanId) || lookup.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("metadata.find_image: parent %x kind %v, want the server span %x, client", lookup.ParentSpanId, lookup.Kind, server.SpanId)
	}
	col.mu.Lock()
	services := col.services
	col.mu.Unlock()
	for _, name := range services {
		if name != "imaged-e2e" {
			t.Errorf("resource service.name %q, want OTEL_SERVICE_NAME's imaged-e2e", name)
		}
	}
}

func names(spans []*tracepb.Span) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}
