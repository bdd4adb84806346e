package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blobcopy"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/s3"
)

// gc removes blobs that no image references (see images.CollectGarbage).
func gc(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, parse := newFlagSet("imaged gc", getenv, stderr, "data-dir", "database-url")
	grace := fs.Duration("grace", time.Hour, "keep unreferenced blobs younger than this (uploads in flight)")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	b, err := openBackends(ctx, cfg, getenv)
	if err != nil {
		return err
	}
	defer b.Close()
	st, err := images.New(b.db, b.blobs, images.Config{}).CollectGarbage(ctx, *grace)
	fmt.Fprintf(stdout, "checked %d blobs, removed %d unreferenced (%d bytes)\n", st.Checked, st.Removed, st.RemovedBytes)
	return err
}

// migrateStore copies every blob from one store to another: resumable (what
// is already there is skipped) and verifiable (--verify compares digests).
// The service keeps serving from the old store meanwhile; see the README for
// the switch-over with IMAGED_BLOB_FALLBACK.
func migrateStore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// The stores come from the flags; S3 endpoint and keys from IMAGED_S3_*.
	fs := newCommandFlags("migrate-store", stderr)
	from := fs.String("from", "", "source store: fs:DIR or s3:BUCKET (endpoint and keys from IMAGED_S3_*)")
	to := fs.String("to", "", "destination store, same forms")
	after := fs.String("after", "", "resume the walk after this key")
	verify := fs.Bool("verify", false, "compare SHA-256 digests of every blob, not only sizes")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs.Name(), rest); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		fs.Usage()
		return usagef("--from and --to are required")
	}
	src, err := openBlobStore(ctx, *from, getenv)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	dst, err := openBlobStore(ctx, *to, getenv)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	start := time.Now()
	last := time.Now()
	st, err := blobcopy.Copy(ctx, src, dst, blobcopy.Options{After: *after, Verify: *verify,
		Progress: func(st blobcopy.Stats, key string) {
			if time.Since(last) > 5*time.Second {
				last = time.Now()
				fmt.Fprintf(stderr, "copied %d, skipped %d, %d bytes; at %s\n", st.Copied, st.Skipped, st.Bytes, key)
			}
		}})
	fmt.Fprintf(stdout, "copied %d blobs (%d bytes), skipped %d already present, in %s\n",
		st.Copied, st.Bytes, st.Skipped, time.Since(start).Round(time.Millisecond))
	if err != nil {
		if st.Last != "" {
			fmt.Fprintf(stderr, "resume with: --after %s\n", st.Last)
		}
		return err
	}
	return nil
}

// openBlobStore opens "fs:DIR" or "s3:BUCKET[/PREFIX]".
func openBlobStore(ctx context.Context, spec string, getenv func(string) string) (imaged.BlobStore, error) {
	kind, arg, ok := strings.Cut(spec, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("store %q must be fs:DIR or s3:BUCKET", spec)
	}
	switch kind {
	case "fs":
		if _, err := os.Stat(arg); err != nil {
			return nil, err
		}
		return fsblob.Open(arg)
	case "s3":
		cfg, _ := s3.ConfigFromEnv(getenv)
		bucket, prefix, _ := strings.Cut(arg, "/")
		cfg.Bucket, cfg.Prefix = bucket, prefix
		return s3.Open(ctx, cfg)
	}
	return nil, fmt.Errorf("store %q must be fs:DIR or s3:BUCKET", spec)
}
