package http

import (
	"net"
	"syscall"
)

// setCork sets TCP_CORK on c and reports whether it could.
func setCork(c *net.TCPConn, on bool) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	}); err != nil {
		return false
	}
	return serr == nil
}

const moreSupported = true

// writeMore writes all of b with MSG_MORE, waiting for the socket to be
// writable as net.Conn's Write does (the connection's write deadline
// applies).
func writeMore(c *net.TCPConn, b []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	written := 0
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for written < len(b) {
			n, err := syscall.SendmsgN(int(fd), b[written:], nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
			switch {
			case err == syscall.EAGAIN:
				return false // wait until writable
			case err == syscall.EINTR:
				continue
			case err != nil:
				werr = err
				return true
			}
			written += n
		}
		return true
	})
	if werr != nil {
		return written, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	return written, err
}
