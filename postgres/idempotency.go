package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
)

// purgeBatch bounds how many expired idempotency records one reservation
// deletes on the way, so that the table stays small without a sweeper and no
// reservation pays for a large backlog.
const purgeBatch = 100

// ReserveIdempotencyKey inserts rec unless a live record holds the same owner
// and key, which it then returns. "Live" is judged at rec.CreatedAt, the time
// of the request (the interface passes no clock); a zero CreatedAt means now.
// Concurrent reservations of one key, on any replica, see one winner.
func (db *DB) ReserveIdempotencyKey(ctx context.Context, rec *imaged.IdempotencyRecord) (*imaged.IdempotencyRecord, error) {
	now := rec.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	// The record met on conflict may be released before it is read: the key
	// is then free again, so try anew.
	for {
		var existing *imaged.IdempotencyRecord
		err := db.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys
				WHERE owner = $1 AND key = $2 AND expires_at <= $3`, rec.Owner, rec.Key, now); err != nil {
				return err
			}
			// A batch of other expired keys, skipping those another
			// transaction holds, so that this one never waits on them.
			if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE ctid IN (
				SELECT ctid FROM idempotency_keys WHERE expires_at <= $1
				LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, purgeBatch); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys
				(owner, key, request_hash, completed, status_code, response, created_at, expires_at)
				VALUES ($1, $2, $3, false, 0, NULL, $4, $5)
				ON CONFLICT (owner, key) DO NOTHING`,
				rec.Owner, rec.Key, rec.RequestHash, now, rec.ExpiresAt)
			if err != nil || tag.RowsAffected() == 1 {
				return err
			}
			existing, err = scanIdempotency(tx.QueryRow(ctx, `SELECT owner, key, request_hash,
				completed, status_code, response, created_at, expires_at
				FROM idempotency_keys WHERE owner = $1 AND key = $2`, rec.Owner, rec.Key))
			return err
		})
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return existing, nil
	}
}

// CompleteIdempotencyKey stores the first answer of a reserved key. A key
// that is not reserved (released, expired and purged, already completed) is
// left alone and reported as an error.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, owner, key string, status int, response []byte) error {
	if response == nil {
		response = []byte{}
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	tag, err := db.pool.Exec(ctx, `UPDATE idempotency_keys
		SET completed = true, status_code = $3, response = $4
		WHERE owner = $1 AND key = $2 AND NOT completed`, owner, key, status, response)
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return errors.New("postgres: complete idempotency key: key is not reserved")
	}
	return nil
}

// ReleaseIdempotencyKey forgets a reserved, not yet completed key, so that a
// retry runs again. Releasing a key that is not reserved does nothing.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, owner, key string) error {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `DELETE FROM idempotency_keys
		WHERE owner = $1 AND key = $2 AND NOT completed`, owner, key)
	return wrap(err)
}

func scanIdempotency(row pgx.Row) (*imaged.IdempotencyRecord, error) {
	var r imaged.IdempotencyRecord
	err := row.Scan(&r.Owner, &r.Key, &r.RequestHash, &r.Completed, &r.StatusCode, &r.Response,
		&r.CreatedAt, &r.ExpiresAt)
	if err != nil {
		return nil, err
	}
	r.CreatedAt = utc(r.CreatedAt)
	r.ExpiresAt = utc(r.ExpiresAt)
	return &r, nil
}
