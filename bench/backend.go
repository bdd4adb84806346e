package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/sqlite"
)

// backend is one storage configuration imaged can run on. The benchmark
// seeds it directly through the store packages, then starts imaged on it
// with env. To measure another database (PostgreSQL: IMAGED_DATABASE_URL and
// postgres.Open) or blob store (S3: IMAGED_S3_* and s3.Open), add a backend
// next to sqliteBackend and choose it from a flag in main; the seeding and
// every measurement stay the same.
type backend struct {
	name string
	// env is what imaged needs, beyond --data-dir, to use this backend.
	env []string
	// openImages opens the metadata store imaged will use.
	openImages func(ctx context.Context, dataDir string) (imaged.ImageStore, func(), error)
	// openBlobs opens the blob store imaged will use.
	openBlobs func(ctx context.Context, dataDir string) (imaged.BlobStore, error)
}

// sqliteBackend is the embedded default: SQLite and blobs in the data
// directory.
func sqliteBackend() *backend {
	return &backend{
		name: "sqlite",
		openImages: func(ctx context.Context, dataDir string) (imaged.ImageStore, func(), error) {
			db, err := sqlite.Open(ctx, filepath.Join(dataDir, "imaged.db"))
			if err != nil {
				return nil, nil, err
			}
			return db, func() { db.Close() }, nil
		},
		openBlobs: func(ctx context.Context, dataDir string) (imaged.BlobStore, error) {
			return fsblob.Open(filepath.Join(dataDir, "blobs"))
		},
	}
}

// seeded is what seed stored: the images of one owner, oldest first.
type seeded struct {
	owner  string
	images []*imaged.Image
	took   time.Duration
}

// seedImages stores n images of owner in b, as imaged would have: the first
// one with real bytes (png) in the blob store, the others sharing its
// metadata but with keys of their own. Their creation times are one
// millisecond apart and in the past, so listings have a well-defined order.
func seedImages(ctx context.Context, b *backend, dataDir, owner string, n int, png []byte, width, height int, sha string, progress func(done int)) (*seeded, error) {
	store, closeStore, err := b.openImages(ctx, dataDir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", b.name, err)
	}
	defer closeStore()
	blobs, err := b.openBlobs(ctx, dataDir)
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}

	start := time.Now()
	realKey := imaged.NewBlobKey("png")
	if _, err := blobs.Put(ctx, realKey, bytes.NewReader(png)); err != nil {
		return nil, fmt.Errorf("put blob: %w", err)
	}
	s := &seeded{owner: owner, images: make([]*imaged.Image, 0, n)}
	first := start.Add(-time.Duration(n+1) * time.Millisecond).UTC().Truncate(time.Millisecond)
	for i := range n {
		at := first.Add(time.Duration(i) * time.Millisecond)
		key := realKey
		if i > 0 {
			key = imaged.NewBlobKey("png")
		}
		img := &imaged.Image{
			ID:               imaged.NewID(),
			Owner:            owner,
			OriginalFilename: fmt.Sprintf("seed-%07d.png", i),
			MediaType:        "image/png",
			Size:             int64(len(png)),
			Width:            width,
			Height:           height,
			SHA256:           sha,
			BlobKey:          key,
			Source:           imaged.SourceUpload,
			CreatedAt:        at,
			UpdatedAt:        at,
		}
		if err := store.CreateImage(ctx, img); err != nil {
			return nil, fmt.Errorf("create image %d: %w", i, err)
		}
		s.images = append(s.images, img)
		if progress != nil && (i+1)%10000 == 0 {
			progress(i + 1)
		}
	}
	s.took = time.Since(start)
	return s, nil
}
