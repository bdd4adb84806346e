package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/postgres"
	"github.com/imaged/imaged/s3"
)

// s3EnvPrefix names the variables that put the PostgreSQL backend's blobs
// in S3: IMAGED_BENCH_S3_BUCKET, _ENDPOINT, _ACCESS_KEY_ID... are given to
// imaged as IMAGED_S3_BUCKET, _ENDPOINT, _ACCESS_KEY_ID...
const s3EnvPrefix = "IMAGED_BENCH_S3_"

// imageColumns are the columns postgres.CreateImage writes, in its order.
var imageColumns = []string{"id", "owner", "original_filename", "media_type", "size", "width", "height",
	"sha256", "blob_key", "source", "generation", "created_at", "updated_at"}

// postgresBackend is imaged on the PostgreSQL database of dbURL, in a schema
// of its own (bench_<random>, made here, reached through search_path and
// dropped by close), with blobs in the data directory, or in S3 under a
// prefix of their own (deleted by close) when IMAGED_BENCH_S3_BUCKET is set.
//
// It is seeded with COPY, an order of magnitude faster than one INSERT per
// image, into the columns postgres.CreateImage fills, after postgres.Open
// has migrated the schema. The per-owner counts imaged keeps (image_counts,
// when the schema has it) are then recomputed from the rows, whether or not
// triggers maintained them during the COPY, and the table is vacuumed and
// analyzed, as autovacuum would have done after such inserts.
func postgresBackend(ctx context.Context, dbURL string) (*backend, error) {
	if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
		return nil, errors.New("-database-url must be a postgres:// URL")
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		// The error would quote the URL, password included.
		return nil, errors.New("-database-url is malformed")
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	schema := "bench_" + hex.EncodeToString(rb[:])
	var backendPID int
	err = withConn(ctx, dbURL, func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		return conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backendPID)
	})
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	schemaURL := u.String()

	b := &backend{
		name:      "postgres",
		env:       []string{"IMAGED_DATABASE_URL=" + schemaURL},
		openBlobs: localBlobs,
		store: func(ctx context.Context, _ string, s *seedSet, progress func(int)) error {
			return copyImages(ctx, schemaURL, s, progress)
		},
		explain: func(ctx context.Context, w io.Writer, owner string, c *imaged.Cursor, pageSize int) error {
			return explainList(ctx, w, schemaURL, owner, c, pageSize)
		},
	}
	if h := u.Hostname(); h == "127.0.0.1" || h == "localhost" || h == "::1" {
		b.dbPID = serverProcess(backendPID)
	}
	var blobCleanup func(context.Context) error
	if cfg, ok := s3.ConfigFromEnv(benchS3Env); ok {
		b.name = "postgres+s3"
		cfg.Prefix += schema + "/"
		for _, kv := range os.Environ() {
			if rest, ok := strings.CutPrefix(kv, s3EnvPrefix); ok && !strings.HasPrefix(rest, "PREFIX=") {
				b.env = append(b.env, "IMAGED_S3_"+rest)
			}
		}
		b.env = append(b.env, "IMAGED_S3_PREFIX="+cfg.Prefix)
		b.openBlobs = func(ctx context.Context, _ string) (imaged.BlobStore, error) { return s3.Open(ctx, cfg) }
		blobCleanup = func(ctx context.Context) error {
			store, err := s3.Open(ctx, cfg)
			if err != nil {
				return err
			}
			return store.Walk(ctx, "", func(bi imaged.BlobInfo) error { return store.Delete(ctx, bi.Key) })
		}
	}
	b.close = func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := adminExec(ctx, dbURL, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			progress("could not drop schema %s: %v", schema, err)
		}
		if blobCleanup != nil {
			if err := blobCleanup(ctx); err != nil {
				progress("could not delete the blobs under %s in S3: %v", schema, err)
			}
		}
	}
	progress("postgres: working in schema %s", schema)
	return b, nil
}

// benchS3Env is the environment as s3.ConfigFromEnv should see it for the
// benchmark: IMAGED_S3_X is IMAGED_BENCH_S3_X, and nothing else is set.
func benchS3Env(name string) string {
	if rest, ok := strings.CutPrefix(name, "IMAGED_S3_"); ok {
		return os.Getenv(s3EnvPrefix + rest)
	}
	return ""
}

// adminExec runs one statement on a connection of its own.
func adminExec(ctx context.Context, dbURL, sql string) error {
	return withConn(ctx, dbURL, func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		return nil
	})
}

// withConn calls fn with a connection of its own to dbURL, for a minute at
// most.
func withConn(ctx context.Context, dbURL string, fn func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(ctx, conn)
}

// copyImages migrates the schema of dbURL with postgres.Open, then COPYs s
// into its images table and brings the rest of the schema in line.
func copyImages(ctx context.Context, dbURL string, s *seedSet, progress func(int)) error {
	return copyImageRange(ctx, dbURL, s, 0, s.n, progress)
}

// copyImageRange is copyImages of the images [from, to) of s.
func copyImageRange(ctx context.Context, dbURL string, s *seedSet, from, to int, progress func(int)) error {
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL})
	if err != nil {
		return err
	}
	db.Close()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	i := from
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"images"}, imageColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if i == to {
			return nil, nil
		}
		img := s.image(i)
		if i++; i%100000 == 0 {
			progress(i)
		}
		// As postgres.CreateImage writes them; generation is NULL for an
		// upload.
		var gen any
		if img.Generation != nil {
			b, err := json.Marshal(img.Generation)
			if err != nil {
				return nil, err
			}
			gen = string(b)
		}
		return []any{img.ID, img.Owner, img.OriginalFilename, img.MediaType, img.Size, img.Width, img.Height,
			img.SHA256, img.BlobKey, string(img.Source), gen, img.CreatedAt, img.UpdatedAt}, nil
	}))
	if err != nil {
		return fmt.Errorf("copy images: %w", err)
	}
	if n != int64(to-from) {
		return fmt.Errorf("copy images: %d rows copied, not %d", n, to-from)
	}
	if err := refreshImageCounts(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) images"); err != nil {
		return fmt.Errorf("vacuum images: %w", err)
	}
	return nil
}

// refreshImageCounts recomputes the per-owner image counts that imaged
// keeps when the schema has an image_counts table, in case COPY bypassed
// their maintenance. Without the table it does nothing. measureList checks
// the count imaged answers either way.
func refreshImageCounts(ctx context.Context, conn *pgx.Conn) error {
	keys, count, err := imageCounts(ctx, conn)
	if err != nil || count == "" {
		return err
	}
	sql := fmt.Sprintf(`INSERT INTO image_counts (%[1]s, %[2]s) SELECT %[1]s, count(*) FROM images GROUP BY %[1]s
		ON CONFLICT (%[1]s) DO UPDATE SET %[2]s = EXCLUDED.%[2]s`, keys, count)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("refresh image_counts: %w", err)
	}
	return nil
}

// imageCounts reads the shape of the image_counts table, which counts the
// images by owner (and source): its key columns ("owner, source") and its
// count column; "" for both when there is no such table.
func imageCounts(ctx context.Context, conn *pgx.Conn) (keys, count string, err error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('image_counts') IS NOT NULL`).Scan(&exists); err != nil {
		return "", "", fmt.Errorf("look for image_counts: %w", err)
	}
	if !exists {
		return "", "", nil
	}
	rows, err := conn.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'image_counts' ORDER BY ordinal_position`)
	if err != nil {
		return "", "", fmt.Errorf("read image_counts columns: %w", err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var c [2]string
		return c, r.Scan(&c[0], &c[1])
	})
	if err != nil {
		return "", "", fmt.Errorf("read image_counts columns: %w", err)
	}
	var key, counts []string
	for _, c := range cols {
		switch {
		case c[0] == "owner" || c[0] == "source":
			key = append(key, c[0])
		case c[1] == "integer" || c[1] == "bigint":
			counts = append(counts, pgx.Identifier{c[0]}.Sanitize())
		}
	}
	if len(counts) != 1 || !slices.Contains(key, "owner") {
		return "", "", fmt.Errorf("image_counts has columns %v, not owner[, source], count: update bench/postgres.go", cols)
	}
	return strings.Join(key, ", "), counts[0], nil
}

// explainList writes the plans and timings of the two queries
// postgres.ListImages sends for owner's page after cursor c, newest first
// (their SQL is copied from postgres/image.go: the count is read from
// image_counts when the schema has it). Both are prepared
// statements, as pgx sends them: each is shown with the custom plan
// PostgreSQL makes for their first five executions and with the generic plan
// it may keep after that.
func explainList(ctx context.Context, w io.Writer, dbURL, owner string, c *imaged.Cursor, pageSize int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, count, err := imageCounts(ctx, conn)
	if err != nil {
		return err
	}
	countSQL := `SELECT count(*) FROM images WHERE owner = $1`
	if count != "" {
		countSQL = `SELECT coalesce(sum(` + count + `), 0)::bigint FROM image_counts WHERE owner = $1`
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	queries := []struct{ name, prepare, execute string }{
		{"count", `PREPARE count_images(text) AS ` + countSQL, `EXECUTE count_images(` + lit(owner) + `)`},
		{"page after the cursor", `PREPARE page_after(text, timestamptz, text) AS SELECT ` +
			strings.Join(imageColumns, ", ") + ` FROM images WHERE owner = $1 AND (created_at, id) < ($2, $3)
			ORDER BY created_at DESC, id DESC LIMIT ` + strconv.Itoa(pageSize+1) + ` OFFSET 0`,
			`EXECUTE page_after(` + lit(owner) + `, ` + lit(c.CreatedAt.Format(time.RFC3339Nano)) + `, ` + lit(c.ID) + `)`},
	}
	for _, q := range queries {
		if _, err := conn.Exec(ctx, q.prepare); err != nil {
			return fmt.Errorf("prepare %s: %w", q.name, err)
		}
		for _, mode := range []string{"custom", "generic"} {
			if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_"+mode+"_plan"); err != nil {
				return err
			}
			rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+q.execute, pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				return fmt.Errorf("explain %s: %w", q.name, err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("explain %s: %w", q.name, err)
			}
			fmt.Fprintf(w, "  %s, %s plan:\n", q.name, mode)
			for _, l := range lines {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}
	return nil
}
