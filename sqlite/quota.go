package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/imaged/imaged"
)

const (
	// runningQuotaSQL counts owner's running reservations at now.
	runningQuotaSQL = `SELECT count(*), min(lease_until) FROM quota_reservations
		WHERE owner = ? AND charged IS NULL AND lease_until > ?`
	// dailyQuotaSQL lists the weight of owner's reservations in the window.
	dailyQuotaSQL = `SELECT created_at, coalesce(charged, images) FROM quota_reservations
		WHERE owner = ? AND created_at > ? ORDER BY created_at`
)

// ReserveQuota checks owner's limits at now and records a running reservation
// of n images until leaseUntil, in one immediate transaction.
//
// Within the window a reservation weighs the images FinishQuota charged it,
// or n while it is not finished (whether or not its lease passed: a crashed
// generation may well have stored its images). A reservation exactly
// imaged.QuotaWindow old no longer counts.
func (db *DB) ReserveQuota(ctx context.Context, owner string, n int, limits imaged.QuotaLimits, now, leaseUntil time.Time) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("sqlite: reserve quota: negative image count %d", n)
	}
	id := imaged.NewID()
	windowStart := micros(now.Add(-imaged.QuotaWindow))
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// What can no longer count, neither as running nor in the window.
		if _, err := tx.ExecContext(ctx, `DELETE FROM quota_reservations
			WHERE owner = ? AND created_at <= ? AND (charged IS NOT NULL OR lease_until <= ?)`,
			owner, windowStart, micros(now)); err != nil {
			return err
		}
		if limits.Concurrent > 0 {
			var (
				running  int
				earliest sql.NullInt64
			)
			if err := tx.QueryRowContext(ctx, runningQuotaSQL, owner, micros(now)).
				Scan(&running, &earliest); err != nil {
				return err
			}
			if running >= limits.Concurrent {
				return imaged.QuotaExceeded(fmt.Sprintf("at most %d generations may run at once", limits.Concurrent),
					fromMicros(earliest.Int64).Sub(now))
			}
		}
		if limits.ImagesPerDay > 0 {
			if err := checkDaily(ctx, tx, owner, n, limits.ImagesPerDay, now); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO quota_reservations (id, owner, images, charged, created_at, lease_until)
			VALUES (?, ?, ?, NULL, ?, ?)`, id, owner, n, micros(now), micros(leaseUntil))
		return err
	})
	if err != nil {
		return "", wrap("reserve quota", err)
	}
	return id, nil
}

// checkDaily refuses n more images if they would take owner over limit in the
// window ending at now (see imaged.CheckDailyQuota).
func checkDaily(ctx context.Context, tx *sql.Tx, owner string, n, limit int, now time.Time) error {
	rows, err := tx.QueryContext(ctx, dailyQuotaSQL, owner, micros(now.Add(-imaged.QuotaWindow)))
	if err != nil {
		return err
	}
	defer rows.Close()
	var charges []imaged.QuotaCharge
	for rows.Next() {
		var at int64
		var c imaged.QuotaCharge
		if err := rows.Scan(&at, &c.Images); err != nil {
			return err
		}
		c.At = fromMicros(at)
		charges = append(charges, c)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return imaged.CheckDailyQuota(charges, n, limit, now)
}

// FinishQuota charges a running reservation `images` images and ends it.
// Finishing an unknown or already finished reservation does nothing.
func (db *DB) FinishQuota(ctx context.Context, reservation string, images int) error {
	_, err := db.write.ExecContext(ctx, `UPDATE quota_reservations SET charged = ? WHERE id = ? AND charged IS NULL`,
		max(images, 0), reservation)
	return wrap("finish quota", err)
}
