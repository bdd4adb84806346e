package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/imaged/imaged"
)

const deliveryColumns = `id, owner, job_id, event, url, body, status, attempts, next_attempt_at,
	lease_owner, lease_until, last_status, last_error, created_at, updated_at`

// WebhookSecret returns owner's secret, storing candidate when there is none.
func (db *DB) WebhookSecret(ctx context.Context, owner, candidate string, now time.Time) (*imaged.WebhookSecret, error) {
	var sec *imaged.WebhookSecret
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_secrets (owner, secret, created_at) VALUES (?, ?, ?)
			ON CONFLICT (owner) DO NOTHING`, owner, candidate, micros(now)); err != nil {
			return err
		}
		var err error
		sec, err = scanSecret(tx.QueryRowContext(ctx, `SELECT owner, secret, previous, previous_until, created_at
			FROM webhook_secrets WHERE owner = ?`, owner))
		return err
	})
	return sec, wrap("webhook secret", err)
}

// RotateWebhookSecret makes next owner's secret, keeping the current one as
// Previous until previousUntil.
func (db *DB) RotateWebhookSecret(ctx context.Context, owner, next string, now, previousUntil time.Time) (*imaged.WebhookSecret, error) {
	sec, err := scanSecret(db.write.QueryRowContext(ctx, `INSERT INTO webhook_secrets (owner, secret, created_at)
		VALUES (?1, ?2, ?3)
		ON CONFLICT (owner) DO UPDATE SET previous = secret, previous_until = ?4, secret = ?2, created_at = ?3
		RETURNING owner, secret, previous, previous_until, created_at`,
		owner, next, micros(now), micros(previousUntil)))
	return sec, wrap("rotate webhook secret", err)
}

func scanSecret(row interface{ Scan(...any) error }) (*imaged.WebhookSecret, error) {
	var (
		s       imaged.WebhookSecret
		until   sql.NullInt64
		created int64
	)
	if err := row.Scan(&s.Owner, &s.Secret, &s.Previous, &until, &created); err != nil {
		return nil, err
	}
	s.PreviousUntil, s.CreatedAt = fromNullMicros(until), fromMicros(created)
	return &s, nil
}

// ClaimWebhookDelivery leases the pending delivery due longest to worker.
func (db *DB) ClaimWebhookDelivery(ctx context.Context, worker string, now, leaseUntil time.Time) (*imaged.WebhookDelivery, error) {
	var d *imaged.WebhookDelivery
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM webhook_deliveries
			WHERE status = 'pending' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
			ORDER BY next_attempt_at, id LIMIT 1`, micros(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?,
			updated_at = ? WHERE id = ? RETURNING `+deliveryColumns, worker, micros(leaseUntil), micros(now), id))
		return err
	})
	if err != nil {
		return nil, wrap("claim webhook delivery", err)
	}
	return d, nil
}

// FinishWebhookAttempt records an attempt of a delivery worker holds.
func (db *DB) FinishWebhookAttempt(ctx context.Context, d *imaged.WebhookDelivery, worker string) error {
	updated := d.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	res, err := db.write.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,
		body = ?, last_status = ?, last_error = ?, lease_owner = '', lease_until = NULL, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND status = 'pending'`,
		string(d.Status), d.Attempts, micros(d.NextAttemptAt), d.Body, d.LastStatus, d.LastError, micros(updated),
		d.ID, worker)
	if err == nil {
		if n, _ := res.RowsAffected(); n == 0 {
			return imaged.Errorf(imaged.EConflict, "Webhook delivery lease was lost")
		}
	}
	return wrap("finish webhook attempt", err)
}

// WebhookDeliveries lists the deliveries of owner's job, oldest first.
func (db *DB) WebhookDeliveries(ctx context.Context, owner, jobID string) ([]*imaged.WebhookDelivery, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE owner = ? AND job_id = ? ORDER BY created_at, id`, owner, jobID)
	if err != nil {
		return nil, wrap("webhook deliveries", err)
	}
	defer rows.Close()
	out := []*imaged.WebhookDelivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, wrap("webhook deliveries", err)
		}
		out = append(out, d)
	}
	return out, wrap("webhook deliveries", rows.Err())
}

func scanDelivery(row interface{ Scan(...any) error }) (*imaged.WebhookDelivery, error) {
	var (
		d                      imaged.WebhookDelivery
		status                 string
		next, created, updated int64
		leaseUntil             sql.NullInt64
	)
	err := row.Scan(&d.ID, &d.Owner, &d.JobID, &d.Event, &d.URL, &d.Body, &status, &d.Attempts, &next,
		&d.LeaseOwner, &leaseUntil, &d.LastStatus, &d.LastError, &created, &updated)
	if err != nil {
		return nil, err
	}
	d.Status = imaged.DeliveryStatus(status)
	d.NextAttemptAt, d.LeaseUntil = fromMicros(next), fromNullMicros(leaseUntil)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &d, nil
}
