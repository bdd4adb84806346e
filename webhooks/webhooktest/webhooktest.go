// Package webhooktest receives webhook deliveries in tests and checks their
// signatures with the Standard Webhooks reference library (npm
// standardwebhooks, run by node from tools/node): an implementation that is
// not imaged's.
package webhooktest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged/testtool"
)

// Delivery is one request a Receiver got.
type Delivery struct {
	Headers http.Header
	Body    []byte
	At      time.Time
}

// ID is the delivery's webhook-id.
func (d Delivery) ID() string { return d.Headers.Get("webhook-id") }

// Receiver is a webhook endpoint on loopback that records what it gets and
// answers with the status Respond picks (200 when nil).
type Receiver struct {
	URL string
	// Respond picks the status of the n-th delivery (0-based) of a
	// webhook-id; set it before the first delivery.
	Respond func(id string, n int) int

	mu  sync.Mutex
	got []Delivery
	ch  chan Delivery
}

// NewReceiver starts a Receiver, closed by t.Cleanup.
func NewReceiver(t testing.TB) *Receiver {
	rc := &Receiver{ch: make(chan Delivery, 1024)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		d := Delivery{Headers: r.Header.Clone(), Body: body, At: time.Now()}
		rc.mu.Lock()
		n := 0
		for _, p := range rc.got {
			if p.ID() == d.ID() {
				n++
			}
		}
		rc.got = append(rc.got, d)
		respond := rc.Respond
		rc.mu.Unlock()
		status := http.StatusOK
		if respond != nil {
			status = respond(d.ID(), n)
		}
		w.WriteHeader(status)
		select {
		case rc.ch <- d:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

// Got returns every delivery so far, in arrival order.
func (rc *Receiver) Got() []Delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Delivery(nil), rc.got...)
}

// Next waits up to d for the next delivery.
func (rc *Receiver) Next(t testing.TB, d time.Duration) Delivery {
	t.Helper()
	select {
	case got := <-rc.ch:
		return got
	case <-time.After(d):
		t.Fatalf("no webhook delivery within %s", d)
	}
	return Delivery{}
}

// Verify checks each delivery's signature against secret with the reference
// library and returns, for each, nil or the library's refusal.
func Verify(t testing.TB, secret string, ds ...Delivery) []error {
	t.Helper()
	type item struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	items := make([]item, len(ds))
	for i, d := range ds {
		h := map[string]string{}
		for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			h[k] = d.Headers.Get(k)
		}
		items[i] = item{Secret: secret, Headers: h, Body: string(d.Body)}
	}
	in, _ := json.Marshal(items)
	_, file, _, _ := runtime.Caller(0)
	cmd := testtool.Node(t, []string{"standardwebhooks"}, filepath.Join(filepath.Dir(file), "verify.js"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node verify.js: %v: %s", err, stderr.String())
	}
	var msgs []*string
	if err := json.Unmarshal(out, &msgs); err != nil || len(msgs) != len(ds) {
		t.Fatalf("node verify.js answered %q: %v", out, err)
	}
	errs := make([]error, len(ds))
	for i, m := range msgs {
		if m != nil {
			errs[i] = refusal(*m)
		}
	}
	return errs
}

type refusal string

func (r refusal) Error() string { return "standardwebhooks: " + string(r) }
