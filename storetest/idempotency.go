package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

func testIdempotency(t *testing.T, open func(t *testing.T) Stores) {
	// The store has no clock parameter here: it may judge expiry by the
	// wall clock or by the new record's CreatedAt, so live records expire a
	// day after the wall clock and expired ones a day before it.
	now := time.Now().UTC().Truncate(time.Microsecond)
	record := func(owner, key, hash string) *imaged.IdempotencyRecord {
		return &imaged.IdempotencyRecord{Owner: owner, Key: key, RequestHash: hash, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	}
	reserve := func(t *testing.T, s imaged.IdempotencyStore, rec *imaged.IdempotencyRecord) *imaged.IdempotencyRecord {
		t.Helper()
		got, err := s.ReserveIdempotencyKey(t.Context(), rec)
		if err != nil {
			t.Fatalf("ReserveIdempotencyKey(%s, %s): %v", rec.Owner, rec.Key, err)
		}
		return got
	}
	reserveNew := func(t *testing.T, s imaged.IdempotencyStore, rec *imaged.IdempotencyRecord) {
		t.Helper()
		if got := reserve(t, s, rec); got != nil {
			t.Fatalf("ReserveIdempotencyKey(%s, %s) of a new key returned %+v, want nil", rec.Owner, rec.Key, got)
		}
	}
	reserveExisting := func(t *testing.T, s imaged.IdempotencyStore, rec, want *imaged.IdempotencyRecord) {
		t.Helper()
		got := reserve(t, s, rec)
		if got == nil {
			t.Fatalf("ReserveIdempotencyKey(%s, %s) of a reserved key returned nil", rec.Owner, rec.Key)
		}
		report(t, "existing record", diffRecord(got, want))
	}

	t.Run("reserve_new_key_returns_nil", func(t *testing.T) {
		s := open(t).Idempotency
		reserveNew(t, s, record("alice", "k1", "h1"))
		reserveNew(t, s, record("alice", "k2", "h1"))
	})

	t.Run("reserve_again_returns_running_record", func(t *testing.T) {
		s := open(t).Idempotency
		first := record("alice", "k1", "h1")
		reserveNew(t, s, first)
		retry := record("alice", "k1", "h2")
		retry.CreatedAt = now.Add(time.Minute)
		reserveExisting(t, s, retry, first)
		// The retry did not overwrite the first record.
		reserveExisting(t, s, record("alice", "k1", "h3"), first)
	})

	t.Run("reserve_after_complete_returns_answer", func(t *testing.T) {
		s := open(t).Idempotency
		first := record("alice", "k1", "h1")
		reserveNew(t, s, first)
		body := []byte(`{"data":{"id":"x","note":"é"}}`)
		if err := s.CompleteIdempotencyKey(t.Context(), "alice", "k1", 201, body); err != nil {
			t.Fatalf("CompleteIdempotencyKey: %v", err)
		}
		want := *first
		want.Completed, want.StatusCode, want.Response = true, 201, body
		reserveExisting(t, s, record("alice", "k1", "h2"), &want)
	})

	t.Run("release_then_reserve_succeeds", func(t *testing.T) {
		s := open(t).Idempotency
		reserveNew(t, s, record("alice", "k1", "h1"))
		if err := s.ReleaseIdempotencyKey(t.Context(), "alice", "k1"); err != nil {
			t.Fatalf("ReleaseIdempotencyKey: %v", err)
		}
		second := record("alice", "k1", "h2")
		reserveNew(t, s, second)
		reserveExisting(t, s, record("alice", "k1", "h3"), second)
	})

	t.Run("expired_record_is_replaced", func(t *testing.T) {
		for _, completed := range []bool{false, true} {
			t.Run(fmt.Sprintf("completed=%v", completed), func(t *testing.T) {
				s := open(t).Idempotency
				old := record("alice", "k1", "h1")
				old.CreatedAt, old.ExpiresAt = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
				reserveNew(t, s, old)
				if completed {
					if err := s.CompleteIdempotencyKey(t.Context(), "alice", "k1", 200, []byte(`{}`)); err != nil {
						t.Fatalf("CompleteIdempotencyKey: %v", err)
					}
				}
				fresh := record("alice", "k1", "h2")
				reserveNew(t, s, fresh)
				reserveExisting(t, s, record("alice", "k1", "h3"), fresh)
			})
		}
	})

	t.Run("keys_are_scoped_per_owner", func(t *testing.T) {
		s := open(t).Idempotency
		alice := record("alice", "same", "h1")
		reserveNew(t, s, alice)
		bob := record("bob", "same", "h2")
		reserveNew(t, s, bob)
		if err := s.CompleteIdempotencyKey(t.Context(), "bob", "same", 202, []byte(`{"bob":true}`)); err != nil {
			t.Fatalf("CompleteIdempotencyKey: %v", err)
		}
		reserveExisting(t, s, record("alice", "same", "h3"), alice)
		if err := s.ReleaseIdempotencyKey(t.Context(), "alice", "same"); err != nil {
			t.Fatalf("ReleaseIdempotencyKey: %v", err)
		}
		wantBob := *bob
		wantBob.Completed, wantBob.StatusCode, wantBob.Response = true, 202, []byte(`{"bob":true}`)
		reserveExisting(t, s, record("bob", "same", "h4"), &wantBob)
	})

	t.Run("concurrent_reservations_one_wins", func(t *testing.T) {
		s := open(t).Idempotency
		const n = 8
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			existing [n]*imaged.IdempotencyRecord
			errs     [n]error
		)
		for i := range n {
			wg.Go(func() {
				<-start
				existing[i], errs[i] = s.ReserveIdempotencyKey(t.Context(), record("alice", "race", fmt.Sprintf("h%d", i)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range n {
			switch {
			case errs[i] != nil:
				t.Errorf("reservation %d: %v", i, errs[i])
			case existing[i] == nil && winner >= 0:
				t.Errorf("reservations %d and %d both won", winner, i)
			case existing[i] == nil:
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no reservation won")
		}
		for i, e := range existing {
			if e != nil && e.RequestHash != fmt.Sprintf("h%d", winner) {
				t.Errorf("reservation %d saw request hash %q, want the winner's h%d", i, e.RequestHash, winner)
			}
		}
	})
}

func diffRecord(got, want *imaged.IdempotencyRecord) []string {
	var d []string
	f := func(name string, g, w any) {
		if g != w {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	f("Owner", got.Owner, want.Owner)
	f("Key", got.Key, want.Key)
	f("RequestHash", got.RequestHash, want.RequestHash)
	f("Completed", got.Completed, want.Completed)
	f("StatusCode", got.StatusCode, want.StatusCode)
	if !bytes.Equal(got.Response, want.Response) {
		d = append(d, fmt.Sprintf("Response: got %q, want %q", got.Response, want.Response))
	}
	d = append(d, sameTime("CreatedAt", got.CreatedAt, want.CreatedAt)...)
	d = append(d, sameTime("ExpiresAt", got.ExpiresAt, want.ExpiresAt)...)
	return d
}
