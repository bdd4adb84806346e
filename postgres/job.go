package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imaged/imaged"
	"github.com/jackc/pgx/v5"
)

const jobColumns = `id, owner, status, provider, request, image_ids, error_code, error_message,
	attempts, lease_owner, lease_until, created_at, updated_at, webhook_url, webhook_events`

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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO jobs (`+jobColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			job.ID, job.Owner, string(job.Status), job.Provider, request(job.Request), job.ImageIDs,
			string(job.ErrorCode), job.ErrorMessage, job.Attempts, job.LeaseOwner, nullTime(job.LeaseUntil),
			job.CreatedAt, job.UpdatedAt, job.Webhook.URLOrEmpty(), job.Webhook.StoredEvents())
		if err != nil {
			return wrapConflict(err, "Generation job already exists")
		}
		return recordEvent(ctx, tx, job, nil, job.CreatedAt)
	})
	return err
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
	var job *imaged.Job
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		job, err = scanJob(tx.QueryRow(ctx, `WITH next AS (
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
		if err != nil {
			return err
		}
		return recordEvent(ctx, tx, job, nil, now)
	})
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
	updated := stamp(job.UpdatedAt)
	return db.inTx(ctx, func(tx pgx.Tx) error {
		stored, err := scanJob(tx.QueryRow(ctx, `UPDATE jobs SET status = $3, image_ids = $4, error_code = $5,
				error_message = $6, updated_at = $7
			WHERE id = $1 AND status = 'running' AND lease_owner = $2 RETURNING `+jobColumns,
			job.ID, worker, string(job.Status), job.ImageIDs, string(job.ErrorCode), job.ErrorMessage, updated))
		if errors.Is(err, pgx.ErrNoRows) {
			return leaseLost()
		} else if err != nil {
			return err
		}
		return recordEvent(ctx, tx, stored, nil, updated)
	})
}

// ReportJobProgress records a running event with percent for a job worker
// holds; the job's row lock orders it with the job's other events.
func (db *DB) ReportJobProgress(ctx context.Context, id, worker string, percent int, now time.Time) error {
	if !imaged.ValidID(id) {
		return leaseLost()
	}
	ctx, cancel := db.bound(ctx)
	defer cancel()
	return db.inTx(ctx, func(tx pgx.Tx) error {
		job, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
			WHERE id = $1 AND lease_owner = $2 AND status = 'running' FOR UPDATE`, id, worker))
		if errors.Is(err, pgx.ErrNoRows) {
			return leaseLost()
		} else if err != nil {
			return err
		}
		return recordEvent(ctx, tx, job, &percent, stamp(now))
	})
}

// recordEvent appends the event of job's new state (as stored) and, when its
// webhook subscribed to it, queues the delivery: a job's first run is
// "started", its end "completed"; a delivery already queued for the job and
// event (a rerun) is left as it is. The caller holds the job's row lock.
func recordEvent(ctx context.Context, tx pgx.Tx, job *imaged.Job, percent *int, now time.Time) error {
	ev := imaged.NewJobEvent(job, percent, now)
	if _, err := tx.Exec(ctx, `INSERT INTO job_events (job_id, seq, type, attempt, percent, image_ids,
			error_code, error_message, created_at)
		SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM job_events WHERE job_id = $1`,
		job.ID, string(ev.Type), ev.Attempt, ev.Percent, ev.ImageIDs, string(ev.ErrorCode), ev.ErrorMessage, now); err != nil {
		return err
	}
	if event := ev.WebhookEvent(); event != "" && job.Webhook.Has(event) {
		_, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, owner, job_id, event, url, status,
				next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6) ON CONFLICT DO NOTHING`,
			imaged.WebhookDeliveryID(job.ID, event), job.Owner, job.ID, event, job.Webhook.URL, now)
		return err
	}
	return nil
}

// JobEvents returns up to limit events of job id after seq after.
func (db *DB) JobEvents(ctx context.Context, id string, after int64, limit int) ([]*imaged.JobEvent, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT job_id, seq, type, attempt, percent, image_ids, error_code,
			error_message, created_at
		FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, max(limit, 1))
	if err != nil {
		return nil, wrap(err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*imaged.JobEvent, error) {
		var (
			ev        imaged.JobEvent
			typ, code string
		)
		err := r.Scan(&ev.JobID, &ev.Seq, &typ, &ev.Attempt, &ev.Percent, &ev.ImageIDs, &code, &ev.ErrorMessage, &ev.CreatedAt)
		ev.Type, ev.ErrorCode, ev.CreatedAt = imaged.JobStatus(typ), imaged.ErrorCode(code), ev.CreatedAt.UTC()
		return &ev, err
	})
	if err != nil {
		return nil, wrap(err)
	}
	if evs == nil {
		evs = []*imaged.JobEvent{}
	}
	return evs, nil
}

// RecentJobEvents returns the highest seq of every job with an event at or
// after since, through job_events_created.
func (db *DB) RecentJobEvents(ctx context.Context, since time.Time) (map[string]int64, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT job_id, max(seq) FROM job_events WHERE created_at >= $1 GROUP BY job_id`, since)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, wrap(err)
		}
		out[id] = seq
	}
	return out, wrap(rows.Err())
}

func scanJob(row pgx.Row) (*imaged.Job, error) {
	var (
		j          imaged.Job
		status     string
		req        []byte
		code       string
		leaseUntil *time.Time
		hookURL    string
		hookEvents string
	)
	err := row.Scan(&j.ID, &j.Owner, &status, &j.Provider, &req, &j.ImageIDs, &code, &j.ErrorMessage,
		&j.Attempts, &j.LeaseOwner, &leaseUntil, &j.CreatedAt, &j.UpdatedAt, &hookURL, &hookEvents)
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
	j.Webhook = imaged.StoredWebhook(hookURL, hookEvents)
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

// ListJobs returns one page of f.Owner's jobs, newest first, through
// jobs_owner_created or jobs_owner_status_created (migration 0004): a page
// costs the same at any depth; the count walks the owner's index entries.
func (db *DB) ListJobs(ctx context.Context, f imaged.JobFilter) (*imaged.JobPage, error) {
	limit := max(f.Limit, 1)
	where := ` WHERE owner = $1`
	args := []any{f.Owner}
	if f.Status != "" {
		args = append(args, string(f.Status))
		where += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	countSQL := `SELECT count(*) FROM jobs` + where
	countArgs := slices.Clone(args)
	if f.Cursor != nil {
		args = append(args, f.Cursor.CreatedAt, f.Cursor.ID)
		where += fmt.Sprintf(` AND (created_at, id) < ($%d, $%d)`, len(args)-1, len(args))
	}
	// One more than a page tells whether another page follows.
	listSQL := fmt.Sprintf(`SELECT %s FROM jobs%s ORDER BY created_at DESC, id DESC LIMIT %d`, jobColumns, where, limit+1)
	total, jobs, err := countAndList(ctx, db, countSQL, countArgs, listSQL, args,
		func(r pgx.CollectableRow) (*imaged.Job, error) { return scanJob(r) })
	if err != nil {
		return nil, err
	}
	page := &imaged.JobPage{Jobs: []*imaged.Job{}, TotalItems: total}
	if len(jobs) > limit {
		jobs = jobs[:limit]
		last := jobs[limit-1]
		page.Next = &imaged.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	page.Jobs = append(page.Jobs, jobs...)
	return page, nil
}

// QueuedJobs returns how many jobs wait to run and when the oldest of them
// was created (zero when none), for the job queue metrics.
func (db *DB) QueuedJobs(ctx context.Context) (int, time.Time, error) {
	ctx, cancel := db.bound(ctx)
	defer cancel()
	var (
		n      int
		oldest *time.Time
	)
	if err := db.pool.QueryRow(ctx, `SELECT count(*), min(created_at) FROM jobs WHERE status = 'queued'`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, wrap(err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, oldest.UTC(), nil
}
