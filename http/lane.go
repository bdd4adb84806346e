package http

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged/http/fastlane"
)

// Listen returns the listener to serve s on (with a server made by
// NewHTTPServer): plain GETs of /api/images/{id}, and of stored bytes under
// /cdn (originals and stored variants in the local directory, with
// Config.LocalBlobs), are answered in the fast lane (package fastlane),
// everything else by net/http with what Listener adds. With tracing on,
// every request goes to net/http, which makes the spans. After
// http.Server.Shutdown, Shutdown waits for the lane's answers.
func (s *Server) Listen(ln net.Listener) net.Listener {
	if s.tel.Tracing() {
		return Listener(ln)
	}
	lane := fastlane.Listen(ln, fastRoutes{s}, fastlane.Config{
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		WriteTimeout:      writeTimeout,
	})
	s.lanesMu.Lock()
	s.lanes = append(s.lanes, lane)
	s.lanesMu.Unlock()
	return Listener(lane)
}

// Shutdown closes the fast lanes of the listeners Listen returned and waits
// until they have sent the answers they were sending, or ctx ends. Call it
// after http.Server.Shutdown, which waits for the connections net/http has.
func (s *Server) Shutdown(ctx context.Context) error {
	s.lanesMu.Lock()
	lanes := s.lanes
	s.lanesMu.Unlock()
	for _, l := range lanes {
		if err := l.Shutdown(ctx); err != nil {
			return err
		}
	}
	return nil
}

// fastRoutes picks the fast lane's answers: GET /api/images/{id} always,
// the byte URLs under /cdn over the local directory store.
type fastRoutes struct{ s *Server }

func (f fastRoutes) Answer(r *fastlane.Request) *fastlane.Answer {
	if strings.HasPrefix(r.Path, "/api/") {
		return fastAPI{f.s}.Answer(r)
	}
	if f.s.localBlobs {
		return fastCDN{f.s}.Answer(r)
	}
	return nil
}

// laneAnswerStarted counts an answer the lane is about to send as observe
// counts net/http's (in flight, and in fastAnswers), and returns its
// request id.
func (s *Server) laneAnswerStarted(r *fastlane.Request) string {
	s.tel.RequestStarted()
	s.fastAnswers.Add(1)
	return requestID(r.RequestID)
}

// laneAnswerDone records a lane answer of pattern, sent bytes long, as
// observe records net/http's: its metrics and its access log line.
func (s *Server) laneAnswerDone(r *fastlane.Request, pattern, id string, sent int64) {
	s.tel.RequestDone(pattern, http.MethodGet, http.StatusOK, time.Since(r.Start), 0, sent)
	s.logRequest(context.Background(), id, http.MethodGet, r.Path, http.StatusOK, sent, r.Start)
}

// fastLookupTimeout bounds the lane's lookups as a request's context does not:
// the lane has no client disconnect to follow.
const fastLookupTimeout = 30 * time.Second

// lookupContext is the context of a lane answer's lookups: it ends at
// deadline, or at stop, as a context.WithDeadline would, but makes that
// context (and its timer) only once something asks for more than its
// deadline, as a lookup in a store does. A token and an image found in the
// caches cost no timer.
type lookupContext struct {
	deadline time.Time
	once     sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

func (c *lookupContext) timed() context.Context {
	c.once.Do(func() { c.ctx, c.cancel = context.WithDeadline(context.Background(), c.deadline) })
	return c.ctx
}

func (c *lookupContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *lookupContext) Done() <-chan struct{}       { return c.timed().Done() }
func (c *lookupContext) Err() error                  { return c.timed().Err() }

// Value is the timed context's, so that a context derived from c joins
// it as a child instead of watching c from a goroutine of its own.
func (c *lookupContext) Value(key any) any { return c.timed().Value(key) }

// stop ends c: what is still waiting on it gives up.
func (c *lookupContext) stop() {
	c.once.Do(func() { c.ctx = stoppedContext })
	if c.cancel != nil {
		c.cancel()
	}
}

// stoppedContext is a lookupContext's context once it stopped before
// anything asked for one.
var stoppedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// laneVerdict is why the lane left a request to net/http: for GET
// /api/images/{id}, the token's refusal or the lookup's failure for the
// token's owner; under /cdn, the lookup's failure. It goes with the
// connection (fastlane.Request.Note) to the request net/http reads first,
// which observe gives it (requestInfo.lane), and the handlers take the
// token's owner or refusal, and the lookup's failure, from it instead of
// doing the same work again, for that same path, token and owner only. It
// never answers bytes or an image: a lookup that found them was answered
// in the lane.
type laneVerdict struct {
	path    string // the request's
	token   string // the bearer token, and what checking it gave
	owner   string
	authErr error
	err     error // the lookup's failure (for owner, on the API)
}

// takeLaneVerdict returns the verdict the lane left with the connection
// of ctx, once: observe calls it for every request, so only the first
// request net/http serves on the connection gets it.
func takeLaneVerdict(ctx context.Context) *laneVerdict {
	c, ok := ctx.Value(connKeyType{}).(*moreConn)
	if !ok || c.Conn == nil {
		return nil
	}
	v, _ := c.Conn.TakeNote().(*laneVerdict)
	return v
}

// laneVerdictFor is the verdict of r, nil for almost every request.
func laneVerdictFor(r *http.Request) *laneVerdict {
	ri, ok := r.Context().Value(requestKey).(*requestInfo)
	if !ok || ri.lane == nil || r.Method != http.MethodGet || r.URL.Path != ri.lane.path {
		return nil
	}
	return ri.lane
}

// laneLookupError is the failure of the lookup the lane made for r, for
// owner ("" under /cdn), or nil when it made none.
func laneLookupError(r *http.Request, owner string) error {
	if v := laneVerdictFor(r); v != nil && v.owner == owner {
		return v.err
	}
	return nil
}
