package http

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/http/fastlane"
	"github.com/imaged/imaged/variants"
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

// fastCDN answers the fast lane's requests for /cdn/{key},
// /cdn/{key}/{preset} and /cdn/{key}/{transform}/{signature} with the
// headers handleBlob and serveVariant give a plain GET, when the bytes are
// a local file already stored. Everything else (a miss, an error, a blob in
// a bucket, a variant still to render) goes to net/http, which answers it
// as always. TestFastLaneAnswersAsNetHTTP holds the two to the same answer.
type fastCDN struct{ s *Server }

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

func (f fastCDN) Answer(r *fastlane.Request) *fastlane.Answer {
	rest, ok := strings.CutPrefix(r.Path, "/cdn/")
	if !ok {
		return nil
	}
	ctx := &lookupContext{deadline: r.Start.Add(fastLookupTimeout)}
	defer ctx.stop()
	var (
		pattern string
		blob    imaged.Blob
		d       delivery
	)
	switch parts := strings.Split(rest, "/"); len(parts) {
	case 1:
		img, b, err := f.s.images.OpenBlob(ctx, parts[0])
		if err != nil {
			return nil
		}
		pattern, blob, d = "GET /cdn/{key}", b, originalDelivery(img)
	case 2, 3:
		if f.s.variants == nil {
			return nil
		}
		var v *variants.Variant
		var err error
		if len(parts) == 2 {
			pattern = "GET /cdn/{key}/{preset}"
			v, err = f.s.variants.StoredPreset(ctx, parts[0], parts[1], r.Accept)
		} else {
			pattern = "GET /cdn/{key}/{transform}/{signature}"
			v, err = f.s.variants.StoredTransform(ctx, parts[0], parts[1], parts[2], r.Accept)
		}
		if err != nil || v == nil {
			return nil
		}
		blob, d = v.Blob, variantDelivery(v)
	default:
		return nil
	}
	lb, ok := blob.(imaged.LocalBlob)
	if !ok {
		blob.Close()
		return nil
	}
	id := requestID(r.RequestID)
	f.s.tel.RequestStarted()
	f.s.fastAnswers.Add(1)
	return &fastlane.Answer{
		File:   lb.LocalFile(),
		Size:   blob.Size(),
		Header: appendFastHeader(r.Scratch, &d, id),
		Done: func(sent int64, err error) {
			blob.Close()
			f.s.tel.RequestDone(pattern, http.MethodGet, http.StatusOK, time.Since(r.Start), 0, sent)
			f.s.logRequest(context.Background(), id, http.MethodGet, r.Path, http.StatusOK, sent, r.Start)
		},
	}
}

// appendFastHeader appends the header lines serveBlob and sendFile set for
// a plain GET of a local file (but Content-Length and Date, which the lane
// writes), in net/http's order.
func appendFastHeader(b []byte, d *delivery, requestID string) []byte {
	line := func(b []byte, name, value string) []byte {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		return append(b, "\r\n"...)
	}
	b = line(b, "Accept-Ranges", "bytes")
	b = line(b, "Cache-Control", d.cacheControl)
	b = line(b, "Content-Security-Policy", sandboxed[0])
	b = line(b, "Content-Type", d.mediaType)
	b = line(b, "Etag", d.etag)
	if !d.modTime.IsZero() {
		b = append(b, "Last-Modified: "...)
		b = fastlane.AppendHTTPDate(b, d.modTime)
		b = append(b, "\r\n"...)
	}
	if d.vary != "" {
		b = line(b, "Vary", d.vary)
	}
	b = line(b, "X-Content-Type-Options", nosniff[0])
	return line(b, "X-Request-Id", requestID)
}
