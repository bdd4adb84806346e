package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// statuses is the one mapping from application error codes to HTTP statuses.
var statuses = map[imaged.ErrorCode]int{
	imaged.ENotFound:            http.StatusNotFound,
	imaged.EUnauthorized:        http.StatusUnauthorized,
	imaged.EValidation:          http.StatusBadRequest,
	imaged.EUnsupportedMedia:    http.StatusUnsupportedMediaType,
	imaged.ETooLarge:            http.StatusRequestEntityTooLarge,
	imaged.EInternal:            http.StatusInternalServerError,
	imaged.EIdempotencyMissing:  http.StatusBadRequest,
	imaged.EIdempotencyInvalid:  http.StatusBadRequest,
	imaged.EInvalidPrompt:       http.StatusBadRequest,
	imaged.EQuotaExceeded:       http.StatusTooManyRequests,
	imaged.EGeneration:          http.StatusInternalServerError,
	imaged.ERouteNotFound:       http.StatusNotFound,
	imaged.EMethodNotAllowed:    http.StatusMethodNotAllowed,
	imaged.EIdempotencyMismatch: http.StatusUnprocessableEntity,
	imaged.EIdempotencyBusy:     http.StatusConflict,
	imaged.EContentPolicy:       http.StatusBadRequest,
	imaged.EEditUnsupported:     http.StatusBadRequest,
	imaged.EGenerationTimeout:   http.StatusGatewayTimeout,
	imaged.EJobNotFound:         http.StatusNotFound,
	imaged.EUnavailable:         http.StatusServiceUnavailable,
	imaged.EConflict:            http.StatusConflict,
	imaged.ERequestTimeout:      http.StatusRequestTimeout,
	imaged.ERangeNotSatisfiable: http.StatusRequestedRangeNotSatisfiable,
	imaged.EHeadersTooLarge:     http.StatusRequestHeaderFieldsTooLarge,
	imaged.EInvalidSignature:    http.StatusForbidden,
	imaged.EImportRefused:       http.StatusUnprocessableEntity,
	imaged.EImportFailed:        http.StatusBadGateway,
	imaged.EImportTimeout:       http.StatusGatewayTimeout,
}

// ErrorStatus returns the HTTP status for an application error code.
func ErrorStatus(code imaged.ErrorCode) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// successBody is the envelope of every successful JSON answer.
type successBody struct {
	Success    bool        `json:"success"`
	Code       int         `json:"code"`
	Message    string      `json:"message"`
	Data       any         `json:"data"`
	Pagination *pagination `json:"pagination,omitempty"`
}

// errorBody is the envelope of every failed answer.
type errorBody struct {
	Success   bool   `json:"success"`
	Code      int    `json:"code"`
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	RequestID string `json:"requestId,omitempty"`
}

type pagination struct {
	CurrentPage int     `json:"currentPage"`
	PageSize    int     `json:"pageSize"`
	TotalItems  int64   `json:"totalItems"`
	TotalPages  int64   `json:"totalPages"`
	NextCursor  *string `json:"nextCursor"`
}

func totalPages(total int64, size int) int64 {
	if size <= 0 {
		return 0
	}
	return int64(math.Ceil(float64(total) / float64(size)))
}

// writeData writes a success envelope around data.
func writeData(w http.ResponseWriter, status int, message string, data any) {
	writeJSON(w, status, successBody{Success: true, Code: status, Message: message, Data: data})
}

// jsonBuffers recycles the buffers answers are encoded into.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledJSON is the largest buffer kept for reuse, so that one large
// answer does not pin its memory.
const maxPooledJSON = 64 << 10

// writeJSON answers body as JSON followed by a newline.
func writeJSON(w http.ResponseWriter, status int, body any) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledJSON {
			jsonBuffers.Put(buf)
		}
	}()
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(body); err != nil {
		// Only a programming error gets here; answer with a valid envelope.
		status = http.StatusInternalServerError
		buf.Reset()
		json.NewEncoder(buf).Encode(errorBody{Code: status, ErrorCode: string(imaged.EInternal),
			Message: "Internal server error", Timestamp: formatTime(time.Now())})
	}
	writeJSONBytes(w, status, buf.Bytes())
}

// jsonType is the Content-Type of JSON answers, shared (net/http only reads
// it).
var jsonType = []string{"application/json"}

// writeJSONBytes answers b, a JSON document, with status.
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

// writeError maps err to the envelope: application errors keep their code
// and message; anything else is logged with its detail and answered as a
// bare INTERNAL_SERVER_ERROR.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = classify(r.Context(), err)
	code := imaged.ErrCode(err)
	status := ErrorStatus(code)
	log := loggerFrom(r.Context())
	switch {
	case isClientGone(err):
		log.InfoContext(r.Context(), "request cancelled by the client", "status", status, "errorCode", code, "err", err)
	case status >= 500:
		log.ErrorContext(r.Context(), "request failed", "status", status, "errorCode", code, "err", err)
	default:
		log.DebugContext(r.Context(), "request refused", "status", status, "errorCode", code, "err", err)
	}
	var e *imaged.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	if code == imaged.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imaged", error="invalid_token"`)
	}
	if code == imaged.ETooLarge || code == imaged.ERequestTimeout || code == imaged.EHeadersTooLarge {
		// The rest of the body is not read; the connection cannot be reused.
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, status, errorBody{
		Code:      status,
		ErrorCode: string(code),
		Message:   imaged.ErrMessage(err),
		Timestamp: formatTime(time.Now()),
		RequestID: requestIDFrom(r.Context()),
	})
}

// classify turns well-known non-application errors into application errors.
func classify(ctx context.Context, err error) error {
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return &imaged.Error{Code: imaged.ETooLarge, Message: "The request body is too large", Err: err}
	case errors.As(err, new(*imaged.Error)):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return &imaged.Error{Code: imaged.EUnavailable, Message: "The service did not answer in time", Err: err}
	case ctx.Err() != nil:
		// The client went away; nobody reads this answer.
		return &clientGone{err: &imaged.Error{Code: imaged.EValidation, Message: "Request cancelled by the client", Err: err}}
	}
	return err
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
