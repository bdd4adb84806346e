package http

import (
	"context"
	"net"
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
