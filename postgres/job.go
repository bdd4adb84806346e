package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
)

const jobColumns = `id, owner, status, provider, request, image_ids, error_code, error_message,
	attempts, lease_owner, lease_until, created_at, updated_at`

func jobNotFound() *imaged.Error {
	return imaged.Errorf(imaged.EJobNotFound, "Generation job not found")
}

func leaseLost() *imaged.Error {
	return imaged.Errorf(imaged.EConflict, "The job's lease was lost")
}

// CreateJob inserts job. A taken id answers EConflict.
func (db *DB) CreateJob(ctx context.Context, job *imaged.Job) error {
	if !imaged.ValidID(job.ID) {
		return errors.New("postgres: create job: malformed id " + job.ID)
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `INSERT INTO jobs (`+jobColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		job.ID, job.Owner, string(job.Status), job.Provider, request(job.Request), job.ImageIDs,
		string(job.ErrorCode), job.ErrorMessage, job.Attempts, job.LeaseOwner, nullTime(job.LeaseUntil),
		job.CreatedAt, job.UpdatedAt)
	return wrapConflict(err, "Generation job already exists")
}

// FindJob returns owner's job id; EJobNotFound for anything else.
func (db *DB) FindJob(ctx context.Context, owner, id string) (*imaged.Job, error) {
	if !imaged.ValidID(id) {
		return nil, jobNotFound()
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	job, err := scanJob(db.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND owner = $2`, id, owner))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, jobNotFound()
	}
	if err != nil {
		return nil, wrap(err)
	}
	return job, nil
}

// ClaimJob leases to worker the oldest (by CreatedAt, then ID) job that is
// queued, or running with a lease passed at now. Workers on every replica
// claim at once without waiting on one another: a row another worker is
// claiming is skipped (FOR UPDATE SKIP LOCKED), never handed out twice.
func (db *DB) ClaimJob(ctx context.Context, worker string, now, leaseUntil time.Time) (*imaged.Job, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	job, err := scanJob(db.pool.QueryRow(ctx, `WITH next AS (
			SELECT id AS claim_id FROM jobs
			WHERE status IN ('queued', 'running')
			  AND (status = 'queued' OR lease_until <= $2)
			ORDER BY created_at, id
			LIMIT 1
			FOR UPDATE SKIP LOCKED
		)
		UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $3,
			attempts = attempts + 1, updated_at = $2
		FROM next WHERE jobs.id = next.claim_id
		RETURNING `+jobColumns, worker, now, leaseUntil))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(err)
	}
	return job, nil
}

// ExtendJob moves the lease of a running job worker holds to leaseUntil;
// EConflict when the job is no longer running under worker's lease.
func (db *DB) ExtendJob(ctx context.Context, id, worker string, leaseUntil time.Time) error {
	if !imaged.ValidID(id) {
		return leaseLost()
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET lease_until = $3
		WHERE id = $1 AND status = 'running' AND lease_owner = $2`, id, worker, leaseUntil)
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return leaseLost()
	}
	return nil
}

// FinishJob records the outcome of a job that worker holds; EConflict when
// the lease was lost. The job's UpdatedAt is stored as given, or as now when
// zero.
func (db *DB) FinishJob(ctx context.Context, job *imaged.Job, worker string) error {
	if !imaged.ValidID(job.ID) {
		return leaseLost()
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET status = $3, image_ids = $4, error_code = $5,
			error_message = $6, updated_at = $7
		WHERE id = $1 AND status = 'running' AND lease_owner = $2`,
		job.ID, worker, string(job.Status), job.ImageIDs, string(job.ErrorCode), job.ErrorMessage,
		stamp(job.UpdatedAt))
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return leaseLost()
	}
	return nil
}

func scanJob(row pgx.Row) (*imaged.Job, error) {
	var (
		j          imaged.Job
		status     string
		req        []byte
		code       string
		leaseUntil *time.Time
	)
	err := row.Scan(&j.ID, &j.Owner, &status, &j.Provider, &req, &j.ImageIDs, &code, &j.ErrorMessage,
		&j.Attempts, &j.LeaseOwner, &leaseUntil, &j.CreatedAt, &j.UpdatedAt)
	if err != nil {
		return nil, err
	}
	j.Status = imaged.JobStatus(status)
	j.ErrorCode = imaged.ErrorCode(code)
	if req != nil {
		j.Request = req
	}
	if leaseUntil != nil {
		j.LeaseUntil = leaseUntil.UTC()
	}
	j.CreatedAt = utc(j.CreatedAt)
	j.UpdatedAt = utc(j.UpdatedAt)
	return &j, nil
}

// request stores an empty request as NULL.
func request(r []byte) any {
	if len(r) == 0 {
		return nil
	}
	return string(r)
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
