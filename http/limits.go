package http

import (
	"net/http"
	"time"
)

// NewHTTPServer returns an http.Server with the service's connection limits:
// headers must arrive within 10 s, a body within 10 minutes (large uploads
// on slow links), an answer must be written within 10 minutes (large
// downloads, slow generations), idle keep-alive connections close after 2
// minutes, and headers are at most 64 KiB. The benchmark's baseline server
// uses the same, so that the comparison measures the handlers alone. Each
// request's context carries its connection, so that a file answer can be
// sent in full segments (see corked).
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       withConn,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Minute,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
