// Package postgres stores the images service's metadata, idempotency
// records, generation quota and jobs in PostgreSQL, so that any number of
// stateless replicas share them. It implements imaged.ImageStore,
// imaged.IdempotencyStore, imaged.QuotaStore and imaged.JobStore and passes
// the storetest conformance suite, like the sqlite package.
//
// Open applies the embedded schema migrations under an advisory lock, so
// replicas may start at once. Every operation is bounded by
// Config.QueryTimeout; a database that is down, unreachable or too slow
// answers imaged.Unavailable, which the HTTP edge turns into a 503.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for Config.
const (
	DefaultMaxConns       = 10
	DefaultConnectTimeout = 5 * time.Second
	DefaultQueryTimeout   = 5 * time.Second
)

// Config says where the database is and how hard to use it.
type Config struct {
	// URL is a PostgreSQL connection string, such as
	// postgres://user:pass@host:5432/db?sslmode=disable. Parameters the
	// driver does not know (search_path, application_name...) are sent to
	// the server as session settings.
	URL string
	// MaxConns bounds the pool (DefaultMaxConns if 0); MinConns are kept
	// open even when idle.
	MaxConns int32
	MinConns int32
	// ConnectTimeout bounds each new connection (DefaultConnectTimeout if
	// 0); QueryTimeout bounds each operation, including the wait for a free
	// connection (DefaultQueryTimeout if 0).
	ConnectTimeout time.Duration
	QueryTimeout   time.Duration
}

// DB is a pool of connections to one PostgreSQL database. It is safe for
// concurrent use.
type DB struct {
	pool         *pgxpool.Pool
	queryTimeout time.Duration
	deletions    *deletions
}

var (
	_ imaged.ImageStore       = (*DB)(nil)
	_ imaged.IdempotencyStore = (*DB)(nil)
	_ imaged.QuotaStore       = (*DB)(nil)
	_ imaged.JobStore         = (*DB)(nil)
	_ imaged.Pinger           = (*DB)(nil)
	_ imaged.DeletionFeed     = (*DB)(nil)
)

// Open connects to the database of cfg.URL and brings its schema up to date.
// A database that cannot be reached answers imaged.Unavailable.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MinConns < 0 || cfg.MinConns > cfg.MaxConns {
		return nil, fmt.Errorf("postgres: MinConns %d is not between 0 and MaxConns %d", cfg.MinConns, cfg.MaxConns)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// The error may quote the URL, password included: keep it out.
		return nil, errors.New("postgres: the database URL is malformed")
	}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = cfg.MinConns
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool, queryTimeout: cfg.QueryTimeout}
	if err := db.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	var schema string
	sctx, cancel := db.bound(ctx)
	defer cancel()
	if err := pool.QueryRow(sctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, wrap(err)
	}
	db.deletions = newDeletions(schema)
	return db, nil
}

// Close stops listening for deletions and closes every connection;
// operations in flight fail.
func (db *DB) Close() {
	db.deletions.stop()
	db.pool.Close()
}

// Ping checks that the database answers; imaged.Unavailable if it does not.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	return wrap(db.pool.Ping(ctx))
}

// bound limits one operation to the configured QueryTimeout.
func (db *DB) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.queryTimeout)
}

// inTx runs fn in a transaction, committing if it returns nil.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return wrap(err)
	}
	return wrap(tx.Commit(ctx))
}

// wrap turns a driver error into what the domain expects: imaged errors pass
// through, a database that is down, unreachable, restarting or too slow
// becomes imaged.Unavailable, and anything else is an internal error whose detail is only logged.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var ie *imaged.Error
	if errors.As(err, &ie) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		// The caller gave up; nobody is waiting for a better answer.
		return fmt.Errorf("postgres: %w", err)
	}
	if unavailable(err) {
		return imaged.Unavailable("database", err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// wrapConflict is wrap, except that a unique violation answers EConflict
// with msg.
func wrapConflict(err error, msg string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return &imaged.Error{Code: imaged.EConflict, Message: msg, Err: err}
	}
	return wrap(err)
}

func unavailable(err error) bool {
	var (
		ce *pgconn.ConnectError
		ne net.Error
		pe *pgconn.PgError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true
	case errors.Is(err, pgconn.ErrConnClosed), pgconn.SafeToRetry(err):
		// A pooled connection that broke, or a failure before anything
		// was sent.
		return true
	case errors.As(err, &ce), errors.As(err, &ne):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &pe) && len(pe.Code) == 5:
		switch pe.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources: too many connections, disk full
			"40": // serialization failure, deadlock: retrying helps
			return true
		}
		switch pe.Code {
		case "57014", // query_canceled (statement_timeout)
			"57P01", "57P02", "57P03", // shutting down, crashed, starting up
			"55P03": // lock_not_available (lock_timeout)
			return true
		}
	}
	return false
}

// utc returns t in UTC, and the zero time for the zero time.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// stamp returns t as stored: UTC with microsecond precision, or the
// truncated current time when t is zero.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}
