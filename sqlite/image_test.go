package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/storetest"
)

// A database made by the first schema gets counts of the images it already
// holds, and keeps them from then on.
func TestImageCountsMigrationCountsExistingImages(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "imaged.db")
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].version != 1 || ms[1].name != "0002_image_counts.sql" {
		t.Fatalf("migrations %s, %s: want 0001 then 0002_image_counts.sql", ms[0].name, ms[1].name)
	}
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for _, q := range []string{ms[0].sql,
		`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, '` + ms[0].name + `', 0)`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("first schema: %v", err)
		}
	}
	t0 := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	insert := func(owner string, source imaged.Source, name string) string {
		id := imaged.NewID()
		if _, err := old.ExecContext(ctx, `INSERT INTO images (id, owner, original_filename, filename_lower,
			media_type, size, width, height, sha256, blob_key, source, generation, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'image/png', 1, 1, 1, '00', ?, ?, NULL, ?, ?)`,
			id, owner, name, strings.ToLower(name), imaged.NewBlobKey("png"), string(source), micros(t0), micros(t0)); err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := insert("alice", imaged.SourceUpload, "a.png")
	insert("alice", imaged.SourceUpload, "b.png")
	insert("alice", imaged.SourceGeneration, "c.png")
	insert("bob", imaged.SourceGeneration, "d.png")
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := openTest(t, path)
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
	wantTotal("migrated", "alice", "", 3)
	wantTotal("migrated", "alice", imaged.SourceUpload, 2)
	wantTotal("migrated", "alice", imaged.SourceGeneration, 1)
	wantTotal("migrated", "bob", "", 1)
	if _, err := db.DeleteImage(ctx, "alice", first); err != nil {
		t.Fatal(err)
	}
	wantTotal("after a delete", "alice", "", 2)
	wantTotal("after a delete", "alice", imaged.SourceUpload, 1)

	// An operator's SQL that moves images is counted too.
	if _, err := db.write.ExecContext(ctx, `UPDATE images SET owner = 'carol', source = 'generation'
		WHERE owner = 'alice' AND source = 'upload'`); err != nil {
		t.Fatal(err)
	}
	wantTotal("after an update", "alice", "", 1)
	wantTotal("after an update", "alice", imaged.SourceUpload, 0)
	wantTotal("after an update", "carol", imaged.SourceGeneration, 1)
}

// BenchmarkListImages runs storetest.BenchmarkListImages on one owner's
// 100,000 images.
func BenchmarkListImages(b *testing.B) {
	db := openTest(b, filepath.Join(b.TempDir(), "imaged.db"))
	storetest.BenchmarkListImages(b, db, seedImages(b, db, 100_000, 1))
}

// BenchmarkCreateImage runs storetest.BenchmarkCreateImage.
func BenchmarkCreateImage(b *testing.B) {
	storetest.BenchmarkCreateImage(b, openTest(b, filepath.Join(b.TempDir(), "imaged.db")))
}
