package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Idempotency follows the IETF httpapi Idempotency-Key draft: the key is a
// client-chosen string (a Structured Field string such as "abc", or a bare
// token); the first answer to a key is stored for 24 hours and replayed to
// any retry with the same key and the same request; the same key with a
// different request is refused with 422; a retry while the first request is
// still running is refused with 409.
const (
	idempotencyTTL    = 24 * time.Hour
	maxIdempotencyKey = 255
)

// parseIdempotencyKey accepts `"key"` (sf-string) or a bare key of printable
// ASCII, 1 to 255 characters.
func parseIdempotencyKey(h string) (string, bool) {
	h = strings.TrimSpace(h)
	if len(h) >= 2 && h[0] == '"' && h[len(h)-1] == '"' {
		h = h[1 : len(h)-1]
	}
	if len(h) == 0 || len(h) > maxIdempotencyKey {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x21 || h[i] > 0x7e || h[i] == '"' || h[i] == '\\' {
			return "", false
		}
	}
	return h, true
}

// requestFingerprint hashes what makes two requests "the same": method,
// path, the async preference and the body in canonical form: JSON with key
// order and spacing ignored, multipart with the boundary ignored.
func requestFingerprint(r *http.Request, body []byte) string {
	canon := body
	var v any
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		if b, err := canonicalMultipart(body, params["boundary"]); err == nil {
			canon = b
		}
	} else if json.Unmarshal(body, &v) == nil {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.Path+"\n")
	io.WriteString(h, strconv.FormatBool(preferAsync(r))+"\n")
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalMultipart lists a multipart body's parts in order, each as its
// field name, file name and the SHA-256 of its content.
func canonicalMultipart(body []byte, boundary string) ([]byte, error) {
	if boundary == "" {
		return nil, errors.New("no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var out bytes.Buffer
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, p); err != nil {
			return nil, err
		}
		fmt.Fprintf(&out, "%q %q %x\n", p.FormName(), p.FileName(), h.Sum(nil))
	}
}

// bufferedResponse records an answer so that it can be stored and replayed.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// storedResponse is what is kept for a replay: the status, the headers a
// client may need, and the body.
type storedResponse struct {
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body"`
}

var replayedHeaders = []string{"Location", "Preference-Applied", "Content-Type"}

// idempotent wraps a handler with Idempotency-Key handling. With required,
// a request without the header is refused (IDEMPOTENCY_KEY_MISSING).
func (s *Server) idempotent(required bool, next http.HandlerFunc) http.HandlerFunc {
	return s.idempotentUpTo(required, maxGenerateBody, next)
}

// editBodyLimit bounds an edit's body: a multipart one may carry a mask.
func (s *Server) editBodyLimit() int64 { return s.images.MaxFileSize() + multipartOverhead }

// idempotentUpTo is idempotent for a route whose bodies may reach limit
// bytes (held in memory while the request runs, to be fingerprinted).
func (s *Server) idempotentUpTo(required bool, limit int64, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Idempotency-Key")
		if len(values) == 0 {
			if required {
				writeError(w, r, imaged.Errorf(imaged.EIdempotencyMissing, "The Idempotency-Key header is required"))
				return
			}
			next(w, r)
			return
		}
		// A header sent empty, or twice, is not a key: it is refused
		// rather than read as "no key" (which would run the request again
		// on every retry).
		key, ok := "", false
		if len(values) == 1 {
			key, ok = parseIdempotencyKey(values[0])
		}
		if !ok {
			writeError(w, r, imaged.Errorf(imaged.EIdempotencyInvalid, "The Idempotency-Key header must be 1 to %d printable ASCII characters", maxIdempotencyKey))
			return
		}
		if r.ContentLength > limit {
			writeError(w, r, imaged.Errorf(imaged.ETooLarge, "The request body exceeds the limit of %d bytes", limit))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			writeError(w, r, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		owner := imaged.OwnerFrom(r.Context())
		now := time.Now().UTC()
		rec := &imaged.IdempotencyRecord{
			Owner:       owner,
			Key:         key,
			RequestHash: requestFingerprint(r, body),
			CreatedAt:   now,
			ExpiresAt:   now.Add(idempotencyTTL),
		}
		existing, err := s.idem.ReserveIdempotencyKey(r.Context(), rec)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if existing != nil && !existing.Completed && now.Sub(existing.CreatedAt) > s.staleAfter() {
			// The replica that held it died mid-request: take it over.
			if err := s.idem.ReleaseIdempotencyKey(r.Context(), owner, key); err == nil {
				existing, err = s.idem.ReserveIdempotencyKey(r.Context(), rec)
				if err != nil {
					writeError(w, r, err)
					return
				}
			}
		}
		if existing != nil {
			s.replay(w, r, existing, rec.RequestHash)
			return
		}

		buf := &bufferedResponse{header: w.Header()}
		completed := false
		defer func() {
			if !completed {
				// A panic or an unstored answer: let a retry run again.
				s.releaseKey(r.Context(), owner, key)
			}
		}()
		next(buf, r)
		status := buf.status
		if status == 0 {
			status = http.StatusOK
		}
		if keepAnswer(status) {
			stored := storedResponse{Body: json.RawMessage(bytes.TrimSpace(buf.body.Bytes())), Headers: map[string]string{}}
			for _, h := range replayedHeaders {
				if v := w.Header().Get(h); v != "" {
					stored.Headers[h] = v
				}
			}
			b, _ := json.Marshal(stored)
			cctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
			err := s.idem.CompleteIdempotencyKey(cctx, owner, key, status, b)
			cancel()
			if err != nil {
				loggerFrom(r.Context()).ErrorContext(r.Context(), "idempotent answer not stored", "err", err)
			} else {
				completed = true
			}
		}
		w.WriteHeader(status)
		w.Write(buf.body.Bytes())
	}
}

// keepAnswer tells which answers a retry must see again: successes and the
// client's own mistakes. Quota refusals, conflicts and server failures are
// not kept, so that a retry runs afresh.
func keepAnswer(status int) bool {
	switch {
	case status < 400:
		return true
	case status == http.StatusTooManyRequests, status == http.StatusConflict, status == http.StatusUnauthorized:
		return false
	case status < 500:
		return true
	}
	return false
}

func (s *Server) staleAfter() time.Duration {
	if s.gen != nil {
		return s.gen.Timeout() + time.Minute
	}
	return 5 * time.Minute
}

func (s *Server) releaseKey(ctx context.Context, owner, key string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.idem.ReleaseIdempotencyKey(rctx, owner, key); err != nil {
		loggerFrom(ctx).ErrorContext(ctx, "idempotency key not released", "err", err)
	}
}

// replay answers a retry from the stored record.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, rec *imaged.IdempotencyRecord, hash string) {
	if rec.RequestHash != hash {
		writeError(w, r, imaged.Errorf(imaged.EIdempotencyMismatch, "This Idempotency-Key was already used with a different request"))
		return
	}
	if !rec.Completed {
		writeError(w, r, &imaged.Error{Code: imaged.EIdempotencyBusy, Message: "A request with this Idempotency-Key is still being processed", RetryAfter: time.Second})
		return
	}
	var stored storedResponse
	if err := json.Unmarshal(rec.Response, &stored); err != nil {
		writeError(w, r, err)
		return
	}
	for k, v := range stored.Headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.StatusCode)
	w.Write(stored.Body)
	w.Write([]byte("\n"))
}
