package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
// DeleteImage then waits (up to deletionAckWait) until every replica that
// was listening has acknowledged it: each listener, once it has reported a
// deletion (so its cache has forgotten the image), answers with a
// notification on the schema's acknowledgement channel. The replicas
// listening are the sessions named "imaged <channel> <origin>"
// in pg_stat_activity, counted before the deletion. So when DeleteImage
// returns, every replica that was listening has forgotten the image, unless
// it failed to answer within deletionAckWait (logged); a replica whose
// listening connection is down does not answer from its cache at all, and
// one whose connection went quiet stops within staleAfter (below).
//
// A listening connection can also go quiet without failing (a frozen
// server, a network partition that TCP has not noticed yet). So the
// listener asks the server "SELECT 1" whenever it has heard nothing for
// heartbeatEvery, which also flushes any notification sent before it, and
// the feed counts as live only while the server answered within
// staleAfter: a replica that cannot hear deletions stops answering from its
// cache within that time.

const (
	// deletionAckWait bounds how long DeleteImage waits for the replicas'
	// acknowledgements; past it a replica that has not answered is stale
	// (its heartbeat stops within staleAfter if it cannot hear).
	deletionAckWait = 2 * time.Second
	// listenRetryMax bounds the wait between two attempts to listen again.
	listenRetryMax = 5 * time.Second
	// heartbeatEvery, heartbeatTimeout and staleAfter: see above.
	heartbeatEvery   = 500 * time.Millisecond
	heartbeatTimeout = time.Second
	staleAfter       = 2 * time.Second
)

// deletions is the listening side of a DB.
type deletions struct {
	origin  string // this DB's, in its notifications
	channel string // the schema's notification channel
	acks    string // and its acknowledgement channel

	mu      sync.Mutex
	fns     []func(*imaged.Image)
	started bool
	waiting map[string]*ackWait // by image id: DeleteImage calls waiting for acknowledgements

	live      atomic.Bool
	heard     atomic.Int64  // when the server last answered, in Unix nanoseconds
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
	ch := channelFor(schema)
	return &deletions{origin: hex.EncodeToString(b[:]), channel: ch, acks: ch + "_ack",
		waiting: map[string]*ackWait{}, firstLive: make(chan struct{})}
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

// DeletionsLive reports whether the listening connection is up and the
// server answered it within staleAfter, so that every deletion is heard.
func (db *DB) DeletionsLive() bool {
	d := db.deletions
	return d.live.Load() && time.Since(time.Unix(0, d.heard.Load())) < staleAfter
}

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
	cc := db.pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = d.applicationName()
	conn, err := pgx.ConnectConfig(cctx, cc)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+pgx.Identifier{d.channel}.Sanitize()+"; LISTEN "+pgx.Identifier{d.acks}.Sanitize())
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
	d.heard.Store(time.Now().UnixNano())
	for {
		wctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// Quiet: make sure the server is still there.
			hctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
			_, err = conn.Exec(hctx, "SELECT 1")
			cancel()
			if err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			d.heard.Store(time.Now().UnixNano())
			continue
		}
		if err != nil {
			return err
		}
		d.heard.Store(time.Now().UnixNano())
		if n.Channel == d.acks {
			d.acknowledged(n.Payload)
			continue
		}
		origin, rest, _ := strings.Cut(n.Payload, " ")
		id, key, ok := strings.Cut(rest, " ")
		if !ok || !imaged.ValidID(id) {
			continue
		}
		if origin != d.origin { // this process's own were reported by DeleteImage
			d.report(&imaged.Image{ID: id, BlobKey: key})
		}
		// Forgotten here: tell the deleting replica.
		actx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
		_, err = conn.Exec(actx, "SELECT pg_notify($1, $2)", d.acks, origin+" "+id)
		cancel()
		if err != nil {
			return fmt.Errorf("acknowledging a deletion: %w", err)
		}
	}
}

// applicationName names the listening session in pg_stat_activity.
func (d *deletions) applicationName() string {
	return d.listenerPrefix() + d.origin
}

// listenerPrefix starts the application_name of every listener of the
// schema ("imaged imaged_deleted_<16 hex> <origin>": 55 bytes, within
// PostgreSQL's 63).
func (d *deletions) listenerPrefix() string { return "imaged " + d.channel + " " }

// ackWait is one DeleteImage waiting for acknowledgements.
type ackWait struct {
	want, got int
	done      chan struct{}
}

// expect registers a DeleteImage of id waiting for want acknowledgements,
// or returns nil when there is nobody to wait for.
func (d *deletions) expect(id string, want int) *ackWait {
	if want <= 0 {
		return nil
	}
	w := &ackWait{want: want, done: make(chan struct{})}
	d.mu.Lock()
	d.waiting[id] = w
	d.mu.Unlock()
	return w
}

// acknowledged counts an acknowledgement ("origin id") for this process.
func (d *deletions) acknowledged(payload string) {
	origin, id, ok := strings.Cut(payload, " ")
	if !ok || origin != d.origin {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.waiting[id]
	if !ok {
		return
	}
	if w.got++; w.got >= w.want {
		close(w.done)
		delete(d.waiting, id)
	}
}

// forget drops w (from expect).
func (d *deletions) forget(id string, w *ackWait) {
	if w == nil {
		return
	}
	d.mu.Lock()
	if d.waiting[id] == w {
		delete(d.waiting, id)
	}
	d.mu.Unlock()
}

// await waits for w (from expect) for deletionAckWait at most, and forgets
// it.
func (d *deletions) await(ctx context.Context, id string, w *ackWait) {
	if w == nil {
		return
	}
	defer d.forget(id, w)
	t := time.NewTimer(deletionAckWait)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		d.mu.Lock()
		got := w.got
		d.mu.Unlock()
		slog.Warn("postgres: not every replica acknowledged a deletion in time; those that did not may serve it from their cache until their heartbeat lapses",
			"id", id, "acknowledged", got, "listening", w.want, "waited", deletionAckWait)
	case <-ctx.Done():
	}
}
