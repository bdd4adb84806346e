// Package fsblob is the embedded default imaged.BlobStore: blobs as files in
// a local directory.
//
// A blob with key k lives at dir/k[0:2]/k[2:4]/k, the two fan-out levels
// taken from the key itself (padded with '+', which sorts before every key
// character, for keys shorter than four) so that walking the directories in
// sorted order lists keys in order. A Put is written to dir/.tmp, synced,
// renamed into place and its directory synced: a blob is visible only once
// complete and durable, and a crash leaves at most a stale temporary file,
// which Open removes.
//
// One process owns a directory: Open removes every temporary file, including
// those of a Put in flight in another process sharing it. The files of the
// blobs read last stay open (Options.OpenFiles; see openFiles), so the
// blobs the store opens share them: they are read at explicit offsets.
package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imaged/imaged"
)

const (
	tmpDir   = ".tmp"
	fileMode = 0o640
	dirMode  = 0o750
	// pad fills the fan-out of keys shorter than four characters; it sorts
	// before '-', the smallest character a key may hold.
	pad = '+'
)

// Store is a BlobStore in a local directory.
type Store struct {
	dir   string
	files *openFiles
}

// Options tune a Store.
type Options struct {
	// OpenFiles is how many blob files stay open after their last reader
	// is done, for the next: the most recently used, at most a quarter of
	// the process's limit of open files. 0 keeps none.
	OpenFiles int
}

var _ imaged.BlobStore = (*Store)(nil)

// Open opens (creating it if needed) the blob directory dir and removes the
// temporary files a crashed Put may have left. It keeps DefaultOpenFiles
// files open.
func Open(dir string) (*Store, error) {
	return OpenWith(dir, Options{OpenFiles: DefaultOpenFiles})
}

// OpenWith is Open with options.
func OpenWith(dir string, o Options) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	tmp := filepath.Join(dir, tmpDir)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("fsblob: removing stale temporary files: %w", err)
	}
	if err := os.Mkdir(tmp, dirMode); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	return &Store{dir: dir, files: newOpenFiles(min(o.OpenFiles, maxOpenFiles()))}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// fanout returns the two directory names under which key lives.
func fanout(key string) (string, string) {
	var p [4]byte
	for i := range p {
		p[i] = pad
		if i < len(key) {
			p[i] = key[i]
		}
	}
	return string(p[0:2]), string(p[2:4])
}

// path returns where the blob key lives, or an error for a key the service
// would never mint: no path is ever built from an unchecked key.
func (s *Store) path(key string) (string, error) {
	if !imaged.ValidBlobKey(key) {
		return "", invalidKey()
	}
	return s.file(key), nil
}

// file is the path of a valid key's file.
func (s *Store) file(key string) string {
	d1, d2 := fanout(key)
	return filepath.Join(s.dir, d1, d2, key)
}

func invalidKey() error { return imaged.Errorf(imaged.EValidation, "Invalid blob key") }

// Put writes r to a temporary file and renames it to key once it is complete
// and synced to disk.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	final, err := s.path(key)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "put-*")
	if err != nil {
		return 0, fmt.Errorf("fsblob: %w", err)
	}
	name := f.Name()
	renamed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !renamed {
			os.Remove(name)
		}
	}()

	n, err = io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		// The reader's error (or the context's) is returned as is.
		return 0, err
	}
	if err := f.Chmod(fileMode); err != nil {
		return 0, fmt.Errorf("fsblob: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsblob: %w", err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return 0, fmt.Errorf("fsblob: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.mkdirs(key); err != nil {
		return 0, err
	}
	if err := os.Rename(name, final); err != nil {
		return 0, fmt.Errorf("fsblob: %w", err)
	}
	renamed = true
	s.files.forget(key)
	if err := syncDir(filepath.Dir(final)); err != nil {
		// The blob is in place but its name may not survive a crash: take
		// it back so that a failed Put leaves nothing.
		os.Remove(final)
		return 0, fmt.Errorf("fsblob: %w", err)
	}
	return n, nil
}

// mkdirs creates the fan-out directories of key, syncing the parent of each
// directory it creates so that the new entry is durable.
func (s *Store) mkdirs(key string) error {
	d1, d2 := fanout(key)
	parent := s.dir
	for _, d := range []string{d1, d2} {
		p := filepath.Join(parent, d)
		err := os.Mkdir(p, dirMode)
		switch {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return fmt.Errorf("fsblob: %w", err)
			}
		case !errors.Is(err, fs.ErrExist):
			return fmt.Errorf("fsblob: %w", err)
		}
		parent = p
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open returns the blob, read from its file, open already when it was read
// lately.
func (s *Store) Open(ctx context.Context, key string) (imaged.Blob, error) {
	if !imaged.ValidBlobKey(key) {
		return nil, invalidKey()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	of, epoch := s.files.get(key)
	if of != nil {
		return newBlob(s.files, of), nil
	}
	p := s.file(key)
	f, err := openFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, imaged.NotFound()
	} else if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("fsblob: %s is not a regular file", p)
	}
	return newBlob(s.files, s.files.keep(key, f, fi.Size(), epoch)), nil
}

// blob is one reader of a blob file, which it may share with others: it
// reads at its own position with ReadAt. Its size is the size the file had
// when opened: a Put over the same key replaces the file by rename, so an
// open blob keeps reading the old bytes.
type blob struct {
	*io.SectionReader
	files  *openFiles
	file   *sharedFile
	closed bool
}

func newBlob(files *openFiles, of *sharedFile) *blob {
	return &blob{SectionReader: io.NewSectionReader(of.f, 0, of.size), files: files, file: of}
}

// LocalFile makes the blob an imaged.LocalBlob: served with sendfile, at
// explicit offsets.
func (b *blob) LocalFile() *os.File { return b.file.f }

// Close ends this reader; the file closes with its last one unless kept.
func (b *blob) Close() error {
	if b.closed {
		return os.ErrClosed
	}
	b.closed = true
	b.files.release(b.file)
	return nil
}

// Stat describes the blob from its file.
func (s *Store) Stat(ctx context.Context, key string) (imaged.BlobInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return imaged.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return imaged.BlobInfo{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return imaged.BlobInfo{}, imaged.NotFound()
	} else if err != nil {
		return imaged.BlobInfo{}, fmt.Errorf("fsblob: %w", err)
	}
	return imaged.BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the blob's file. The fan-out directories stay: removing
// them would race with a Put renaming into them.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = os.Remove(p)
	s.files.forget(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("fsblob: %w", err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("fsblob: %w", err)
	}
	return nil
}

// Walk lists the fan-out directories in sorted order, which is key order.
// Entries that are not blobs of this store (stray files, misplaced keys) are
// skipped.
func (s *Store) Walk(ctx context.Context, after string, fn func(imaged.BlobInfo) error) error {
	a1, a2 := fanout(after)
	if after == "" {
		a1, a2 = "", ""
	}
	level1, err := readDir(s.dir)
	if err != nil {
		return err
	}
	for _, e1 := range level1 {
		d1 := e1.Name()
		if !e1.IsDir() || len(d1) != 2 || d1 < a1 {
			continue
		}
		level2, err := readDir(filepath.Join(s.dir, d1))
		if err != nil {
			return err
		}
		for _, e2 := range level2 {
			d2 := e2.Name()
			if !e2.IsDir() || len(d2) != 2 || (d1 == a1 && d2 < a2) {
				continue
			}
			files, err := readDir(filepath.Join(s.dir, d1, d2))
			if err != nil {
				return err
			}
			for _, f := range files {
				key := f.Name()
				if key <= after || !f.Type().IsRegular() || !imaged.ValidBlobKey(key) {
					continue
				}
				if k1, k2 := fanout(key); k1 != d1 || k2 != d2 {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				fi, err := f.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted since the directory was read
				} else if err != nil {
					return fmt.Errorf("fsblob: %w", err)
				}
				if err := fn(imaged.BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// readDir lists dir sorted by name; a directory removed meanwhile is empty.
func readDir(dir string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	return entries, nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
