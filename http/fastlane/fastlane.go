// Package fastlane answers the plainest requests on a connection before
// net/http sees it: a GET of a path the Handler knows, with no
// precondition, range, body or header it does not expect, is answered
// straight from the connection's goroutine, with a stored file's headers
// and sendfile, or with a small body in memory (an API answer) in one
// write. Anything else, from the first byte of the request that is not
// plain, goes to net/http with the bytes already read, and the connection
// stays with net/http from then on.
//
// It exists for speed: for a 100 KiB image net/http spends more CPU on
// parsing, header maps and its response machinery than the kernel spends
// sending the file. Serving such a file, imaged on net/http reached about
// 0.55x nginx's rate, and reaches a median of 0.87-0.94x with this lane
// (0.84-0.88x for an 86 KiB variant; go run ./bench -only delivery,
// figures in the README). For a 767-byte JSON answer, net/http's own work
// is about 20 µs of CPU per request on the 2-core benchmark machine, more
// than half of a bare handler's cost. It is kept small on purpose: every
// case it does not handle exactly as net/http would is handed over, so
// net/http stays the one place that answers errors, ranges, HEAD,
// conditional requests and everything that is not a plain GET.
package fastlane

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Request is what the lane read of a plain GET.
type Request struct {
	Path          string // the request target: no query, no percent-escapes
	Host          string // the Host header
	Accept        string // the Accept header, "" if none
	Authorization string // the Authorization header, "" if none
	RequestID     string // the X-Request-Id header, "" if none
	Start         time.Time
	// Scratch is an empty buffer of the connection's that the Answer's
	// Header may be appended to; the lane reuses it after Done.
	Scratch []byte
	// Note is what a Handler that leaves the request to net/http (Answer
	// returns nil) learned of it, so that net/http need not learn it
	// again: it goes with the connection, as Conn.Note.
	Note any
}

// Answer is the 200 a Handler answers a Request with: a file, or a body
// in memory.
type Answer struct {
	File         *os.File // sent from Offset with sendfile; the lane never closes or moves it
	Offset, Size int64
	// Body is the answer's body when File is nil (Size is then len(Body)):
	// written with the head, in one write. The lane does not keep it
	// after Done.
	Body []byte
	// Header is the answer's header lines ("Name: value\r\n" each),
	// without Content-Length, Date and Connection, which the lane writes.
	Header []byte
	// Done is called once when the answer is sent or given up, with the
	// bytes of the body sent and the error that cut it short.
	Done func(sent int64, err error)
}

// length is the answer's Content-Length.
func (a *Answer) length() int64 {
	if a.File == nil {
		return int64(len(a.Body))
	}
	return a.Size
}

// Handler picks the answers of the lane.
type Handler interface {
	// Answer returns the answer to r, or nil to leave r (and the rest of
	// its connection) to net/http. It must not block for long: the
	// connection waits.
	Answer(r *Request) *Answer
}

// Config bounds a connection's time in the lane, as http.Server's fields of
// the same names do.
type Config struct {
	ReadHeaderTimeout time.Duration // from a request's first byte to the end of its headers
	IdleTimeout       time.Duration // between requests
	WriteTimeout      time.Duration // per answer
}

// maxHeader is the most the lane reads of one request. A larger request is
// not plain: net/http gets it with its own limits.
const maxHeader = 4 << 10

// Listener is a net.Listener whose Accept returns the connections the lane
// handed over; serve net/http on it.
type Listener struct {
	ln      net.Listener
	h       Handler
	cfg     Config
	handoff chan net.Conn
	done    chan struct{}
	once    sync.Once

	mu      sync.Mutex
	err     error // what ended the accept loop
	conns   map[*conn]struct{}
	closed  bool
	drained chan struct{} // closed once closed and no connection is left in the lane
	empty   bool          // drained is closed
}

// Listen starts taking ln's connections into the lane.
func Listen(ln net.Listener, h Handler, cfg Config) *Listener {
	l := &Listener{ln: ln, h: h, cfg: cfg, handoff: make(chan net.Conn), done: make(chan struct{}),
		conns: map[*conn]struct{}{}, drained: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if temporary(err) && !l.isClosed() {
				// As net/http does on a temporary failure (EMFILE): wait, retry.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		delay = 0
		tc, ok := c.(*net.TCPConn)
		if !ok || !supported {
			go l.handOver(c)
			continue
		}
		cn := &conn{tc: tc, l: l}
		if !l.track(cn) {
			c.Close()
			continue
		}
		go cn.serve()
	}
}

// Accept returns the next connection handed over to net/http.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil && !errors.Is(l.err, net.ErrClosed) {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections that wait in the lane
// for a request; one that is being answered closes when its answer is sent.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.ln.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.conns {
			c.closeIfIdle()
		}
		l.checkDrained()
		l.mu.Unlock()
		close(l.done)
	})
	return err
}

// Shutdown closes l as Close does and waits until the connections in the
// lane have sent the answers they were sending, or ctx ends. Connections
// handed over to net/http are http.Server.Shutdown's to wait for.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.Close()
	select {
	case <-l.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkDrained closes drained when the lane is closed and empty; l.mu is
// held.
func (l *Listener) checkDrained() {
	if l.closed && len(l.conns) == 0 && !l.empty {
		l.empty = true
		close(l.drained)
	}
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *Listener) track(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.checkDrained()
}

// handOver gives c to net/http, or closes it when the listener closed.
func (l *Listener) handOver(c net.Conn) {
	select {
	case l.handoff <- c:
	case <-l.done:
		c.Close()
	}
}

// Conn is a connection handed over to net/http: reads return the bytes the
// lane had read first.
type Conn struct {
	*net.TCPConn
	Pending []byte
	// Note is the Request.Note of the request the lane left to net/http,
	// the first one Pending holds; TakeNote reads it.
	Note any
}

// TakeNote returns the Note and clears it, so that it is read at most
// once: take it while serving the connection's first request. It must be
// called from the goroutine serving the connection.
func (c *Conn) TakeNote() any {
	n := c.Note
	c.Note = nil
	return n
}

func (c *Conn) Read(b []byte) (int, error) {
	if len(c.Pending) > 0 {
		n := copy(b, c.Pending)
		c.Pending = c.Pending[n:]
		return n, nil
	}
	return c.TCPConn.Read(b)
}

// conn is a connection in the lane.
type conn struct {
	tc   *net.TCPConn
	l    *Listener
	head []byte // the answer head being written, reused

	mu      sync.Mutex
	idle    bool // waiting for a request
	closing bool
}

func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	if c.idle {
		// Wakes the read; serve sees closing and closes.
		c.tc.SetReadDeadline(time.Now())
	}
}

// setIdle marks the connection waiting (or not) and reports false when the
// listener is closing.
func (c *conn) setIdle(idle bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = idle
	return !c.closing
}

// serve answers plain requests until one is not, then hands the
// connection over.
func (c *conn) serve() {
	buf := make([]byte, maxHeader)
	n := 0                           // bytes in buf
	scratch := make([]byte, 0, 1024) // the handler's header lines
	c.head = make([]byte, 0, 1024)
	for first := true; ; first = false {
		end, err := c.readRequest(buf, &n, first)
		if err != nil {
			if errors.Is(err, errNotPlain) {
				c.handOver(buf[:n], nil)
				return
			}
			c.close()
			return
		}
		req, ok := parseRequest(buf[:end])
		if !ok {
			c.handOver(buf[:n], nil)
			return
		}
		req.Start, req.Scratch = time.Now(), scratch
		a := c.l.h.Answer(&req.Request)
		if a == nil {
			c.handOver(buf[:n], req.Note)
			return
		}
		sent, err := c.answer(a, req.close)
		a.Done(sent, err)
		if err != nil || req.close {
			c.close()
			return
		}
		n = copy(buf, buf[end:n])
	}
}

var errNotPlain = errors.New("fastlane: not a plain request")

// readRequest reads into buf (holding *n bytes already) until it holds a
// whole request head, and returns the head's length. Waiting for a request
// counts as idle (IdleTimeout, ended by Close); from the first byte the
// head must arrive within ReadHeaderTimeout, as with net/http (whose
// header timeout also runs from the start of the connection's first
// request). A head that comes in one read, as nearly all do, costs one
// deadline.
func (c *conn) readRequest(buf []byte, n *int, first bool) (int, error) {
	headerDeadline := false // ReadHeaderTimeout is in force
	if *n == 0 {
		wait := c.l.cfg.IdleTimeout
		if first {
			wait, headerDeadline = c.l.cfg.ReadHeaderTimeout, true
		}
		// The deadline first: Close's wake-up (a deadline of now) must
		// come after it.
		c.tc.SetReadDeadline(deadline(wait))
		if !c.setIdle(true) {
			return 0, net.ErrClosed
		}
		m, err := c.tc.Read(buf)
		if !c.setIdle(false) {
			if m > 0 {
				// A request raced with Close: net/http answers it (and
				// closes the connection, being shut down).
				*n = m
				return 0, errNotPlain
			}
			return 0, net.ErrClosed
		}
		if err != nil {
			return 0, err
		}
		*n = m
	}
	for {
		end, ok := headEnd(buf[:*n])
		if !ok {
			return 0, errNotPlain
		}
		if end > 0 {
			return end, nil // the read deadline left does not matter until the next read
		}
		if *n == len(buf) {
			return 0, errNotPlain
		}
		if !headerDeadline {
			// The start of a request is here (read now or pipelined).
			c.tc.SetReadDeadline(deadline(c.l.cfg.ReadHeaderTimeout))
			headerDeadline = true
		}
		m, err := c.tc.Read(buf[*n:])
		*n += m
		if err != nil {
			return 0, err
		}
	}
}

// answer writes a's header and file, or header and body.
func (c *conn) answer(a *Answer, close bool) (int64, error) {
	c.tc.SetWriteDeadline(deadline(c.l.cfg.WriteTimeout))
	c.head = appendHead(c.head[:0], a, close)
	if a.File == nil {
		head := len(c.head)
		c.head = append(c.head, a.Body...)
		n, err := c.tc.Write(c.head)
		return int64(max(n-head, 0)), err
	}
	if _, err := WriteMore(c.tc, c.head); err != nil {
		return 0, err
	}
	return sendFileAt(c.tc, a.File, a.Offset, a.Size)
}

func (c *conn) handOver(pending []byte, note any) {
	c.l.untrack(c)
	c.tc.SetDeadline(time.Time{})
	hc := &Conn{TCPConn: c.tc, Note: note}
	if len(pending) > 0 {
		hc.Pending = append([]byte(nil), pending...)
	}
	c.l.handOver(hc)
}

func (c *conn) close() {
	c.l.untrack(c)
	c.tc.Close()
}

// temporary reports whether an Accept error is worth a retry, as net/http
// judges it.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}
