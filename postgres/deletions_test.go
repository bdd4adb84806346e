package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// feedLog records what a DeletionFeed reports.
type feedLog struct {
	mu      sync.Mutex
	ids     []string
	resets  int
	changed chan struct{}
}

func listenTo(db *DB) *feedLog {
	l := &feedLog{changed: make(chan struct{}, 100)}
	db.OnImageDeleted(func(img *imaged.Image) {
		l.mu.Lock()
		if img == nil {
			l.resets++
		} else {
			l.ids = append(l.ids, img.ID)
		}
		l.mu.Unlock()
		select {
		case l.changed <- struct{}{}:
		default:
		}
	})
	return l
}

func (l *feedLog) snapshot() (ids []string, resets int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ids...), l.resets
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newTestImage(owner string) *imaged.Image {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &imaged.Image{ID: imaged.NewID(), Owner: owner, OriginalFilename: "a.png", MediaType: "image/png",
		Size: 1, Width: 1, Height: 1, SHA256: "00", BlobKey: imaged.NewBlobKey("png"),
		Source: imaged.SourceUpload, CreatedAt: now, UpdatedAt: now}
}

// Two replicas on one schema: a deletion through one has been reported by
// the other by the time DeleteImage returns; a replica of another schema
// hears nothing; a listening connection that breaks turns the feed off
// and, once it listens again, says to forget everything.
func TestDeletionFeedAcrossReplicas(t *testing.T) {
	u := freshSchema(t)
	a, b := open(t, Config{URL: u}), open(t, Config{URL: u})
	other := open(t, Config{URL: freshSchema(t)})
	ctx := context.Background()
	la, lb, lo := listenTo(a), listenTo(b), listenTo(other)
	for _, db := range []*DB{a, b, other} {
		waitFor(t, "the feed is live", db.DeletionsLive)
	}

	img := newTestImage("alice")
	if err := a.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteImage(ctx, "bob", img.ID); imaged.ErrCode(err) != imaged.ENotFound {
		t.Fatalf("DeleteImage by another owner = %v, want not found", err)
	}
	if _, err := a.DeleteImage(ctx, "alice", img.ID); err != nil {
		t.Fatal(err)
	}
	// a reported it before returning, and waited until b had reported it
	// too (b's acknowledgement).
	if ids, _ := la.snapshot(); len(ids) != 1 || ids[0] != img.ID {
		t.Errorf("the deleting replica reported %v, want [%s] once", ids, img.ID)
	}
	if ids, _ := lb.snapshot(); len(ids) != 1 || ids[0] != img.ID {
		t.Errorf("when DeleteImage returned, the other replica had reported %v, want [%s]", ids, img.ID)
	}
	time.Sleep(100 * time.Millisecond)
	if ids, _ := lo.snapshot(); len(ids) != 0 {
		t.Errorf("a replica of another schema heard %v", ids)
	}

	t.Run("broken_listening_connection", func(t *testing.T) {
		_, resets := lb.snapshot()
		// Terminate b's listening session from outside, as a database
		// restart or a network failure would.
		admin(t, u, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = '`+b.deletions.applicationName()+`'`)
		waitFor(t, "the feed says to forget everything", func() bool { _, r := lb.snapshot(); return r >= resets+1 })
		waitFor(t, "the feed is live again", b.DeletionsLive)
		if _, r := lb.snapshot(); r < resets+2 {
			t.Errorf("%d resets after listening again, want %d (one when it broke, one when it listens again)", r-resets, 2)
		}
		img := newTestImage("alice")
		if err := b.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DeleteImage(ctx, "alice", img.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the replica hears deletions again", func() bool { ids, _ := lb.snapshot(); return len(ids) == 2 && ids[1] == img.ID })
	})
}
