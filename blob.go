package imaged

import (
	"context"
	"io"
	"os"
	"time"
)

// BlobStore holds image bytes under opaque keys. Implementations: fsblob (a
// local directory) and s3; both pass the blobtest conformance suite.
type BlobStore interface {
	// Put stores everything r yields under key and returns the byte count.
	// The blob becomes visible only once complete and durable: a failed or
	// cancelled Put leaves nothing behind, and r's error is returned as is.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open returns the blob for reading with seeking (ranges). A missing key
	// answers NotFound().
	Open(ctx context.Context, key string) (Blob, error)
	// Stat describes a blob without reading it; NotFound() if missing.
	Stat(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes the blob; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for every blob in key order, starting after the key
	// `after` ("" for the start), until fn returns an error.
	Walk(ctx context.Context, after string, fn func(BlobInfo) error) error
}

// Blob is an open blob.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
}

// LocalBlob is implemented by blobs that are files on this machine (fsblob).
// Reading a local file does not fail half-way the way a network stream can,
// so the HTTP layer serves such a blob without reading ahead, handing the
// file to the kernel (sendfile).
//
// The file may be shared by every open blob of the same key (fsblob keeps
// the files read last open): read it only at explicit offsets (ReadAt,
// sendfile with an offset), never through its own position, and do not
// close it; Close the blob.
type LocalBlob interface {
	Blob
	LocalFile() *os.File
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// ValidBlobKey reports whether key has the form the service mints: 1 to 128
// characters of [a-z0-9], '-', '_', '.', not starting with '.' and with no
// "..". Stores refuse any other key, so no key can escape their root.
func ValidBlobKey(key string) bool {
	if len(key) == 0 || len(key) > 128 || key[0] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if i+1 < len(key) && key[i+1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}
