package http

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/telemetry"
)

type ctxKey int

const requestKey ctxKey = 0

// requestInfo is what observe puts in a request's context.
type requestInfo struct {
	id   string
	log  *slog.Logger // the server's, without the request id
	lane *laneVerdict // why the fast lane left this request here, if it tried
}

func requestIDFrom(ctx context.Context) string {
	if ri, ok := ctx.Value(requestKey).(*requestInfo); ok {
		return ri.id
	}
	return ""
}

// loggerFrom returns a logger that adds the request id to every line. It is
// made on demand: most requests log nothing but their access log line.
func loggerFrom(ctx context.Context) *slog.Logger {
	if ri, ok := ctx.Value(requestKey).(*requestInfo); ok {
		return ri.log.With("requestId", ri.id)
	}
	return slog.Default()
}

// validRequestID accepts a caller's X-Request-Id only when it is short and
// plain, so that it cannot forge log lines.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// requestID is the id of a request whose X-Request-Id header is given:
// that id when it is valid, else a new one.
func requestID(given string) string {
	if validRequestID(given) {
		return given
	}
	return newRequestID()
}

// newRequestID makes a request id. Its 96 bits come from math/rand/v2's
// generator (ChaCha8, seeded by the system): an id must be unique, not
// secret, and crypto/rand cost a measurable share of a fast-lane answer.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers what a handler answered, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// ReadFrom passes a copy on to the connection's ReadFrom, so that a file
// served through the recorder still goes out with sendfile.
func (s *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{s.ResponseWriter}, r)
	}
	s.bytes += n
	return n, err
}

// writerOnly hides every method but Write, so that io.Copy cannot call
// ReadFrom again.
type writerOnly struct{ io.Writer }

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe gives every request an id (X-Request-Id, echoed), a logger that
// carries it, an access log line, and turns panics into a 500 envelope.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		w.Header()["X-Request-Id"] = []string{id}
		// The context's request info and the recorder share one allocation.
		st := &struct {
			info requestInfo
			rec  statusRecorder
		}{info: requestInfo{id: id, log: s.log, lane: takeLaneVerdict(r.Context())}, rec: statusRecorder{ResponseWriter: w}}
		ctx := context.WithValue(r.Context(), requestKey, &st.info)
		r = r.WithContext(ctx)
		if r.Body != nil && r.Body != http.NoBody {
			body := newClientBody(w, r, s.bodyIdle)
			defer body.stop()
			r.Body = body
		}
		rec := &st.rec
		var body *clientBody
		if cb, ok := r.Body.(*clientBody); ok {
			body = cb
		}
		if s.tel != nil {
			s.tel.RequestStarted()
			if s.tel.Tracing() {
				var span trace.Span
				ctx, span = s.tel.StartRequest(r)
				r = r.WithContext(ctx)
				defer func() { telemetry.EndRequest(span, r.Pattern, rec.status) }()
			}
			defer func() {
				var in int64
				if body != nil {
					in = body.n
				}
				s.tel.RequestDone(r.Pattern, r.Method, rec.status, time.Since(start), in, rec.bytes)
			}()
		}

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				loggerFrom(ctx).ErrorContext(ctx, "panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, r, fmt.Errorf("panic: %v", v))
				}
			}
			s.logRequest(ctx, id, r.Method, r.URL.Path, rec.status, rec.bytes, start)
		}()
		if headersTooLarge(r) {
			writeError(rec, r, imaged.Errorf(imaged.EHeadersTooLarge, "The request's header fields exceed %d bytes", MaxHeaderBytes))
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// logRequest writes a request's access log line. The record goes to the
// handler directly: Logger.LogAttrs would also walk the stack for the
// caller's program counter, on every request, for a source no line shows.
func (s *Server) logRequest(ctx context.Context, id, method, path string, status int, n int64, start time.Time) {
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	now := time.Now()
	r := slog.NewRecord(now, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("requestId", id),
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Int64("bytes", n),
		slog.Duration("duration", now.Sub(start)),
	)
	h.Handle(ctx, r)
}

// authenticated requires a valid bearer token and puts its subject in the
// request context as the owner.
func (s *Server) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			writeError(w, r, imaged.Errorf(imaged.EUnauthorized, "Missing or invalid bearer token"))
			return
		}
		var sub string
		var err error
		if v := laneVerdictFor(r); v != nil && v.token == token {
			sub, err = v.owner, v.authErr // the lane checked this token already
		} else {
			sub, err = s.auth.Authenticate(r.Context(), token)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		next(w, r.WithContext(imaged.WithOwner(r.Context(), sub)))
	}
}

func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
