package http

import (
	"io"
	"os"

	"github.com/imaged/imaged/http/fastlane"
)

// A local blob's file may be shared by other readers (imaged.LocalBlob), so
// it is answered through an *io.SectionReader over it, which reads at its
// own position with ReadAt and never moves the file's. On a connection
// accepted through Listener, net/http's copy of such a reader to the answer
// (ResponseWriter.ReadFrom) goes out with sendfile at that position, as an
// *os.File's would.

// ReadFrom sends an *io.SectionReader over an *os.File (whole or under an
// io.LimitedReader, as http.ServeContent copies a range) with sendfile at
// its position, and anything else as *net.TCPConn does.
func (c *moreConn) ReadFrom(src io.Reader) (int64, error) {
	lr, limited := src.(*io.LimitedReader)
	inner := src
	if limited {
		inner = lr.R
	}
	sr, ok := inner.(*io.SectionReader)
	if !ok {
		return c.TCPConn.ReadFrom(src)
	}
	outer, base, size := sr.Outer()
	f, ok := outer.(*os.File)
	if !ok {
		return c.TCPConn.ReadFrom(src)
	}
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	n := size - pos
	if limited {
		n = min(n, lr.N)
	}
	if n <= 0 {
		return 0, nil
	}
	written, err, handled := fastlane.SendFileAt(c.TCPConn, f, base+pos, n)
	if _, serr := sr.Seek(pos+written, io.SeekStart); serr != nil && err == nil {
		err = serr
	}
	if limited {
		lr.N -= written
	}
	if !handled {
		// No sendfile here (another system, a file it does not take):
		// the copy through memory, from where it stopped.
		more, err := c.TCPConn.ReadFrom(src)
		return written + more, err
	}
	return written, err
}
