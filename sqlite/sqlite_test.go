package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/storetest"
)

// openTest opens a fresh database file that t's cleanup closes.
func openTest(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.Test(t, func(t *testing.T) storetest.Stores {
		db := openTest(t, filepath.Join(t.TempDir(), "imaged.db"))
		return storetest.Stores{Images: db, Idempotency: db, Quota: db, Jobs: db, Webhooks: db}
	})
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "imaged.db")
	t0 := time.Date(2025, 6, 1, 10, 0, 0, 123456000, time.UTC)
	img := &imaged.Image{ID: imaged.NewID(), Owner: "alice", OriginalFilename: "a.png", MediaType: "image/png",
		Size: 1, Width: 1, Height: 1, SHA256: "00", BlobKey: imaged.NewBlobKey("png"),
		Source: imaged.SourceUpload, CreatedAt: t0, UpdatedAt: t0}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.CreateImage(ctx, img); err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	first := appliedMigrations(t, db)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(ms) || len(ms) == 0 {
		t.Fatalf("%d migrations recorded, %d embedded", len(first), len(ms))
	}

	for i := range 2 {
		db := openTest(t, path)
		if got := appliedMigrations(t, db); strings.Join(got, ",") != strings.Join(first, ",") {
			t.Errorf("reopen %d: migrations %v, want %v", i, got, first)
		}
		got, err := db.FindImage(ctx, "alice", img.ID)
		if err != nil {
			t.Fatalf("reopen %d: FindImage: %v", i, err)
		}
		if got.BlobKey != img.BlobKey || !got.CreatedAt.Equal(t0) {
			t.Errorf("reopen %d: found %+v", i, got)
		}
		if err := db.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	}
}

func appliedMigrations(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("schema_migrations: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			v       int
			name    string
			applied int64
		)
		if err := rows.Scan(&v, &name, &applied); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s@%d", v, name, applied))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPragmas(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "imaged.db"))
	for _, tc := range []struct {
		pool   string
		pragma string
		want   string
	}{
		{"write", "journal_mode", "wal"},
		{"write", "synchronous", "2"}, // FULL
		{"write", "foreign_keys", "1"},
		{"write", "busy_timeout", "10000"},
		{"read", "journal_mode", "wal"},
		{"read", "busy_timeout", "10000"},
		{"read", "query_only", "1"},
	} {
		pool := db.write
		if tc.pool == "read" {
			pool = db.read
		}
		var got string
		if err := pool.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("%s connection: PRAGMA %s = %q, want %q", tc.pool, tc.pragma, got, tc.want)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imaged.db")
	db := openTest(t, path)
	if _, err := db.write.ExecContext(t.Context(), `INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if db2, err := Open(t.Context(), path); err == nil {
		db2.Close()
		t.Fatal("Open accepted a schema newer than its migrations")
	}
}

// TestQueryPlansUseIndexes guards the constant cost of the hot queries: no
// full scan of a table and no sort of its rows.
func TestQueryPlansUseIndexes(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "imaged.db"))
	cursor := &imaged.Cursor{CreatedAt: time.Now(), ID: imaged.NewID()}
	type query struct {
		name string
		sql  string
		args []any
		// limited is a LIMIT 1 query whose plan may walk an index in
		// order and sort the few rows found; it must not scan a table.
		limited bool
		// search is a full-text search: the trigram index finds the
		// matches (a MATCH on images_search, whose plan line reads SCAN),
		// each image is read by rowid, and the matches alone are sorted.
		search bool
	}
	qs := []query{
		{"find image", `SELECT ` + imageColumns + ` FROM images WHERE id = ? AND owner = ?`, []any{"a", "b"}, false, false},
		{"find image by blob key", `SELECT ` + imageColumns + ` FROM images WHERE blob_key = ?`, []any{"a"}, false, false},
		{"find job", findJobSQL, []any{"a", "b"}, false, false},
		{"claim job", claimJobSQL, []any{int64(0)}, true, false},
		{"running quota", runningQuotaSQL, []any{"a", int64(0)}, false, false},
		{"daily quota", dailyQuotaSQL, []any{"a", int64(0)}, false, false},
	}
	for _, f := range []imaged.ImageFilter{
		{Owner: "alice", Sort: imaged.SortDesc, Cursor: cursor},
		{Owner: "alice", Sort: imaged.SortAsc, Cursor: cursor},
		{Owner: "alice", Sort: imaged.SortDesc, Page: 3},
		{Owner: "alice", Sort: imaged.SortAsc, Source: imaged.SourceGeneration, Cursor: cursor},
		{Owner: "alice", Sort: imaged.SortDesc, Search: "x_%", Cursor: cursor},
		{Owner: "alice", Sort: imaged.SortAsc, Search: "lighthouse", Source: imaged.SourceGeneration, Page: 2},
	} {
		count, page, countArgs, pageArgs := listQuery(f, 20)
		name := fmt.Sprintf("list sort=%s source=%q search=%q cursor=%v", f.Sort, f.Source, f.Search, f.Cursor != nil)
		s := f.Search != ""
		qs = append(qs, query{name + " page", page, pageArgs, false, s}, query{name + " count", count, countArgs, false, s})
	}
	for _, q := range qs {
		rows, err := db.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if q.search {
			want := []string{"SCAN images_search VIRTUAL TABLE INDEX 0:M", "SEARCH images USING INTEGER PRIMARY KEY (rowid=?)"}
			if len(plan) < 2 || !strings.HasPrefix(plan[0], want[0]) || plan[1] != want[1] ||
				(len(plan) > 2 && (len(plan) > 3 || !strings.Contains(plan[2], "TEMP B-TREE FOR ORDER BY"))) {
				t.Errorf("%s: plan %q, want %q then at most a sort", q.name, strings.Join(plan, "; "), want)
			}
			continue
		}
		for _, line := range plan {
			// SCAN is a walk of a whole table or index; a temporary b-tree
			// is a sort of every matching row.
			bad := strings.HasPrefix(line, "SCAN") || strings.Contains(line, "TEMP B-TREE")
			if q.limited {
				bad = strings.HasPrefix(line, "SCAN jobs") && !strings.Contains(line, "INDEX")
			}
			if bad {
				t.Errorf("%s: plan %q", q.name, strings.Join(plan, "; "))
				break
			}
		}
	}
}

// BenchmarkFindImage looks up random images of a table of 100,000.
func BenchmarkFindImage(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	db := openTest(b, filepath.Join(b.TempDir(), "imaged.db"))
	imgs := seedImages(b, db, n, 10)

	b.Run("by_id", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			img := imgs[r.IntN(n)]
			if _, err := db.FindImage(ctx, img.Owner, img.ID); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(n, "images")
	})
	b.Run("by_blob_key", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := db.FindImageByBlobKey(ctx, imgs[r.IntN(n)].BlobKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("by_id_parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 2))
			for pb.Next() {
				img := imgs[r.IntN(n)]
				if _, err := db.FindImage(ctx, img.Owner, img.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// A page anywhere in an owner's 10,000 images; TotalItems is read from
	// image_counts, so the cost does not grow with the owner's images.
	b.Run("list_deep_cursor", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			img := imgs[r.IntN(n)]
			f := imaged.ImageFilter{Owner: img.Owner, PageSize: 20,
				Cursor: &imaged.Cursor{CreatedAt: img.CreatedAt, ID: img.ID}}
			if _, err := db.ListImages(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// seedImages inserts n images of the given number of owners in one
// transaction, every fourth one generated, the others uploaded.
func seedImages(b *testing.B, db *DB, n, owners int) []*imaged.Image {
	b.Helper()
	ctx := context.Background()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO images (id, owner, original_filename, filename_lower,
		media_type, size, width, height, sha256, blob_key, source, generation, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'image/png', 1000, 64, 64, '00', ?, ?, NULL, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	imgs := make([]*imaged.Image, n)
	for i := range imgs {
		img := &imaged.Image{ID: imaged.NewID(), Owner: fmt.Sprintf("owner-%d", i%owners),
			OriginalFilename: fmt.Sprintf("IMG_%06d.png", i), BlobKey: imaged.NewBlobKey("png"),
			Source: imaged.SourceUpload, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		if i%4 == 3 {
			img.Source = imaged.SourceGeneration
		}
		if _, err := stmt.ExecContext(ctx, img.ID, img.Owner, img.OriginalFilename, strings.ToLower(img.OriginalFilename),
			img.BlobKey, string(img.Source), micros(img.CreatedAt), micros(img.CreatedAt)); err != nil {
			b.Fatal(err)
		}
		imgs[i] = img
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return imgs
}
