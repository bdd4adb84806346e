// Package upstream is what every provider adapter shares. Its HTTP plumbing
// sends a request under the caller's context, reads the answer through a size
// limit, and turns every failure into the errors the service understands. A
// transport failure or a non-2xx answer becomes an *imaged.UpstreamError whose
// Retryable, RetryAfter and Timeout the service's retry policy reads; the
// provider's own text is kept for the log only, with secrets cut out. Its
// model helpers (Select, Models, Check) choose the enabled models and check
// a request against them before anything is sent.
//
// What differs per provider (request shapes, error bodies, content-policy
// refusals, model catalogues) stays in the adapter, which plugs its reading
// of an error body in through Client.MapError.
package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// DefaultMaxResponseBytes bounds a body read when Client.MaxBytes is not set.
const DefaultMaxResponseBytes = 64 << 20

// defaultHTTP is a client without timeout: the caller's context bounds each
// call.
var defaultHTTP = &http.Client{}

// Client sends the requests of one provider adapter. It is safe for
// concurrent use once set up.
type Client struct {
	// Provider names the provider in every *imaged.UpstreamError.
	Provider string
	// HTTP makes the requests (default: a client without timeout).
	HTTP *http.Client
	// MaxBytes bounds every body read (default DefaultMaxResponseBytes).
	MaxBytes int64
	// MapError turns a non-2xx answer into the error Do returns: an
	// adapter reads its provider's error body there, to spot a refusal or
	// keep a detail for the log, and calls StatusError for the rest. Its
	// Body is cut at MaxBytes. Nil means StatusError with the status text.
	MapError func(*Response) error
}

// Response is an answer read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// TooLargeError reports an answer longer than the limit it was read with.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the answer is larger than %d bytes", e.Limit)
}

// NewJSONRequest returns a POST of body as JSON to rawURL, asking for JSON
// back, bound to ctx. The adapter adds its credentials.
func NewJSONRequest(ctx context.Context, rawURL string, body any) (*http.Request, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// Do sends req and returns its 2xx answer. Every failure is an error the
// service understands: what MapError makes of a non-2xx answer, and an
// *imaged.UpstreamError for a transport failure (see TransportError) or a
// 2xx answer over the size limit (not retryable: it would be as large again).
func (c *Client) Do(req *http.Request) (*Response, error) {
	ctx := req.Context()
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.TransportError(ctx, 0, err)
	}
	defer resp.Body.Close()
	body, err := ReadLimited(resp.Body, c.limit())
	var tooLarge *TooLargeError
	if err != nil && !errors.As(err, &tooLarge) {
		return nil, c.TransportError(ctx, resp.StatusCode, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// An error page over the limit still counts by its status.
		if c.MapError != nil {
			return nil, c.MapError(r)
		}
		return nil, c.StatusError(r, errors.New(http.StatusText(r.Status)))
	}
	if tooLarge != nil {
		return nil, &imaged.UpstreamError{Provider: c.Provider, Status: resp.StatusCode, Err: tooLarge}
	}
	return r, nil
}

func (c *Client) limit() int64 {
	if c.MaxBytes <= 0 {
		return DefaultMaxResponseBytes
	}
	return c.MaxBytes
}

// ReadLimited reads r up to limit bytes. When r holds more, it returns the
// first limit bytes and a *TooLargeError.
func ReadLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return data[:limit], &TooLargeError{Limit: limit}
	}
	return data, nil
}

// StatusError is the *imaged.UpstreamError of a non-2xx answer, cause being
// the detail kept for the log. 429 and 5xx are worth retrying, after the
// answer's Retry-After when it has one; any other status (401, 403, other
// 4xx) is for the operator or the caller to fix, not for a retry.
func (c *Client) StatusError(r *Response, cause error) *imaged.UpstreamError {
	ue := &imaged.UpstreamError{Provider: c.Provider, Status: r.Status, Err: cause}
	if r.Status == http.StatusTooManyRequests || r.Status >= 500 {
		ue.Retryable = true
		ue.RetryAfter = RetryAfter(r.Header)
	}
	return ue
}

// Malformed is the error of a 2xx answer that is not what the provider
// documents. It is not retryable.
func (c *Client) Malformed(r *Response, err error) *imaged.UpstreamError {
	return &imaged.UpstreamError{Provider: c.Provider, Status: r.Status, Err: err}
}

// TransportError maps a failure to get or read an answer (status is 0 when
// none came): the caller's deadline is a timeout, its cancellation is final
// (nobody is left to retry for), anything else (refused connection, reset,
// client timeout) is worth retrying. The request URL is left out of the
// error: it may carry a signed token.
func (c *Client) TransportError(ctx context.Context, status int, err error) *imaged.UpstreamError {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	ue := &imaged.UpstreamError{Provider: c.Provider, Status: status, Err: err}
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

// RetryAfter reads a Retry-After header, in seconds or as an HTTP date; 0
// when it is absent, malformed or past.
func RetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
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

// Redact replaces every secret in s, an API key or a password that the
// provider may quote back, with "[redacted]". Empty secrets are skipped.
func Redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// Truncate bounds s to limit bytes, cut at a rune boundary and marked with
// an ellipsis, so that provider text stays readable in a log line.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// DecodeBase64 decodes an image sent as standard base64, alone or as a
// data: URL. Its error reads "not valid base64: ...".
func DecodeBase64(s string) ([]byte, error) {
	if _, rest, ok := strings.Cut(s, ";base64,"); ok && strings.HasPrefix(s, "data:") {
		s = rest
	}
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not valid base64: %w", err)
	}
	return data, nil
}

// BaseURL returns raw, or fallback when raw is empty, without trailing
// slashes, or an error when it is not an absolute http(s) URL.
func BaseURL(raw, fallback string) (string, error) {
	base := raw
	if base == "" {
		base = fallback
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("base URL %q is not an http(s) URL", base)
	}
	return strings.TrimRight(base, "/"), nil
}

// ContentPolicy is the one answer to a prompt or an image the provider
// refused on content grounds. The provider's own words, which may describe
// its internals, go to the log through cause, never to the caller.
func ContentPolicy(cause error) *imaged.Error {
	return &imaged.Error{
		Code:    imaged.EContentPolicy,
		Message: "The prompt was refused by the provider's content policy",
		Err:     cause,
	}
}
