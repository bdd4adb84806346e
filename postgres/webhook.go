package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
)

const deliveryColumns = `id, owner, job_id, event, url, body, status, attempts, next_attempt_at,
	lease_owner, lease_until, last_status, last_error, created_at, updated_at`

// WebhookSecret returns owner's secret, storing candidate when there is none.
func (db *DB) WebhookSecret(ctx context.Context, owner, candidate string, now time.Time) (*imaged.WebhookSecret, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	// The no-op update makes RETURNING answer the row that won a race.
	sec, err := scanSecret(db.pool.QueryRow(ctx, `INSERT INTO webhook_secrets (owner, secret, created_at)
		VALUES ($1, $2, $3)
		ON CONFLICT (owner) DO UPDATE SET owner = webhook_secrets.owner
		RETURNING owner, secret, previous, previous_until, created_at`, owner, candidate, stamp(now)))
	return sec, wrap(err)
}

// RotateWebhookSecret makes next owner's secret, keeping the current one as
// Previous until previousUntil.
func (db *DB) RotateWebhookSecret(ctx context.Context, owner, next string, now, previousUntil time.Time) (*imaged.WebhookSecret, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	sec, err := scanSecret(db.pool.QueryRow(ctx, `INSERT INTO webhook_secrets (owner, secret, created_at)
		VALUES ($1, $2, $3)
		ON CONFLICT (owner) DO UPDATE SET previous = webhook_secrets.secret, previous_until = $4,
			secret = EXCLUDED.secret, created_at = EXCLUDED.created_at
		RETURNING owner, secret, previous, previous_until, created_at`, owner, next, stamp(now), stamp(previousUntil)))
	return sec, wrap(err)
}

func scanSecret(row pgx.Row) (*imaged.WebhookSecret, error) {
	var (
		s     imaged.WebhookSecret
		until *time.Time
	)
	if err := row.Scan(&s.Owner, &s.Secret, &s.Previous, &until, &s.CreatedAt); err != nil {
		return nil, err
	}
	if until != nil {
		s.PreviousUntil = until.UTC()
	}
	s.CreatedAt = s.CreatedAt.UTC()
	return &s, nil
}

// ClaimWebhookDelivery leases the pending delivery due longest to worker.
// Replicas claim at once without waiting on one another: a row another is
// claiming is skipped (FOR UPDATE SKIP LOCKED), never handed out twice.
func (db *DB) ClaimWebhookDelivery(ctx context.Context, worker string, now, leaseUntil time.Time) (*imaged.WebhookDelivery, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	d, err := scanDelivery(db.pool.QueryRow(ctx, `WITH next AS (
			SELECT id AS claim_id FROM webhook_deliveries
			WHERE status = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)
			ORDER BY next_attempt_at, id
			LIMIT 1
			FOR UPDATE SKIP LOCKED
		)
		UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $3, updated_at = $2
		FROM next WHERE webhook_deliveries.id = next.claim_id
		RETURNING `+deliveryColumns, worker, stamp(now), stamp(leaseUntil)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(err)
	}
	return d, nil
}

// FinishWebhookAttempt records an attempt of a delivery worker holds.
func (db *DB) FinishWebhookAttempt(ctx context.Context, d *imaged.WebhookDelivery, worker string) error {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	tag, err := db.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5,
			body = $6, last_status = $7, last_error = $8, lease_owner = '', lease_until = NULL, updated_at = $9
		WHERE id = $1 AND lease_owner = $2 AND status = 'pending'`,
		d.ID, worker, string(d.Status), d.Attempts, stamp(d.NextAttemptAt), d.Body, d.LastStatus, d.LastError,
		stamp(d.UpdatedAt))
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return imaged.Errorf(imaged.EConflict, "Webhook delivery lease was lost")
	}
	return nil
}

// WebhookDeliveries lists the deliveries of owner's job, oldest first.
func (db *DB) WebhookDeliveries(ctx context.Context, owner, jobID string) ([]*imaged.WebhookDelivery, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE owner = $1 AND job_id = $2 ORDER BY created_at, id`, owner, jobID)
	if err != nil {
		return nil, wrap(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*imaged.WebhookDelivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, wrap(err)
	}
	if out == nil {
		out = []*imaged.WebhookDelivery{}
	}
	return out, nil
}

func scanDelivery(row pgx.Row) (*imaged.WebhookDelivery, error) {
	var (
		d          imaged.WebhookDelivery
		status     string
		leaseUntil *time.Time
	)
	err := row.Scan(&d.ID, &d.Owner, &d.JobID, &d.Event, &d.URL, &d.Body, &status, &d.Attempts, &d.NextAttemptAt,
		&d.LeaseOwner, &leaseUntil, &d.LastStatus, &d.LastError, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return nil, err
	}
	d.Status = imaged.DeliveryStatus(status)
	if leaseUntil != nil {
		d.LeaseUntil = leaseUntil.UTC()
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = d.NextAttemptAt.UTC(), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return &d, nil
}
