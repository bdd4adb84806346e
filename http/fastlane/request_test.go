package fastlane

import (
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	const host = "Host: example\r\n"
	plain := map[string]plainRequest{
		"GET /cdn/abc.png HTTP/1.1\r\n" + host + "\r\n":                                                          {Request: Request{Path: "/cdn/abc.png", Host: "example"}},
		"GET /cdn/k/w=256,fit=cover/sig_-~ HTTP/1.1\r\nhost:x\r\n\r\n":                                           {Request: Request{Path: "/cdn/k/w=256,fit=cover/sig_-~", Host: "x"}},
		"GET /a HTTP/1.1\r\n" + host + "ACCEPT:  image/avif,*/*  \r\nX-Request-ID: r1\r\n\r\n":                   {Request: Request{Path: "/a", Host: "example", Accept: "image/avif,*/*", RequestID: "r1"}},
		"GET /a HTTP/1.1\r\n" + host + "Connection: Close\r\nUser-Agent: wrk\r\n\r\n":                            {Request: Request{Path: "/a", Host: "example"}, close: true},
		"GET /a HTTP/1.1\r\n" + host + "Connection: keep-alive\r\nAccept-Encoding: gzip\r\nVia: 1.1 cdn\r\n\r\n": {Request: Request{Path: "/a", Host: "example"}},
		"GET /api/images/x HTTP/1.1\r\nHost: [::1]:80\r\nauthorization: Bearer a.b-_c\r\n\r\n":                   {Request: Request{Path: "/api/images/x", Host: "[::1]:80", Authorization: "Bearer a.b-_c"}},
	}
	for head, want := range plain {
		got, ok := parseRequest([]byte(head))
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v, %v; want %+v, plain", head, got, ok, want)
		}
	}
	notPlain := []string{
		"HEAD /a HTTP/1.1\r\n" + host + "\r\n",
		"POST /a HTTP/1.1\r\n" + host + "\r\n",
		"get /a HTTP/1.1\r\n" + host + "\r\n",
		"GET /a HTTP/1.0\r\n" + host + "\r\n",
		"GET  /a HTTP/1.1\r\n" + host + "\r\n",
		"GET /a HTTP/1.1\r\n\r\n",                                     // no Host
		"GET /a HTTP/1.1\r\n" + host + host + "\r\n",                  // two
		"GET /a?x=1 HTTP/1.1\r\n" + host + "\r\n",                     // query
		"GET /a%2e HTTP/1.1\r\n" + host + "\r\n",                      // escape
		"GET /a/../b HTTP/1.1\r\n" + host + "\r\n",                    // dot segment
		"GET /a/./b HTTP/1.1\r\n" + host + "\r\n",                     // dot segment
		"GET /a//b HTTP/1.1\r\n" + host + "\r\n",                      // empty segment
		"GET /a/ HTTP/1.1\r\n" + host + "\r\n",                        // trailing slash
		"GET / HTTP/1.1\r\n" + host + "\r\n",                          // root
		"GET http://x/a HTTP/1.1\r\n" + host + "\r\n",                 // absolute form
		"GET * HTTP/1.1\r\n" + host + "\r\n",                          // asterisk
		"GET /a\x00 HTTP/1.1\r\n" + host + "\r\n",                     // control
		"GET /a HTTP/1.1\r\n" + host + "Range: bytes=0-1\r\n\r\n",     // a part
		"GET /a HTTP/1.1\r\n" + host + "If-None-Match: \"x\"\r\n\r\n", // precondition
		"GET /a HTTP/1.1\r\n" + host + "Origin: https://o\r\n\r\n",    // CORS
		"GET /a HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n",    // a body
		"GET /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n",
		"GET /a HTTP/1.1\r\n" + host + "Connection: upgrade\r\n\r\n",
		"GET /a HTTP/1.1\r\n" + host + "Accept: a\r\nAccept: b\r\n\r\n",                             // several
		"GET /a HTTP/1.1\r\n" + host + " folded\r\n\r\n",                                            // obs-fold
		"GET /a HTTP/1.1\r\n" + host + "Bad Name: x\r\n\r\n",                                        // not a token
		"GET /a HTTP/1.1\r\n" + host + "NoColon\r\n\r\n",                                            // not a field
		"GET /a HTTP/1.1\r\n" + host + "User-Agent: \x01\r\n\r\n",                                   // control in a value
		"GET /a HTTP/1.1\r\n" + host + "User-Agent: caf\xc3\xa9\r\n\r\n",                            // beyond ASCII
		"GET /a HTTP/1.1\r\n" + host + strings.Repeat("x", 40) + ": y\r\n\r\n",                      // unknown and long
		"GET /a HTTP/1.1\r\n" + host + "Authorization: Bearer x\r\nAuthorization: Bearer y\r\n\r\n", // several
		"GET /a HTTP/1.1\r\n" + host + "Authorization: \r\nAuthorization: Bearer y\r\n\r\n",
		"GET /a HTTP/1.1\r\n" + host + "X-Request-Id: a\r\nX-Request-Id: b\r\n\r\n",
		"GET /a HTTP/1.1\r\n" + host + "Accept: \r\nAccept: b\r\n\r\n",
		"GET /a HTTP/1.1\r\n" + host + "Traceparent: 00-0-0-01\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a/b\r\n\r\n", // not a host
		"GET /a HTTP/1.1\r\nHost: a b\r\n\r\n", // not a host
	}
	for _, head := range notPlain {
		if got, ok := parseRequest([]byte(head)); ok {
			t.Errorf("%q: plain (%+v), want it left to net/http", head, got)
		}
	}
}

func TestHeadEnd(t *testing.T) {
	type res struct {
		end int
		ok  bool
	}
	for s, want := range map[string]res{
		"":                              {0, true},
		"GET / HTTP/1.1\r\n":            {0, true},
		"GET / HTTP/1.1\r\n\r\n":        {18, true},
		"a\r\n\r\nb":                    {5, true},
		"GET / HTTP/1.1\r\nHost: x\r\n": {0, true},
		"GET / HTTP/1.1\nHost: x\n\n":   {0, false},
		"GET / HTTP/1.1\r\nHost: x\n":   {0, false},
		"\n":                            {0, false},
	} {
		if end, ok := headEnd([]byte(s)); end != want.end || ok != want.ok {
			t.Errorf("headEnd(%q) = %d, %v; want %d, %v", s, end, ok, want.end, want.ok)
		}
	}
}

func TestAppendHTTPDate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tm := range []time.Time{
		time.Unix(0, 0), time.Date(2026, 12, 3, 9, 5, 7, 999, time.FixedZone("x", 3600)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := string(AppendHTTPDate([]byte("x"), tm)), "x"+tm.UTC().Format(http.TimeFormat); got != want {
			t.Errorf("%v: %q, want %q", tm, got, want)
		}
	}
	for range 10000 {
		tm := time.Unix(rng.Int64N(1<<36)-1<<35, 0)
		if got, want := string(AppendHTTPDate(nil, tm)), tm.UTC().Format(http.TimeFormat); got != want {
			t.Fatalf("%v: %q, want %q", tm, got, want)
		}
	}
}
