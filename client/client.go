// Package client is a small typed Go client of the imaged API, following
// its OpenAPI document (http/openapi.json): images (get, list, upload,
// delete), generation (sync and async jobs), models, and the image bytes.
// Failed calls return an *Error carrying the envelope's errorCode, message
// and status. It depends on the standard library only, so other programs can
// import it without the service.
package client

import (
	"bytes"
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
)

// maxEnvelope bounds a JSON answer read into memory.
const maxEnvelope = 32 << 20

// Client calls one imaged service with one bearer token.
type Client struct {
	base  string
	token string
	http  *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// New returns a client of the service at baseURL ("http://127.0.0.1:8080")
// that sends token as its bearer token. httpClient may be nil (a client
// without a whole-request timeout, since uploads and downloads stream; pass
// contexts with deadlines instead).
func New(baseURL, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the service URL must be http:// or https:// with a host, got %q", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: u.String(), token: token, http: httpClient, UserAgent: "imaged-client"}, nil
}

// BaseURL is the service's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Error is a failed API call: the envelope's errorCode and message, the
// HTTP status, and the requestId to quote in a report. An answer that was
// not an envelope (a proxy's error page) has an empty ErrorCode.
type Error struct {
	Status     int
	ErrorCode  string
	Message    string
	RequestID  string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.ErrorCode == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.ErrorCode, e.Message, e.Status)
}

// IsCode reports whether err is an *Error with the given errorCode.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.ErrorCode == code
}

// envelope is every JSON answer of the API.
type envelope struct {
	Success    bool            `json:"success"`
	Code       int             `json:"code"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
	Pagination *Pagination     `json:"pagination"`
	ErrorCode  string          `json:"errorCode"`
	RequestID  string          `json:"requestId"`
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	header       http.Header
	body         io.Reader
	contentType  string
}

// do sends r and decodes the success envelope's data into out (when not
// nil); any failure becomes an *Error or a transport error.
func (c *Client) do(ctx context.Context, r request, out any) (*envelope, http.Header, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, r.body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEnvelope+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", r.method, r.path, err)
	}
	if len(raw) > maxEnvelope {
		return nil, nil, fmt.Errorf("%s %s: the answer is larger than %d bytes", r.method, r.path, maxEnvelope)
	}
	var env envelope
	jsonErr := json.Unmarshal(raw, &env)
	if resp.StatusCode >= 400 || (jsonErr == nil && !env.Success) {
		return nil, resp.Header, errorFrom(resp, raw)
	}
	if jsonErr != nil {
		return nil, nil, fmt.Errorf("%s %s: the answer is not the API's JSON (HTTP %d)", r.method, r.path, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return nil, nil, fmt.Errorf("%s %s: unexpected data: %w", r.method, r.path, err)
		}
	}
	return &env, resp.Header, nil
}

// errorFrom turns a failed answer (its body already read) into an *Error.
func errorFrom(resp *http.Response, raw []byte) *Error {
	var env envelope
	jsonErr := json.Unmarshal(raw, &env)
	e := &Error{Status: resp.StatusCode, ErrorCode: env.ErrorCode, Message: env.Message, RequestID: env.RequestID}
	if jsonErr != nil || e.Message == "" {
		e.ErrorCode, e.Message = "", http.StatusText(resp.StatusCode)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}
