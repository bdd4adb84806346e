//go:build !linux

package fastlane

import (
	"io"
	"net"
	"os"
)

// supported: without MSG_MORE and sendfile at an offset every connection
// goes to net/http at once.
const supported = false

// MoreSupported reports whether WriteMore holds segments back (Linux only).
const MoreSupported = false

// WriteMore is a plain Write here.
func WriteMore(c *net.TCPConn, b []byte) (int, error) { return c.Write(b) }

func sendFileAt(c *net.TCPConn, f *os.File, off, n int64) (int64, error) {
	return io.Copy(c, io.NewSectionReader(f, off, n))
}

// SendFileAt does nothing here: the copy goes through memory.
func SendFileAt(*net.TCPConn, *os.File, int64, int64) (int64, error, bool) { return 0, nil, false }
