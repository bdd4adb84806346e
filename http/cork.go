package http

import (
	"context"
	"net"

	"github.com/imaged/imaged/http/fastlane"
)

type connKeyType struct{}

// withConn puts the connection in its requests' contexts (http.Server's
// ConnContext).
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKeyType{}, c)
}

// Listener wraps ln so that the answers of a server made by NewHTTPServer
// and serving on it can send a file's headers in the body's first segment
// with one system call fewer each (see corked). Connections keep everything
// else of *net.TCPConn, sendfile included.
func Listener(ln net.Listener) net.Listener { return moreListener{ln} }

type moreListener struct{ net.Listener }

func (l moreListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	switch c := c.(type) {
	case *net.TCPConn:
		return &moreConn{Conn: &fastlane.Conn{TCPConn: c}}, nil
	case *fastlane.Conn: // handed over by the fast lane, with what it read
		return &moreConn{Conn: c}, nil
	}
	return c, nil
}

// moreConn is a TCP connection whose writes, while more is set, tell the
// kernel that more data follows (MSG_MORE), so that it holds a partial
// segment back until the next write that does not say so: a sendfile.
// Only the goroutine serving the connection's current request sets it.
type moreConn struct {
	*fastlane.Conn // the TCP connection, read after any bytes the fast lane read
	more           bool
}

// corked holds back partial segments on the request's TCP connection until
// the returned function is called, as nginx's tcp_nopush does: a file
// answer then leaves as full segments, its headers in the first one,
// instead of a small packet of headers followed by the body (on loopback,
// every packet also costs a pass through the receiving stack). On a
// connection accepted through Listener, the headers are written with
// MSG_MORE and the sendfile after them pushes everything; on another TCP
// connection, TCP_CORK is set and cleared around the answer (two more
// system calls). Without a TCP connection in ctx (tests, other systems) it
// does nothing.
func corked(ctx context.Context) (uncork func()) {
	switch c := ctx.Value(connKeyType{}).(type) {
	case *moreConn:
		if fastlane.MoreSupported {
			c.more = true
			return func() { c.more = false }
		}
		return corkTCP(c.TCPConn)
	case *net.TCPConn:
		return corkTCP(c)
	}
	return func() {}
}

func corkTCP(tc *net.TCPConn) func() {
	if !setCork(tc, true) {
		return func() {}
	}
	return func() { setCork(tc, false) }
}

func (c *moreConn) Write(b []byte) (int, error) {
	if !c.more {
		return c.TCPConn.Write(b)
	}
	return fastlane.WriteMore(c.TCPConn, b)
}
