//go:build !linux

package http

import (
	"net"
	"os"
)

// setCork is a no-op where TCP_CORK does not exist.
func setCork(*net.TCPConn, bool) bool { return false }

// MSG_MORE is Linux's.
const moreSupported = false

func writeMore(c *net.TCPConn, b []byte) (int, error) { return c.Write(b) }

// sendFileAt does nothing here: the copy goes through memory.
func sendFileAt(*net.TCPConn, *os.File, int64, int64) (int64, error, bool) { return 0, nil, false }
