package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blobcopy"
	"github.com/imaged/imaged/fsblob"
	imhttp "github.com/imaged/imaged/http"
	"github.com/imaged/imaged/postgres"
	"github.com/imaged/imaged/s3"
	"github.com/imaged/imaged/sqlite"
)

// metadataStore is what one database gives the service.
type metadataStore interface {
	imaged.ImageStore
	imaged.IdempotencyStore
	imaged.QuotaStore
	imaged.JobStore
	imaged.WebhookStore
	imaged.Pinger
}

// backends are the opened stores and how to close them.
type backends struct {
	db     metadataStore
	blobs  imaged.BlobStore
	ready  []imhttp.Check
	closer []func()
	where  string // a one-line description for the start banner
	local  bool   // the blobs are files in a local directory (fsblob), and only there
}

func (b *backends) Close() {
	for i := len(b.closer) - 1; i >= 0; i-- {
		b.closer[i]()
	}
}

// openBackends opens the metadata store (PostgreSQL when a database URL is
// given, else SQLite in the data directory) and the blob store (S3 when
// IMAGED_S3_* or AWS variables name a bucket, else a local directory).
func openBackends(ctx context.Context, cfg *config, getenv func(string) string) (*backends, error) {
	b := &backends{}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()

	var metaWhere, blobWhere string
	switch {
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		pcfg := postgres.Config{
			URL:            cfg.DatabaseURL,
			MaxConns:       int32(cfg.DBMaxConns),
			QueryTimeout:   cfg.DBQueryTimeout,
			ConnectTimeout: cfg.DBQueryTimeout,
		}
		db, err := postgres.Open(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		b.db = db
		b.closer = append(b.closer, db.Close)
		metaWhere = "PostgreSQL"
	case cfg.DatabaseURL != "":
		return nil, fmt.Errorf("IMAGED_DATABASE_URL must start with postgres:// (leave it empty for SQLite)")
	default:
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		path := filepath.Join(cfg.DataDir, "imaged.db")
		// Create the file private (SQLite gives its -wal and -shm files the
		// same mode); an empty file is an empty database.
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
			f.Close()
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open SQLite %s: %w", path, err)
		}
		b.db = db
		b.closer = append(b.closer, func() { db.Close() })
		metaWhere = "SQLite " + path
	}
	b.ready = append(b.ready, imhttp.Check{Name: "database", Pinger: b.db})

	if scfg, found := s3.ConfigFromEnv(getenv); found {
		store, err := s3.Open(ctx, scfg)
		if err != nil {
			return nil, fmt.Errorf("open S3 bucket %s: %w", scfg.Bucket, err)
		}
		b.blobs = store
		b.ready = append(b.ready, imhttp.Check{Name: "object storage", Pinger: store})
		blobWhere = "S3 bucket " + scfg.Bucket
	} else {
		dir := filepath.Join(cfg.DataDir, "blobs")
		store, err := fsblob.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("open blob directory %s: %w", dir, err)
		}
		b.blobs, b.local = store, true
		blobWhere = "directory " + dir
	}
	if spec := getenv("IMAGED_BLOB_FALLBACK"); spec != "" {
		// Mid-migration: read what is not copied yet from the old store.
		old, err := openBlobStore(ctx, spec, getenv)
		if err != nil {
			return nil, fmt.Errorf("IMAGED_BLOB_FALLBACK: %w", err)
		}
		b.blobs = &blobcopy.Fallback{Primary: b.blobs, Secondary: old}
		b.local = false // some blobs are read from the old store
		blobWhere += " (falling back to " + spec + ")"
	}
	b.where = "metadata in " + metaWhere + ", images in " + blobWhere
	ok = true
	return b, nil
}
