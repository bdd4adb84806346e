package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/storetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// databaseURL is the server the tests use, from IMAGED_TEST_DATABASE_URL
// (scripts/start-postgres.sh starts one and prints it). Without it the tests
// that need a server skip, unless IMAGED_TEST_REQUIRE_BACKENDS=1.
func databaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("IMAGED_TEST_DATABASE_URL")
	if u == "" {
		const msg = "IMAGED_TEST_DATABASE_URL is not set; start a server with: " +
			`eval "$(scripts/start-postgres.sh)"`
		if os.Getenv("IMAGED_TEST_REQUIRE_BACKENDS") == "1" {
			t.Fatal(msg + " (IMAGED_TEST_REQUIRE_BACKENDS=1)")
		}
		t.Skip(msg)
	}
	return u
}

// freshSchema creates an empty schema, dropped when t ends, and returns a URL
// whose sessions work in it, so that tests never see one another's rows.
func freshSchema(t testing.TB) string {
	t.Helper()
	base := databaseURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	admin(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { admin(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	return withParam(t, base, "search_path", schema)
}

// admin runs one statement on a connection of its own.
func admin(t testing.TB, dbURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withParam returns dbURL with a session setting added.
func withParam(t testing.TB, dbURL, key, value string) string {
	t.Helper()
	if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
		return dbURL + " " + key + "=" + value // keyword/value form
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("IMAGED_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens a DB, closed when t ends.
func open(t testing.TB, cfg Config) *DB {
	t.Helper()
	db, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestConformance(t *testing.T) {
	databaseURL(t)
	storetest.Test(t, func(t *testing.T) storetest.Stores {
		db := open(t, Config{URL: freshSchema(t)})
		return storetest.Stores{Images: db, Idempotency: db, Quota: db, Jobs: db, Webhooks: db}
	})
}

// Replicas that start at once on a new database all come up, and each
// migration runs once.
func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	u := freshSchema(t)
	const replicas = 4
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		dbs   [replicas]*DB
		errs  [replicas]error
	)
	for i := range replicas {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = Open(context.Background(), Config{URL: u, MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: Open: %v", i, errs[i])
			continue
		}
		t.Cleanup(dbs[i].Close)
	}
	if t.Failed() {
		return
	}

	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := dbs[0]
	applied := func() map[int]int {
		t.Helper()
		rows, err := db.pool.Query(context.Background(), `SELECT version, count(*) FROM schema_migrations GROUP BY version`)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]int{}
		for rows.Next() {
			var v, n int
			if err := rows.Scan(&v, &n); err != nil {
				t.Fatal(err)
			}
			got[v] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	check := func(when string) {
		t.Helper()
		got := applied()
		if len(got) != len(ms) {
			t.Errorf("%s: %d migrations recorded, want %d: %v", when, len(got), len(ms), got)
		}
		for _, m := range ms {
			if got[m.version] != 1 {
				t.Errorf("%s: migration %s recorded %d times, want 1", when, m.name, got[m.version])
			}
		}
	}
	check("after concurrent Open")

	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	check("after Migrate again")

	// Every replica works on the same tables.
	img := newImage("alice")
	if err := dbs[1].CreateImage(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[3].FindImage(context.Background(), "alice", img.ID); err != nil {
		t.Errorf("another replica's image: %v", err)
	}
}

func newImage(owner string) *imaged.Image {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &imaged.Image{
		ID: imaged.NewID(), Owner: owner, OriginalFilename: "a.png", MediaType: "image/png",
		Size: 10, Width: 1, Height: 1, SHA256: strings.Repeat("0", 64), BlobKey: imaged.NewBlobKey("png"),
		Source: imaged.SourceUpload, CreatedAt: now, UpdatedAt: now,
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts connections and never answers, like a server that
// hangs or a packet filter that drops the replies.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// A database that cannot be reached answers EUnavailable (a 503), within the
// connect timeout rather than hanging.
func TestOpenUnreachableIsUnavailable(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{"connection_refused", closedPort(t)},
		{"server_never_answers", silentServer(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db, err := Open(ctx, Config{
				URL:            "postgres://imaged:secret-password@" + tt.addr + "/imaged?sslmode=disable",
				ConnectTimeout: 300 * time.Millisecond,
			})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if got := imaged.ErrCode(err); got != imaged.EUnavailable {
				t.Errorf("error code %q (%v), want %q", got, err, imaged.EUnavailable)
			}
			if ctx.Err() != nil {
				t.Errorf("Open outlived its caller's context instead of giving up after ConnectTimeout")
			}
			if strings.Contains(err.Error(), "secret-password") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

// proxy forwards TCP connections to target until stopped, which cuts every
// connection at once, like a database host going down.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) stop() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A database that goes away after start-up answers EUnavailable, not
// EInternal, on every kind of operation, and Ping says so.
func TestServerGoneIsUnavailable(t *testing.T) {
	u := freshSchema(t)
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		t.Skip("needs IMAGED_TEST_DATABASE_URL as a postgres:// URL with a TCP host")
	}
	target := pu.Host
	if pu.Port() == "" {
		target = net.JoinHostPort(pu.Hostname(), "5432")
	}
	p := newProxy(t, target)
	pu.Host = p.l.Addr().String()
	db := open(t, Config{URL: pu.String(), ConnectTimeout: time.Second, QueryTimeout: 2 * time.Second})
	ctx := context.Background()
	img := newImage("alice")
	if err := db.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}

	p.stop()

	now := time.Now()
	ops := map[string]func() error{
		"Ping":      func() error { return db.Ping(ctx) },
		"FindImage": func() error { _, err := db.FindImage(ctx, "alice", img.ID); return err },
		"ListImages": func() error {
			_, err := db.ListImages(ctx, imaged.ImageFilter{Owner: "alice", PageSize: 10})
			return err
		},
		"CreateImage": func() error { return db.CreateImage(ctx, newImage("alice")) },
		"ReserveQuota": func() error {
			_, err := db.ReserveQuota(ctx, "alice", 1, imaged.QuotaLimits{Concurrent: 1}, now, now.Add(time.Minute))
			return err
		},
		"ReserveIdempotencyKey": func() error {
			_, err := db.ReserveIdempotencyKey(ctx, &imaged.IdempotencyRecord{
				Owner: "alice", Key: "k", RequestHash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			return err
		},
		"ClaimJob": func() error { _, err := db.ClaimJob(ctx, "w", now, now.Add(time.Minute)); return err },
	}
	for name, op := range ops {
		if err := op(); imaged.ErrCode(err) != imaged.EUnavailable {
			t.Errorf("%s: %v (%T), want %s", name, err, errors.Unwrap(err), imaged.EUnavailable)
		}
	}
}

// An operation that cannot finish within QueryTimeout, waiting for a lock or
// for a free connection, answers EUnavailable, and the store recovers.
func TestQueryTimeoutIsUnavailable(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	t.Run("waiting_for_a_lock", func(t *testing.T) {
		u := freshSchema(t)
		db := open(t, Config{URL: u, QueryTimeout: 200 * time.Millisecond})
		owner := "owner-" + imaged.NewID()
		holder, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close(ctx)
		// The lock ReserveQuota takes for this owner, held elsewhere.
		if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('imaged.quota.' || $1, 0))`, owner); err != nil {
			t.Fatal(err)
		}
		_, err = db.ReserveQuota(ctx, owner, 1, imaged.QuotaLimits{}, now, now.Add(time.Minute))
		if got := imaged.ErrCode(err); got != imaged.EUnavailable {
			t.Errorf("ReserveQuota behind a held lock: error code %q (%v), want %q", got, err, imaged.EUnavailable)
		}
		if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ReserveQuota(ctx, owner, 1, imaged.QuotaLimits{}, now, now.Add(time.Minute)); err != nil {
			t.Errorf("ReserveQuota once the lock is free: %v", err)
		}
	})
	t.Run("waiting_for_a_connection", func(t *testing.T) {
		db := open(t, Config{URL: freshSchema(t), MaxConns: 1, QueryTimeout: 200 * time.Millisecond})
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.FindImage(ctx, "alice", imaged.NewID())
		if got := imaged.ErrCode(err); got != imaged.EUnavailable {
			t.Errorf("FindImage with the pool exhausted: error code %q (%v), want %q", got, err, imaged.EUnavailable)
		}
		conn.Release()
		if _, err := db.FindImage(ctx, "alice", imaged.NewID()); imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("FindImage once a connection is free: %v, want not found", err)
		}
	})
}

// Malformed ids answer not found without asking the database: even a closed
// store answers them.
func TestMalformedIDsAskNothing(t *testing.T) {
	db := open(t, Config{URL: freshSchema(t)})
	db.Close()
	ctx := context.Background()
	for _, id := range []string{"", "x", "../etc/passwd", strings.ToUpper(imaged.NewID()), imaged.NewID() + "0"} {
		if _, err := db.FindImage(ctx, "alice", id); imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("FindImage(%q): %v, want %s", id, err, imaged.ENotFound)
		}
		if _, err := db.DeleteImage(ctx, "alice", id); imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("DeleteImage(%q): %v, want %s", id, err, imaged.ENotFound)
		}
		if _, err := db.FindJob(ctx, "alice", id); imaged.ErrCode(err) != imaged.EJobNotFound {
			t.Errorf("FindJob(%q): %v, want %s", id, err, imaged.EJobNotFound)
		}
	}
	for _, key := range []string{"", "../x", "A.png", ".png"} {
		if _, err := db.FindImageByBlobKey(ctx, key); imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("FindImageByBlobKey(%q): %v, want %s", key, err, imaged.ENotFound)
		}
	}
	// A well-formed id does ask, and the closed store fails: what the
	// answers above did not do.
	if _, err := db.FindImage(ctx, "alice", imaged.NewID()); err == nil || imaged.ErrCode(err) == imaged.ENotFound {
		t.Errorf("FindImage of a well-formed id on a closed store: %v, want a failure", err)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want imaged.ErrorCode
	}{
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), imaged.EUnavailable},
		{"admin_shutdown", &pgconn.PgError{Code: "57P01"}, imaged.EUnavailable},
		{"too_many_connections", &pgconn.PgError{Code: "53300"}, imaged.EUnavailable},
		{"connection_failure", &pgconn.PgError{Code: "08006"}, imaged.EUnavailable},
		{"statement_timeout", &pgconn.PgError{Code: "57014"}, imaged.EUnavailable},
		{"unexpected_eof", io.ErrUnexpectedEOF, imaged.EUnavailable},
		{"syntax_error", &pgconn.PgError{Code: "42601"}, imaged.EInternal},
		{"unique_violation", &pgconn.PgError{Code: "23505"}, imaged.EInternal},
		{"other", errors.New("boom"), imaged.EInternal},
		{"application_error", imaged.NotFound(), imaged.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := imaged.ErrCode(wrap(tt.err)); got != tt.want {
				t.Errorf("wrap(%v): code %q, want %q", tt.err, got, tt.want)
			}
		})
	}
	if got := imaged.ErrCode(wrapConflict(&pgconn.PgError{Code: "23505"}, "taken")); got != imaged.EConflict {
		t.Errorf("wrapConflict(unique violation): code %q, want %q", got, imaged.EConflict)
	}
}

// BenchmarkFindImage looks images up by id among 100,000 rows of 1,000 owners.
func BenchmarkFindImage(b *testing.B) {
	db := open(b, Config{URL: freshSchema(b)})
	ctx := context.Background()
	const n, owners = 100_000, 1_000
	ids := make([]string, n)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, n)
	for i := range n {
		ids[i] = imaged.NewID()
		at := base.Add(time.Duration(i) * time.Second)
		rows[i] = []any{ids[i], fmt.Sprintf("owner-%d", i%owners), fmt.Sprintf("image-%d.png", i), "image/png",
			int64(1000 + i), 640, 480, strings.Repeat("a", 64), imaged.NewBlobKey("png"), "upload", nil, at, at}
	}
	cols := strings.Split(strings.Join(strings.Fields(imageColumns), ""), ",")
	if _, err := db.pool.CopyFrom(ctx, pgx.Identifier{"images"}, cols, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE images`); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		img, err := db.FindImage(ctx, fmt.Sprintf("owner-%d", i%owners), ids[i])
		if err != nil || img.ID != ids[i] {
			b.Fatalf("FindImage(%s): %v", ids[i], err)
		}
		i = (i + 1) % n
	}
}
