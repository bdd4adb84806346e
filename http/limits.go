package http

import (
	"net/http"
	"time"
)

// MaxHeaderBytes bounds a request's line and header fields. Past it the
// answer is a 431 envelope (see headersTooLarge), up to twice as much, where
// net/http itself refuses with a plain-text 431 before any handler runs.
const MaxHeaderBytes = 64 << 10

// headersTooLarge reports whether r's request line and header fields, as
// sent, exceed MaxHeaderBytes.
func headersTooLarge(r *http.Request) bool {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n > MaxHeaderBytes
}

// The connection's time limits (the fast lane keeps the same).
const (
	readHeaderTimeout = 10 * time.Second
	writeTimeout      = 10 * time.Minute
	idleTimeout       = 2 * time.Minute
)

// bodyReadTimeout bounds the time to read a whole request, body included.
const bodyReadTimeout = 10 * time.Minute

// NewHTTPServer returns an http.Server with the service's connection limits:
// headers must arrive within 10 s, a body within 10 minutes (large uploads
// on slow links), an answer must be written within 10 minutes (large
// downloads, slow generations), idle keep-alive connections close after 2
// minutes, and headers are at most 64 KiB (answered with a 431 envelope up
// to 128 KiB, by net/http's plain-text 431 beyond). The benchmark's baseline server
// uses the same, so that the comparison measures the handlers alone. Each
// request's context carries its connection, so that a file answer can be
// sent in full segments (see corked).
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       withConn,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       bodyReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    2 * MaxHeaderBytes,
	}
}
