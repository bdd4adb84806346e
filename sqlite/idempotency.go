package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/imaged/imaged"
)

// purgeBatch bounds how many expired idempotency records one reservation
// deletes on the way, so that the table stays small without a sweeper and
// no reservation pays for a large backlog.
const purgeBatch = 100

// ReserveIdempotencyKey inserts rec unless a live record holds the same owner
// and key, which it then returns. "Live" is judged at rec.CreatedAt, the time
// of the request (the interface passes no clock); a zero CreatedAt means now.
func (db *DB) ReserveIdempotencyKey(ctx context.Context, rec *imaged.IdempotencyRecord) (*imaged.IdempotencyRecord, error) {
	now := rec.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	var existing *imaged.IdempotencyRecord
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			r                    imaged.IdempotencyRecord
			createdAt, expiresAt int64
		)
		err := tx.QueryRowContext(ctx, `SELECT owner, key, request_hash, completed, status_code, response,
			created_at, expires_at FROM idempotency_keys WHERE owner = ? AND key = ?`, rec.Owner, rec.Key).
			Scan(&r.Owner, &r.Key, &r.RequestHash, &r.Completed, &r.StatusCode, &r.Response, &createdAt, &expiresAt)
		switch {
		case err == nil && expiresAt > micros(now):
			r.CreatedAt, r.ExpiresAt = fromMicros(createdAt), fromMicros(expiresAt)
			existing = &r
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE rowid IN (
			SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`, micros(now), purgeBatch); err != nil {
			return err
		}
		// The record of this key, if expired, may not have been in the batch.
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO idempotency_keys
			(owner, key, request_hash, completed, status_code, response, created_at, expires_at)
			VALUES (?, ?, ?, 0, 0, NULL, ?, ?)`,
			rec.Owner, rec.Key, rec.RequestHash, micros(rec.CreatedAt), micros(rec.ExpiresAt))
		return err
	})
	if err != nil {
		return nil, wrap("reserve idempotency key", err)
	}
	return existing, nil
}

// CompleteIdempotencyKey stores the first answer of a reserved key. A key
// that is not reserved (released, expired and purged, already completed) is
// left alone and reported as an error.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, owner, key string, status int, response []byte) error {
	if response == nil {
		response = []byte{}
	}
	res, err := db.write.ExecContext(ctx, `UPDATE idempotency_keys SET completed = 1, status_code = ?, response = ?
		WHERE owner = ? AND key = ? AND completed = 0`, status, response, owner, key)
	if err != nil {
		return wrap("complete idempotency key", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("complete idempotency key", err)
	} else if n == 0 {
		return wrap("complete idempotency key", errors.New("key is not reserved"))
	}
	return nil
}

// ReleaseIdempotencyKey forgets a reserved, not yet completed key. Releasing
// a key that is not reserved does nothing.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, owner, key string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND completed = 0`, owner, key)
	return wrap("release idempotency key", err)
}
