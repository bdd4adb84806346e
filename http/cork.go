package http

import (
	"context"
	"net"
)

type connKeyType struct{}

// withConn puts the connection in its requests' contexts (http.Server's
// ConnContext).
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKeyType{}, c)
}

// corked holds back partial segments on the request's TCP connection until
// the returned function is called, as nginx's tcp_nopush does: a file
// answer then leaves as full segments, its headers in the first one,
// instead of a small packet of headers followed by the body (on loopback,
// every packet also costs a pass through the receiving stack). Without a
// TCP connection in ctx (tests, other systems) it does nothing.
func corked(ctx context.Context) (uncork func()) {
	tc, ok := ctx.Value(connKeyType{}).(*net.TCPConn)
	if !ok || !setCork(tc, true) {
		return func() {}
	}
	return func() { setCork(tc, false) }
}
