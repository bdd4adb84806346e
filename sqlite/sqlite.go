// Package sqlite is the embedded, default metadata store: images, idempotency
// records, generation quota and generation jobs, all in one SQLite file.
//
// SQLite admits one writer at a time. A DB therefore holds two pools on the
// same file: a single write connection, which serialises every write of this
// process and starts its transactions with BEGIN IMMEDIATE (so that another
// process sharing the file waits on busy_timeout instead of failing half-way),
// and a pool of query-only connections that read concurrently thanks to the
// write-ahead log.
//
// The journal is WAL with synchronous=FULL: every commit is fsynced before it
// returns. NORMAL would only lose the last commits on power loss, but those
// commits are promises already made to clients (a 201 for an image whose bytes
// are durable in the blob store, an idempotency record, a charged quota), and
// one fsync per commit is small next to the upload it records.
//
// A file is served by one `imaged serve` process (the administration
// commands that open it never delete images), so the deletions made through
// a DB are all there are: it reports them (imaged.DeletionFeed), and the
// service caches lookups by blob key over it.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	_ imaged.ImageStore       = (*DB)(nil)
	_ imaged.IdempotencyStore = (*DB)(nil)
	_ imaged.QuotaStore       = (*DB)(nil)
	_ imaged.JobStore         = (*DB)(nil)
	_ imaged.Pinger           = (*DB)(nil)
)

// busyTimeout is how long a connection waits for a lock held by another
// process sharing the file before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// readMmapSize is how much of the database file each read connection maps
// into memory. Pages in the map are read without a system call and shared by
// every connection through the operating system's page cache, instead of
// being copied into each connection's private cache; pages still in the
// write-ahead log are read from it as before. Mapped pages count in the
// process's resident memory only while the kernel keeps them cached.
const readMmapSize = 256 << 20

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the metadata store on one SQLite file. It implements
// imaged.ImageStore, IdempotencyStore, QuotaStore, JobStore and Pinger, and is
// safe for concurrent use.
type DB struct {
	write *sql.DB // one connection: SQLite's single writer
	read  *sql.DB // query-only connections

	findImage          *sql.Stmt
	findImageByBlobKey *sql.Stmt

	deletedMu sync.Mutex
	onDeleted []func(*imaged.Image)
}

// Open opens (creating it if needed) the database file at path and brings its
// schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: invalid database path %q", path)
	}
	dsn := func(params ...string) string {
		q := url.Values{}
		q.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
		q.Set("_foreign_keys", "on")
		for i := 0; i+1 < len(params); i += 2 {
			q.Set(params[i], params[i+1])
		}
		return path + "?" + q.Encode()
	}
	// Journal mode is a property of the file, set once by the writer;
	// synchronous and the transaction lock matter to the writer only.
	write, err := sql.Open("sqlite", dsn("_journal_mode", "WAL", "_synchronous", "FULL", "_txlock", "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	db := &DB{write: write}
	// The write connection comes first: it creates the file and turns WAL
	// on before any reader opens it.
	if err := write.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, write); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}

	db.read, err = sql.Open("sqlite", dsn("_query_only", "on",
		"_pragma", "mmap_size="+strconv.Itoa(readMmapSize)))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)

	if db.findImage, err = db.read.PrepareContext(ctx,
		`SELECT `+imageColumns+` FROM images WHERE id = ? AND owner = ?`); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if db.findImageByBlobKey, err = db.read.PrepareContext(ctx,
		`SELECT `+imageColumns+` FROM images WHERE blob_key = ?`); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	return db, nil
}

// Close closes the database. It does not wait for transactions in progress
// beyond what database/sql does.
func (db *DB) Close() error {
	var errs []error
	for _, s := range []*sql.Stmt{db.findImage, db.findImageByBlobKey} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	for _, p := range []*sql.DB{db.read, db.write} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	return errors.Join(errs...)
}

// Ping reports whether the database file can be read.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// migration is one embedded migrations/NNNN_name.sql file.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %q is not named NNNN_name.sql", name)
		}
		b, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %q and %q share a version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, all in one immediate transaction, so that two processes
// opening the same new file cannot both apply them.
func migrate(ctx context.Context, write *sql.DB) (err error) {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	tx, err := write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	if len(ms) > 0 && current > ms[len(ms)-1].version {
		return fmt.Errorf("database schema version %d is newer than this program's %d", current, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, micros(time.Now())); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return tx.Commit()
}

// inTx runs fn in an immediate transaction on the write connection, which
// makes read-modify-write sequences atomic.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// micros is t as stored: microseconds since the epoch, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the stored form back as a UTC time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros stores the zero time as NULL.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// wrap adds context to a database error; application errors (*imaged.Error)
// pass unchanged and nil stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil // before e, which escapes: no allocation on success
	}
	var e *imaged.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY conflict.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
