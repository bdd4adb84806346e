package stability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// errContentPolicy is the one answer to a refused prompt or a filtered
// image: the provider's own text is not passed on.
func errContentPolicy(why string) error {
	return &imaged.Error{
		Code:    imaged.EContentPolicy,
		Message: "The prompt was refused by the provider's content policy",
		Err:     fmt.Errorf("%s refused the request: %s", providerName, why),
	}
}

// errorBody is the JSON body of every API error.
type errorBody struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Errors []string `json:"errors"`
}

// do sends hreq and returns the body and headers of a 2xx answer, the body
// read through the size limit. Any failure is mapped to an *imaged.Error or
// *imaged.UpstreamError.
func (g *Generator) do(ctx context.Context, hreq *http.Request) ([]byte, http.Header, error) {
	resp, err := g.client.Do(hreq)
	if err != nil {
		return nil, nil, g.transportError(ctx, 0, err)
	}
	defer resp.Body.Close()
	body, err := g.readLimited(resp.Body)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, nil, &imaged.UpstreamError{Provider: providerName, Status: resp.StatusCode, Err: err}
		}
		return nil, nil, g.transportError(ctx, resp.StatusCode, err)
	}
	if resp.StatusCode/100 == 2 {
		return body, resp.Header, nil
	}
	return nil, nil, g.statusError(resp, body)
}

var errTooLarge = errors.New("the answer is larger than the configured limit")

// readLimited reads r up to the configured limit; one byte more is an error.
func (g *Generator) readLimited(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, g.maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > g.maxBytes {
		return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, g.maxBytes)
	}
	return body, nil
}

// statusError maps a non-2xx answer. The API flags moderated requests with
// 403 and the error name content_moderation.
func (g *Generator) statusError(resp *http.Response, body []byte) error {
	var eb errorBody
	_ = json.Unmarshal(body, &eb) // a body that is not the documented shape still maps by status
	if eb.Name == "content_moderation" {
		return errContentPolicy(eb.Name)
	}

	ue := &imaged.UpstreamError{Provider: providerName, Status: resp.StatusCode}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		ue.Retryable = true
		ue.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	case s >= 500:
		ue.Retryable = true
		ue.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	}
	detail := fmt.Sprintf("%s (name %q, id %q)", http.StatusText(resp.StatusCode), g.redact(eb.Name), g.redact(eb.ID))
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden && len(eb.Errors) > 0 {
		// Authentication messages may quote the key; the others help the logs.
		detail += ": " + g.redact(strings.Join(eb.Errors, "; "))
	}
	ue.Err = errors.New(detail)
	return ue
}

// transportError maps a failure to get or read an answer: the caller's
// deadline is a timeout, its cancellation is final, anything else (network,
// client timeout) is worth retrying.
func (g *Generator) transportError(ctx context.Context, status int, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	ue := &imaged.UpstreamError{Provider: providerName, Status: status, Err: err}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		ue.Timeout = true
		ue.Err = fmt.Errorf("no answer before the deadline: %w", context.DeadlineExceeded)
	case ctx.Err() != nil:
		ue.Err = ctx.Err()
	default:
		var te interface{ Timeout() bool }
		ue.Timeout = errors.As(err, &te) && te.Timeout()
		ue.Retryable = true
	}
	return ue
}

// malformed reports a 2xx answer that is not what the API documents.
func (g *Generator) malformed(err error) error {
	return &imaged.UpstreamError{Provider: providerName, Status: http.StatusOK, Err: err}
}

// redact removes the API key from provider text and bounds its length.
func (g *Generator) redact(s string) string {
	s = strings.ReplaceAll(s, g.apiKey, "[redacted]")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
