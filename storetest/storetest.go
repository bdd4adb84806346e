// Package storetest is the conformance suite of the metadata stores: the
// contract of imaged.ImageStore, IdempotencyStore, QuotaStore and JobStore,
// written once and run unchanged against every implementation from that
// implementation's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Test(t, func(t *testing.T) storetest.Stores {
//			db := openFreshDatabase(t) // closed by t.Cleanup
//			return storetest.Stores{Images: db, Idempotency: db, Quota: db, Jobs: db}
//		})
//	}
//
// The suite never sleeps: every time that matters is passed explicitly or
// lies hours away from the wall clock.
//
// Beyond the interface comments, the suite pins down:
//   - listings are ordered by (CreatedAt, ID), IDs compared as Go strings
//     (byte order, which is also the order of UUIDs as 16 bytes); Next is the
//     (CreatedAt, ID) of the page's last image, nil when no image follows;
//   - Search folds Unicode case (as strings.ToLower does), not ASCII only;
//   - TotalItems follows every create and delete, refused ones and deletes
//     of another owner's image included, and is read with the page from one
//     snapshot: a page that holds every match has TotalItems images, even
//     while other callers create and delete;
//   - times come back in UTC, equal to the microsecond;
//   - a quota reservation weighs n images in the daily window until it is
//     finished, then the images FinishQuota charged; one exactly 24h old no
//     longer counts, so that retrying after RetryAfter succeeds;
//   - the daily RetryAfter is when enough of the oldest reservations leave
//     the window for the request to fit;
//   - ClaimJob sets UpdatedAt to now; FinishJob stores the job's UpdatedAt;
//   - ExtendJob and FinishJob of a job not running under that worker's name
//     (queued, finished, unknown, reclaimed) answer EConflict.
package storetest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// Stores are the stores under test. They may all be the same value.
type Stores struct {
	Images      imaged.ImageStore
	Idempotency imaged.IdempotencyStore
	Quota       imaged.QuotaStore
	Jobs        imaged.JobStore
	// Webhooks must share the database of Jobs, which queues deliveries.
	Webhooks imaged.WebhookStore
}

// Test runs the whole suite. open must return fresh, empty stores on every
// call and release them with t.Cleanup.
func Test(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("Images", func(t *testing.T) { testImages(t, open) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("Quota", func(t *testing.T) { testQuota(t, open) })
	t.Run("Jobs", func(t *testing.T) { testJobs(t, open) })
	t.Run("JobEvents", func(t *testing.T) { testJobEvents(t, open) })
	t.Run("Webhooks", func(t *testing.T) { testWebhooks(t, open) })
}

// t0 is the suite's fixed "now" where the wall clock does not matter: a
// time with microseconds, as callers truncate times to microseconds.
var t0 = time.Date(2025, 6, 1, 10, 0, 0, 123456000, time.UTC)

func ptr[T any](v T) *T { return &v }

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, err error, code imaged.ErrorCode, what string) {
	t.Helper()
	if got := imaged.ErrCode(err); got != code {
		t.Errorf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
}

// sameTime reports a mismatch between times that must be the same instant
// and come back in UTC.
func sameTime(field string, got, want time.Time) []string {
	var d []string
	if !got.Equal(want) {
		d = append(d, field+": got "+got.Format(time.RFC3339Nano)+", want "+want.Format(time.RFC3339Nano))
	}
	if !got.IsZero() && got.Location() != time.UTC {
		d = append(d, field+": location "+got.Location().String()+", want UTC")
	}
	return d
}

// jsonEqual reports whether a and b are the same JSON value (a store may
// reformat JSON, as PostgreSQL's jsonb does).
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

// report fails t with the listed differences of what.
func report(t *testing.T, what string, diffs []string) {
	t.Helper()
	if len(diffs) > 0 {
		t.Errorf("%s differs:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}
