package main

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/sqlite"
)

// backend is one storage configuration imaged can run on. The benchmark
// seeds it directly, then starts imaged on it with env; every measurement is
// the same on every backend. sqliteBackend is the embedded default,
// postgresBackend (postgres.go) PostgreSQL with local or S3 blobs.
type backend struct {
	name string
	// env is what imaged needs, beyond --data-dir, to use this backend.
	env []string
	// openBlobs opens the blob store imaged will use.
	openBlobs func(ctx context.Context, dataDir string) (imaged.BlobStore, error)
	// store writes the images of s (imaged's metadata store must then
	// answer for them as if it had created them).
	store func(ctx context.Context, dataDir string, s *seedSet, progress func(done int)) error
	// explain, when set, prints how the database runs the listing of owner
	// at cursor c.
	explain func(ctx context.Context, w io.Writer, owner string, c *imaged.Cursor, pageSize int) error
	// close releases what the backend holds (a PostgreSQL schema).
	close func()
	// dbPID is the database server's main process when it runs on this
	// machine (PostgreSQL's postmaster), whose CPU time is measured too.
	dbPID int
}

// sqliteBackend is the embedded default: SQLite and blobs in the data
// directory. It is seeded through the store's CreateImage, one image at a
// time, as imaged would have written them.
func sqliteBackend() *backend {
	return &backend{
		name:      "sqlite",
		openBlobs: localBlobs,
		store: func(ctx context.Context, dataDir string, s *seedSet, progress func(int)) error {
			db, err := sqlite.Open(ctx, filepath.Join(dataDir, "imaged.db"))
			if err != nil {
				return fmt.Errorf("open sqlite: %w", err)
			}
			defer db.Close()
			for i := range s.n {
				if err := db.CreateImage(ctx, s.image(i)); err != nil {
					return fmt.Errorf("create image %d: %w", i, err)
				}
				if (i+1)%10000 == 0 {
					progress(i + 1)
				}
			}
			return nil
		},
		close: func() {},
	}
}

func localBlobs(_ context.Context, dataDir string) (imaged.BlobStore, error) {
	return fsblob.Open(filepath.Join(dataDir, "blobs"))
}

// seedSet is n images of one owner, oldest first, created one millisecond
// apart and ending just before the set was made, so listings have a
// well-defined order. Each id is a UUIDv7 of its image's creation time, so
// ids sort as the creation times do. Image i is a function of i alone (its
// random parts come from a generator keyed by the set and i): a million
// images need not be held in memory.
//
// Image 0 has real bytes (png) in the blob store; the others share its
// metadata but have blob keys of their own with nothing behind them.
type seedSet struct {
	owner         string
	n             int
	first         time.Time
	key           uint64
	realKey       string
	png           []byte
	width, height int
	sha           string
	// prompt, when set, makes image i a generation of prompt(i) where it
	// answers one ("" keeps it an upload).
	prompt func(i int) string
}

func newSeedSet(owner string, n int, png []byte, width, height int, sha string) *seedSet {
	return &seedSet{
		owner:   owner,
		n:       n,
		first:   time.Now().Add(-time.Duration(n+1) * time.Millisecond).UTC().Truncate(time.Millisecond),
		key:     rand.Uint64(),
		realKey: imaged.NewBlobKey("png"),
		png:     png,
		width:   width,
		height:  height,
		sha:     sha,
	}
}

// image returns image i of the set.
func (s *seedSet) image(i int) *imaged.Image {
	at := s.first.Add(time.Duration(i) * time.Millisecond)
	r := rand.New(rand.NewPCG(s.key, uint64(i)))
	key := s.realKey
	if i > 0 {
		key = blobKey(r)
	}
	img := &imaged.Image{
		ID:               uuidV7(at, r),
		Owner:            s.owner,
		OriginalFilename: fmt.Sprintf("seed-%07d.png", i),
		MediaType:        "image/png",
		Size:             int64(len(s.png)),
		Width:            s.width,
		Height:           s.height,
		SHA256:           s.sha,
		BlobKey:          key,
		Source:           imaged.SourceUpload,
		CreatedAt:        at,
		UpdatedAt:        at,
	}
	if s.prompt != nil {
		if p := s.prompt(i); p != "" {
			img.Source = imaged.SourceGeneration
			img.Generation = &imaged.Generation{Prompt: p, Provider: "builtin", Model: "procedural-1", AspectRatio: "1:1"}
		}
	}
	return img
}

// ids returns the ids of the set's images, oldest first.
func (s *seedSet) ids() []string {
	ids := make([]string, s.n)
	for i := range ids {
		ids[i] = s.image(i).ID
	}
	return ids
}

// atDepth returns the index of the image at position k of the listing,
// newest first.
func (s *seedSet) atDepth(k int) int { return s.n - 1 - k }

// uuidV7 is the canonical text of a UUIDv7 whose timestamp is at, as
// imaged.NewID makes them.
func uuidV7(at time.Time, r *rand.Rand) string {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[0:8], uint64(at.UnixMilli())<<16) // 48 bits of milliseconds
	binary.BigEndian.PutUint64(u[6:14], r.Uint64())
	binary.BigEndian.PutUint16(u[14:16], uint16(r.Uint32()))
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	return u.String()
}

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// blobKey is a key of the form imaged.NewBlobKey("png") makes, from r.
func blobKey(r *rand.Rand) string {
	var b [20]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return strings.ToLower(keyEncoding.EncodeToString(b[:])) + ".png"
}

// seed stores s in b, with the bytes of its image 0 in b's blob store, and
// returns how long that took.
func seed(ctx context.Context, b *backend, dataDir string, s *seedSet) (time.Duration, error) {
	start := time.Now()
	blobs, err := b.openBlobs(ctx, dataDir)
	if err != nil {
		return 0, fmt.Errorf("open blob store: %w", err)
	}
	if _, err := blobs.Put(ctx, s.realKey, bytes.NewReader(s.png)); err != nil {
		return 0, fmt.Errorf("put blob: %w", err)
	}
	err = b.store(ctx, dataDir, s, func(done int) {
		progress("  %s: %d of %d images of %q seeded", b.name, done, s.n, s.owner)
	})
	if err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
