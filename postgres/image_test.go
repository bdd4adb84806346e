package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/storetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A database made by the first schema gets counts of the images it already
// holds, and keeps them from then on.
func TestImageCountsMigrationCountsExistingImages(t *testing.T) {
	ctx := t.Context()
	u := freshSchema(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].version != 1 || ms[1].name != "0002_image_counts" {
		t.Fatalf("migrations %s, %s: want 0001 then 0002_image_counts", ms[0].name, ms[1].name)
	}
	old, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	for _, q := range []string{ms[0].sql,
		`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO schema_migrations (version, name) VALUES (1, '` + ms[0].name + `')`,
	} {
		if _, err := old.Exec(ctx, q); err != nil {
			t.Fatalf("first schema: %v", err)
		}
	}
	seedImages(t, old, "alice", 8) // 6 uploads, 2 generations
	seedImages(t, old, "bob", 3)   // 3 uploads
	old.Close(ctx)

	db := open(t, Config{URL: u})
	wantTotal := func(step, owner string, source imaged.Source, want int64) {
		t.Helper()
		p, err := db.ListImages(ctx, imaged.ImageFilter{Owner: owner, Source: source})
		if err != nil {
			t.Fatalf("%s: ListImages: %v", step, err)
		}
		if p.TotalItems != want {
			t.Errorf("%s: %s's %q total %d, want %d", step, owner, source, p.TotalItems, want)
		}
	}
	wantTotal("migrated", "alice", "", 8)
	wantTotal("migrated", "alice", imaged.SourceUpload, 6)
	wantTotal("migrated", "alice", imaged.SourceGeneration, 2)
	wantTotal("migrated", "bob", "", 3)
	wantTotal("migrated", "bob", imaged.SourceGeneration, 0)
	p, err := db.ListImages(ctx, imaged.ImageFilter{Owner: "alice", Source: imaged.SourceGeneration})
	if err != nil || len(p.Images) != 2 {
		t.Fatalf("ListImages: %v, %d images", err, len(p.Images))
	}
	if _, err := db.DeleteImage(ctx, "alice", p.Images[0].ID); err != nil {
		t.Fatal(err)
	}
	wantTotal("after a delete", "alice", "", 7)
	wantTotal("after a delete", "alice", imaged.SourceGeneration, 1)

	// An operator's SQL that moves or removes images is counted too.
	if _, err := db.pool.Exec(ctx, `UPDATE images SET owner = 'carol', source = 'generation'
		WHERE owner = 'alice' AND source = 'upload'`); err != nil {
		t.Fatal(err)
	}
	wantTotal("after an update", "alice", "", 1)
	wantTotal("after an update", "alice", imaged.SourceUpload, 0)
	wantTotal("after an update", "carol", imaged.SourceGeneration, 6)
	wantTotal("after an update", "bob", "", 3)
	if _, err := db.pool.Exec(ctx, `TRUNCATE images`); err != nil {
		t.Fatal(err)
	}
	wantTotal("after truncate", "carol", "", 0)
	wantTotal("after truncate", "bob", "", 0)
}

// copier is what seedImages needs of a pool or of a bare connection.
type copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// seedImages copies n images of one owner into db, a second apart and oldest
// first, every fourth one generated, and returns them in that order.
func seedImages(tb testing.TB, db copier, owner string, n int) []*imaged.Image {
	tb.Helper()
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	imgs := make([]*imaged.Image, n)
	rows := make([][]any, n)
	for i := range n {
		img := &imaged.Image{ID: imaged.NewID(), Owner: owner, OriginalFilename: fmt.Sprintf("IMG_%06d.png", i),
			BlobKey: imaged.NewBlobKey("png"), Source: imaged.SourceUpload, CreatedAt: base.Add(time.Duration(i) * time.Second)}
		if i%4 == 3 {
			img.Source = imaged.SourceGeneration
		}
		imgs[i] = img
		rows[i] = []any{img.ID, owner, img.OriginalFilename, "image/png", int64(1000), 64, 64,
			strings.Repeat("0", 64), img.BlobKey, string(img.Source), nil, img.CreatedAt, img.CreatedAt}
	}
	// The columns of the first schema, which the count migration test seeds.
	cols := slices.DeleteFunc(strings.Split(strings.Join(strings.Fields(imageColumns), ""), ","),
		func(c string) bool { return c == "provenance" || c == "parent_id" })
	if _, err := db.CopyFrom(ctx, pgx.Identifier{"images"}, cols, pgx.CopyFromRows(rows)); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(ctx, `ANALYZE images`); err != nil {
		tb.Fatal(err)
	}
	return imgs
}

// BenchmarkListImages runs storetest.BenchmarkListImages on one owner's
// 100,000 images.
func BenchmarkListImages(b *testing.B) {
	db := open(b, Config{URL: freshSchema(b)})
	storetest.BenchmarkListImages(b, db, seedImages(b, db.pool, "alice", 100_000))
}

// BenchmarkCreateImage runs storetest.BenchmarkCreateImage.
func BenchmarkCreateImage(b *testing.B) {
	storetest.BenchmarkCreateImage(b, open(b, Config{URL: freshSchema(b)}))
}
