package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
)

// Deletions reach every replica through LISTEN/NOTIFY: DeleteImage sends,
// in the statement that deletes, a notification on a channel of the
// database's current schema carrying the deleting process's origin, the
// image's id and its blob key; PostgreSQL delivers it to every listening
// session when the deletion commits. Each DB that is asked to report
// deletions (OnImageDeleted) keeps one connection of its own listening, and
// reports what it hears from other processes. While that connection is
// down, DeletionsLive is false (the images service then answers from the
// database, not its cache) and, once it listens again, everything is
// forgotten, since deletions may have been missed in between.
//
// A deletion made here is reported before DeleteImage returns, and
// DeleteImage also waits (up to deletionEchoWait) for its own notification
// to come back to this process: PostgreSQL signals every listener at the
// same commit, so by then the other replicas have been sent theirs too.

const (
	// deletionEchoWait bounds how long DeleteImage waits for its own
	// notification.
	deletionEchoWait = time.Second
	// listenRetryMax bounds the wait between two attempts to listen again.
	listenRetryMax = 5 * time.Second
)

// deletions is the listening side of a DB.
type deletions struct {
	origin  string // this DB's, in its notifications
	channel string // the schema's notification channel

	mu      sync.Mutex
	fns     []func(*imaged.Image)
	started bool
	echoes  map[string]chan struct{} // by image id: DeleteImage calls waiting for their notification

	live      atomic.Bool
	firstLive chan struct{} // closed when listening for the first time
	cancel    context.CancelFunc
	done      chan struct{}
}

// channelFor names the notification channel of schema: an identifier of at
// most 63 bytes whatever the schema's name.
func channelFor(schema string) string {
	sum := sha256.Sum256([]byte(schema))
	return "imaged_deleted_" + hex.EncodeToString(sum[:8])
}

func newDeletions(schema string) *deletions {
	var b [8]byte
	rand.Read(b[:])
	return &deletions{origin: hex.EncodeToString(b[:]), channel: channelFor(schema),
		echoes: map[string]chan struct{}{}, firstLive: make(chan struct{})}
}

// OnImageDeleted makes DB an imaged.DeletionFeed: fn hears of every image
// deleted in this schema, by this process (with the whole image, before
// DeleteImage returns) or by another (with its ID and BlobKey, as soon as
// the notification arrives). The first call starts listening, and waits
// for it (up to the query timeout), so that a replica starts serving with
// its feed up: until it is, DeleteImage cannot wait for its notification
// to reach the others.
func (db *DB) OnImageDeleted(fn func(*imaged.Image)) {
	d := db.deletions
	d.mu.Lock()
	d.fns = append(d.fns, fn)
	start := !d.started
	if start {
		d.started = true
		ctx, cancel := context.WithCancel(context.Background())
		d.cancel, d.done = cancel, make(chan struct{})
		go db.listen(ctx)
	}
	d.mu.Unlock()
	if start {
		t := time.NewTimer(db.queryTimeout)
		defer t.Stop()
		select {
		case <-d.firstLive:
		case <-t.C:
			slog.Warn("postgres: not listening for image deletions yet; caches stay off until it works", "after", db.queryTimeout)
		}
	}
}

// DeletionsLive reports whether the listening connection is up, so that
// every deletion is heard.
func (db *DB) DeletionsLive() bool { return db.deletions.live.Load() }

func (d *deletions) report(img *imaged.Image) {
	d.mu.Lock()
	fns := d.fns
	d.mu.Unlock()
	for _, fn := range fns {
		fn(img)
	}
}

// stop ends the listening, if it started.
func (d *deletions) stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// listen keeps a connection listening until ctx ends, reconnecting with a
// growing pause after a failure.
func (db *DB) listen(ctx context.Context) {
	d := db.deletions
	defer close(d.done)
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listenOnce(ctx)
		if d.live.Swap(false) {
			// Deletions may be missed until listening again.
			d.report(nil)
		}
		if ctx.Err() != nil {
			return
		}
		slog.Warn("postgres: listening for image deletions failed; caches are off until it works again", "err", err, "retry", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, listenRetryMax)
	}
}

// listenOnce connects, listens, and reports notifications until the
// connection fails or ctx ends.
func (db *DB) listenOnce(ctx context.Context) error {
	d := db.deletions
	cctx, cancel := db.bound(ctx)
	conn, err := pgx.ConnectConfig(cctx, db.pool.Config().ConnConfig.Copy())
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+pgx.Identifier{d.channel}.Sanitize())
	}
	cancel()
	if err != nil {
		if conn != nil {
			conn.Close(context.Background())
		}
		return err
	}
	defer conn.Close(context.Background())
	// Whatever was deleted before this point and not heard is forgotten,
	// then everything is heard.
	d.report(nil)
	if !d.live.Swap(true) {
		select {
		case <-d.firstLive:
		default:
			close(d.firstLive)
		}
	}
	slog.Debug("postgres: listening for image deletions", "channel", d.channel)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		origin, rest, _ := strings.Cut(n.Payload, " ")
		id, key, ok := strings.Cut(rest, " ")
		if !ok || !imaged.ValidID(id) {
			continue
		}
		if origin == d.origin {
			d.mu.Lock()
			if c, ok := d.echoes[id]; ok {
				close(c)
				delete(d.echoes, id)
			}
			d.mu.Unlock()
			continue // reported by DeleteImage already
		}
		d.report(&imaged.Image{ID: id, BlobKey: key})
	}
}

// expectEcho registers a DeleteImage of id waiting for its notification,
// when listening; it returns nil otherwise.
func (d *deletions) expectEcho(id string) chan struct{} {
	if !d.live.Load() {
		return nil
	}
	c := make(chan struct{})
	d.mu.Lock()
	d.echoes[id] = c
	d.mu.Unlock()
	return c
}

// forgetEcho drops c (from expectEcho) after a failed deletion.
func (d *deletions) forgetEcho(id string, c chan struct{}) {
	if c == nil {
		return
	}
	d.mu.Lock()
	if d.echoes[id] == c {
		delete(d.echoes, id)
	}
	d.mu.Unlock()
}

// awaitEcho waits for c (from expectEcho) for deletionEchoWait at most, and
// forgets it.
func (d *deletions) awaitEcho(ctx context.Context, id string, c chan struct{}) {
	if c == nil {
		return
	}
	t := time.NewTimer(deletionEchoWait)
	defer t.Stop()
	select {
	case <-c:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	d.forgetEcho(id, c)
}
