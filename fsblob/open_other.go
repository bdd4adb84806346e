//go:build !unix

package fsblob

import "os"

func openFile(path string) (*os.File, error) { return os.Open(path) }

func maxOpenFiles() int { return DefaultOpenFiles }
