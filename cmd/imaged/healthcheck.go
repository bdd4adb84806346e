package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheck asks a running service's /readyz (or another URL) and exits
// non-zero unless it answers 200: container images have no curl.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newCommandFlags("healthcheck", stderr)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL to ask")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs.Name(), rest); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", *url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
