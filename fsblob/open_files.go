package fsblob

import (
	"container/list"
	"os"
	"sync"
)

// DefaultOpenFiles is the default Options.OpenFiles.
const DefaultOpenFiles = 1024

// openFiles keeps the files of the blobs read last open, so that reading a
// blob again (every request for its bytes) costs no open, fstat and close:
// those three system calls were a quarter of the CPU of serving a 100 KiB
// blob, more than the sendfile itself. The bytes under a key never change
// in place, and the store's own Put and Delete of a key forget its file
// (after changing the directory), so a kept file is as good as its path.
//
// Readers share a kept file and read it at explicit offsets only (see
// imaged.LocalBlob). A file leaves when it is the least recently used of
// more than max, or when its key is written or deleted, and is closed when
// its last reader is done with it: a deleted blob's disk space comes back as
// soon as no answer is sending it.
//
// A file opened while its key was being written or deleted is not kept
// (epoch, as in the image metadata cache), nor one opened while another
// reader of the same key had already kept its own.
type openFiles struct {
	max int // files kept at most; 0 keeps none

	mu    sync.Mutex
	m     map[string]*sharedFile
	lru   list.List // of *sharedFile, the most recently used first
	epoch uint64    // bumped by every forget
}

// sharedFile is one open blob file and its readers, kept or not.
type sharedFile struct {
	key  string
	f    *os.File
	size int64
	// refs counts the readers, plus one while the file is kept; the file
	// is closed when it falls to zero. Guarded by openFiles.mu.
	refs int
	elem *list.Element // in openFiles.lru while kept, else nil
}

func newOpenFiles(max int) *openFiles {
	return &openFiles{max: max, m: make(map[string]*sharedFile)}
}

// get returns the kept file of key with one more reader, or nil and the
// epoch to give keep.
func (c *openFiles) get(key string) (*sharedFile, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	of := c.m[key]
	if of == nil {
		return nil, c.epoch
	}
	of.refs++
	c.lru.MoveToFront(of.elem)
	return of, 0
}

// keep makes f, just opened for one reader, the kept file of key unless
// a forget happened since epoch or another file is kept for key already.
// It returns f as its reader's sharedFile either way.
func (c *openFiles) keep(key string, f *os.File, size int64, epoch uint64) *sharedFile {
	of := &sharedFile{key: key, f: f, size: size, refs: 1}
	if c.max <= 0 {
		return of
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch || c.m[key] != nil {
		return of
	}
	of.refs++
	of.elem = c.lru.PushFront(of)
	c.m[key] = of
	for c.lru.Len() > c.max {
		c.drop(c.lru.Back().Value.(*sharedFile))
	}
	return of
}

// release ends one reader of of.
func (c *openFiles) release(of *sharedFile) {
	c.mu.Lock()
	of.refs--
	last := of.refs == 0
	c.mu.Unlock()
	if last {
		of.f.Close()
	}
}

// forget stops keeping key's file (closed once its readers are done), and
// stops a file of key opened before now from being kept.
func (c *openFiles) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if of := c.m[key]; of != nil {
		c.drop(of)
	}
}

// drop stops keeping of; c.mu is held.
func (c *openFiles) drop(of *sharedFile) {
	c.lru.Remove(of.elem)
	of.elem = nil
	delete(c.m, of.key)
	of.refs--
	if of.refs == 0 {
		// Closing a file that no one reads does not block: under the
		// lock, so that a test sees it closed once drop returns.
		of.f.Close()
	}
}

// kept is the number of files kept (for tests).
func (c *openFiles) kept() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
