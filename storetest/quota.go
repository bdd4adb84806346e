package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

func testQuota(t *testing.T, open func(t *testing.T) Stores) {
	lease := 10 * time.Minute
	reserve := func(t *testing.T, s imaged.QuotaStore, owner string, n int, limits imaged.QuotaLimits, now time.Time) string {
		t.Helper()
		r, err := s.ReserveQuota(t.Context(), owner, n, limits, now, now.Add(lease))
		if err != nil {
			t.Fatalf("ReserveQuota(%s, %d, %+v) at %v: %v", owner, n, limits, now.Sub(t0), err)
		}
		if r == "" {
			t.Fatalf("ReserveQuota(%s, %d) returned an empty reservation", owner, n)
		}
		return r
	}
	finish := func(t *testing.T, s imaged.QuotaStore, r string, images int) {
		t.Helper()
		if err := s.FinishQuota(t.Context(), r, images); err != nil {
			t.Fatalf("FinishQuota(%d): %v", images, err)
		}
	}
	// refused checks that the reservation is refused and returns RetryAfter.
	refused := func(t *testing.T, s imaged.QuotaStore, owner string, n int, limits imaged.QuotaLimits, now time.Time) time.Duration {
		t.Helper()
		_, err := s.ReserveQuota(t.Context(), owner, n, limits, now, now.Add(lease))
		var e *imaged.Error
		if !errors.As(err, &e) || e.Code != imaged.EQuotaExceeded {
			t.Fatalf("ReserveQuota(%s, %d, %+v) at %v: err %v, want %s", owner, n, limits, now.Sub(t0), err, imaged.EQuotaExceeded)
		}
		if e.RetryAfter <= 0 || e.RetryAfter > 24*time.Hour {
			t.Errorf("RetryAfter %v, want within (0, 24h]", e.RetryAfter)
		}
		return e.RetryAfter
	}
	perDay := func(n int) imaged.QuotaLimits { return imaged.QuotaLimits{ImagesPerDay: n} }

	t.Run("images_per_day_allows_up_to_limit", func(t *testing.T) {
		s := open(t).Quota
		limits := perDay(5)
		finish(t, s, reserve(t, s, "alice", 3, limits, t0), 3)
		finish(t, s, reserve(t, s, "alice", 2, limits, t0.Add(time.Hour)), 2)
		refused(t, s, "alice", 1, limits, t0.Add(2*time.Hour))
	})

	t.Run("images_per_day_retry_after_oldest_charge_leaves_window", func(t *testing.T) {
		s := open(t).Quota
		limits := perDay(5)
		finish(t, s, reserve(t, s, "alice", 3, limits, t0), 3)
		finish(t, s, reserve(t, s, "alice", 2, limits, t0.Add(time.Hour)), 2)
		if got := refused(t, s, "alice", 2, limits, t0.Add(2*time.Hour)); got != 22*time.Hour {
			t.Errorf("RetryAfter %v, want 22h: when the charge made at t0 leaves the window", got)
		}
		// One image before the window slides is still refused...
		refused(t, s, "alice", 1, limits, t0.Add(24*time.Hour-time.Second))
		// ...and fits once the oldest reservation is 24h old.
		reserve(t, s, "alice", 3, limits, t0.Add(24*time.Hour))
	})

	t.Run("images_per_day_counts_charged_images_only", func(t *testing.T) {
		s := open(t).Quota
		limits := perDay(4)
		// A generation of 4 that stored only 1 image is charged 1.
		finish(t, s, reserve(t, s, "alice", 4, limits, t0), 1)
		finish(t, s, reserve(t, s, "alice", 3, limits, t0.Add(time.Minute)), 3)
		refused(t, s, "alice", 1, limits, t0.Add(2*time.Minute))
	})

	t.Run("finish_with_zero_images_charges_nothing", func(t *testing.T) {
		s := open(t).Quota
		limits := perDay(2)
		for i := range 5 {
			finish(t, s, reserve(t, s, "alice", 2, limits, t0.Add(time.Duration(i)*time.Minute)), 0)
		}
		reserve(t, s, "alice", 2, limits, t0.Add(time.Hour))
	})

	t.Run("running_reservation_counts_against_daily_limit", func(t *testing.T) {
		s := open(t).Quota
		limits := perDay(5)
		r := reserve(t, s, "alice", 4, limits, t0)
		refused(t, s, "alice", 2, limits, t0.Add(time.Minute))
		reserve(t, s, "alice", 1, limits, t0.Add(time.Minute))
		finish(t, s, r, 0)
		reserve(t, s, "alice", 4, limits, t0.Add(2*time.Minute))
	})

	t.Run("reservations_older_than_24h_stop_counting", func(t *testing.T) {
		s := open(t).Quota
		limits := perDay(3)
		finish(t, s, reserve(t, s, "alice", 3, limits, t0), 3)
		refused(t, s, "alice", 1, limits, t0.Add(23*time.Hour))
		finish(t, s, reserve(t, s, "alice", 3, limits, t0.Add(25*time.Hour)), 3)
		refused(t, s, "alice", 1, limits, t0.Add(26*time.Hour))
		reserve(t, s, "alice", 3, limits, t0.Add(49*time.Hour))
	})

	t.Run("concurrent_limit_counts_running_reservations", func(t *testing.T) {
		s := open(t).Quota
		limits := imaged.QuotaLimits{Concurrent: 2}
		r1 := reserve(t, s, "alice", 1, limits, t0)
		reserve(t, s, "alice", 1, limits, t0.Add(time.Minute))
		got := refused(t, s, "alice", 1, limits, t0.Add(2*time.Minute))
		if got > lease {
			t.Errorf("RetryAfter %v, want at most the %v until the first lease ends", got, lease)
		}
		// A finished reservation no longer runs.
		finish(t, s, r1, 1)
		reserve(t, s, "alice", 1, limits, t0.Add(3*time.Minute))
		refused(t, s, "alice", 1, limits, t0.Add(4*time.Minute))
	})

	t.Run("concurrent_limit_ignores_expired_leases", func(t *testing.T) {
		s := open(t).Quota
		limits := imaged.QuotaLimits{Concurrent: 1}
		reserve(t, s, "alice", 1, limits, t0) // never finished: its replica died
		refused(t, s, "alice", 1, limits, t0.Add(lease-time.Microsecond))
		reserve(t, s, "alice", 1, limits, t0.Add(lease))
	})

	t.Run("limits_are_per_owner", func(t *testing.T) {
		s := open(t).Quota
		limits := imaged.QuotaLimits{ImagesPerDay: 2, Concurrent: 1}
		reserve(t, s, "alice", 2, limits, t0)
		refused(t, s, "alice", 1, limits, t0)
		reserve(t, s, "bob", 2, limits, t0)
	})

	t.Run("zero_limits_are_unlimited", func(t *testing.T) {
		s := open(t).Quota
		seen := map[string]bool{}
		for i := range 20 {
			r := reserve(t, s, "alice", 100, imaged.QuotaLimits{}, t0.Add(time.Duration(i)*time.Second))
			if seen[r] {
				t.Fatalf("reservation %q returned twice", r)
			}
			seen[r] = true
			if i%2 == 0 {
				finish(t, s, r, 100)
			}
		}
		// Each zero limit is unlimited on its own.
		reserve(t, s, "alice", 100, imaged.QuotaLimits{Concurrent: 100}, t0.Add(time.Minute))
		reserve(t, s, "alice", 1, imaged.QuotaLimits{ImagesPerDay: 1}, t0.Add(25*time.Hour))
	})

	t.Run("concurrent_reserves_never_exceed_limit", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			limits imaged.QuotaLimits
		}{
			{"concurrent", imaged.QuotaLimits{Concurrent: 5}},
			{"images_per_day", imaged.QuotaLimits{ImagesPerDay: 5}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t).Quota
				const n = 20
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					errs  [n]error
				)
				for i := range n {
					wg.Go(func() {
						<-start
						_, errs[i] = s.ReserveQuota(t.Context(), "alice", 1, tc.limits, t0, t0.Add(lease))
					})
				}
				close(start)
				wg.Wait()
				granted := 0
				for i, err := range errs {
					switch imaged.ErrCode(err) {
					case "":
						granted++
					case imaged.EQuotaExceeded:
					default:
						t.Errorf("reservation %d: %v", i, err)
					}
				}
				if granted != 5 {
					t.Errorf("%d of %d reservations granted against a limit of 5", granted, n)
				}
			})
		}
	})
}
