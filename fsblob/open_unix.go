//go:build unix

package fsblob

import (
	"os"
	"syscall"
)

// openFile opens path for reading. It is os.Open without the attempt to
// register a regular file with the network poller (an epoll_ctl that fails,
// then fcntl calls to undo non-blocking mode): a blob is opened on every
// request for its bytes, and those calls were a tenth of the cost of
// serving one.
func openFile(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// maxOpenFiles is a quarter of the process's limit of open files (which
// the Go runtime raises to the hard limit at start).
func maxOpenFiles() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur == ^uint64(0) {
		return DefaultOpenFiles
	}
	return int(min(l.Cur/4, 1<<20))
}
