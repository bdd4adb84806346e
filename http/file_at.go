package http

import (
	"io"
	"os"
)

// fileAt reads the first size bytes of a file that other readers may share
// (imaged.LocalBlob): at its own position, with ReadAt, never moving the
// file's. On a connection accepted through Listener, net/http's copy of it
// to the answer (ResponseWriter.ReadFrom) goes out with sendfile at that
// position (moreConn.ReadFrom), as an *os.File's would.
type fileAt struct {
	f         *os.File
	pos, size int64
}

func (r *fileAt) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.pos)]
	n, err := r.f.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *fileAt) Seek(offset int64, whence int) (int64, error) {
	pos, err := seekPosition(r.pos, r.size, offset, whence)
	if err != nil {
		return 0, err
	}
	r.pos = pos
	return pos, nil
}

// ReadFrom sends a fileAt (whole or under an io.LimitedReader, as
// http.ServeContent copies a range) with sendfile at its position, and
// anything else as *net.TCPConn does.
func (c *moreConn) ReadFrom(src io.Reader) (int64, error) {
	r, ok := src.(*fileAt)
	lr, limited := src.(*io.LimitedReader)
	if limited {
		r, ok = lr.R.(*fileAt)
	}
	if !ok {
		return c.TCPConn.ReadFrom(src)
	}
	n := r.size - r.pos
	if limited {
		n = min(n, lr.N)
	}
	if n <= 0 {
		return 0, nil
	}
	written, err, handled := sendFileAt(c.TCPConn, r.f, r.pos, n)
	r.pos += written
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
