package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
)

// ReserveQuota checks owner's limits at now and records a running reservation
// of n images until leaseUntil. Replicas reserving for one owner take turns
// on a transaction advisory lock keyed by the owner, so the check and the
// insert are atomic across the whole deployment, and owners do not wait on
// one another.
//
// Within the window a reservation weighs the images FinishQuota charged it,
// or n while it is not finished (whether or not its lease passed: a crashed
// generation may well have stored its images). A reservation exactly
// imaged.QuotaWindow old no longer counts.
func (db *DB) ReserveQuota(ctx context.Context, owner string, n int, limits imaged.QuotaLimits, now, leaseUntil time.Time) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("postgres: reserve quota: negative image count %d", n)
	}
	id := imaged.NewID()
	windowStart := now.Add(-imaged.QuotaWindow)
	ctx, cancel := db.bound(ctx)
	defer cancel()
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('imaged.quota.' || $1, 0))`, owner); err != nil {
			return err
		}
		// What can no longer count, neither as running nor in the window.
		if _, err := tx.Exec(ctx, `DELETE FROM quota_reservations
			WHERE owner = $1 AND created_at <= $2 AND (charged IS NOT NULL OR lease_until <= $3)`,
			owner, windowStart, now); err != nil {
			return err
		}
		if limits.Concurrent > 0 {
			var (
				running  int
				earliest *time.Time
			)
			if err := tx.QueryRow(ctx, `SELECT count(*), min(lease_until) FROM quota_reservations
				WHERE owner = $1 AND charged IS NULL AND lease_until > $2`, owner, now).
				Scan(&running, &earliest); err != nil {
				return err
			}
			if running >= limits.Concurrent {
				return imaged.QuotaExceeded(fmt.Sprintf("at most %d generations may run at once", limits.Concurrent),
					earliest.Sub(now))
			}
		}
		if limits.ImagesPerDay > 0 {
			if err := checkDaily(ctx, tx, owner, n, limits.ImagesPerDay, now); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO quota_reservations (id, owner, images, charged, created_at, lease_until)
			VALUES ($1, $2, $3, NULL, $4, $5)`, id, owner, n, now, leaseUntil)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// checkDaily refuses n more images if they would take owner over limit in the
// window ending at now (see imaged.CheckDailyQuota).
func checkDaily(ctx context.Context, tx pgx.Tx, owner string, n, limit int, now time.Time) error {
	rows, err := tx.Query(ctx, `SELECT created_at, coalesce(charged, images) FROM quota_reservations
		WHERE owner = $1 AND created_at > $2 ORDER BY created_at`, owner, now.Add(-imaged.QuotaWindow))
	if err != nil {
		return err
	}
	charges, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (imaged.QuotaCharge, error) {
		var c imaged.QuotaCharge
		err := r.Scan(&c.At, &c.Images)
		return c, err
	})
	if err != nil {
		return err
	}
	return imaged.CheckDailyQuota(charges, n, limit, now)
}

// FinishQuota charges a running reservation `images` images and ends it.
// Finishing an unknown or already finished reservation does nothing.
func (db *DB) FinishQuota(ctx context.Context, reservation string, images int) error {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `UPDATE quota_reservations SET charged = $2
		WHERE id = $1 AND charged IS NULL`, reservation, max(images, 0))
	return wrap(err)
}
