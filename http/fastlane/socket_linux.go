package fastlane

import (
	"io"
	"net"
	"os"
	"syscall"
)

// supported: the lane needs MSG_MORE and sendfile at an offset.
const supported = true

// MoreSupported reports whether WriteMore holds segments back.
const MoreSupported = true

// WriteMore writes all of b on c with MSG_MORE, so that the kernel holds a
// partial segment back until a write that does not say so (a sendfile),
// waiting for the socket as net.Conn's Write does (c's write deadline
// applies).
func WriteMore(c *net.TCPConn, b []byte) (int, error) {
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

// sendFileAt sends n bytes of f from off on c, copying through memory
// where sendfile does not take f.
func sendFileAt(c *net.TCPConn, f *os.File, off, n int64) (int64, error) {
	written, err, handled := SendFileAt(c, f, off, n)
	if handled {
		return written, err
	}
	return io.Copy(c, io.NewSectionReader(f, off, n))
}

// SendFileAt sends n bytes of f from off on c with sendfile, at that
// explicit offset (f's own position stays where it is, so readers can share
// f), waiting for the socket as a Write does (the write deadline applies).
// handled is false when nothing was sent because sendfile does not take f.
func SendFileAt(c *net.TCPConn, f *os.File, off, n int64) (written int64, err error, handled bool) {
	fc, err := f.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	sc, err := c.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	handled = true
	var serr error
	// Control holds the file's descriptor open (a Close waits) while
	// sendfile uses it, without its read lock: the answers sharing the file
	// send it at once, each waiting for its own socket.
	ferr := fc.Control(func(ffd uintptr) {
		err = sc.Write(func(sfd uintptr) bool {
			for written < n {
				pos := off + written
				m, err := syscall.Sendfile(int(sfd), int(ffd), &pos, int(min(n-written, 1<<30)))
				switch {
				case err == syscall.EAGAIN:
					return false // wait until writable
				case err == syscall.EINTR:
					continue
				case (err == syscall.EINVAL || err == syscall.ENOSYS || err == syscall.EOPNOTSUPP) && written == 0:
					handled = false
					return true
				case err != nil:
					serr = err
					return true
				case m == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than said
					return true
				}
				written += int64(m)
			}
			return true
		})
	})
	switch {
	case serr != nil:
		err = &net.OpError{Op: "sendfile", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: serr}
	case err == nil:
		err = ferr
	}
	return written, err, handled
}
