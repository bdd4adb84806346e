//go:build !linux

package http

import "net"

// setCork is a no-op where TCP_CORK does not exist.
func setCork(*net.TCPConn, bool) bool { return false }
