package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

const jobColumns = `id, owner, status, provider, request, image_ids, error_code, error_message,
	attempts, lease_owner, lease_until, created_at, updated_at, webhook_url, webhook_events`

func jobNotFound() *imaged.Error {
	return imaged.Errorf(imaged.EJobNotFound, "Generation job not found")
}

func leaseLost() *imaged.Error {
	return imaged.Errorf(imaged.EConflict, "Generation job lease was lost")
}

// CreateJob inserts job. A taken id answers EConflict.
func (db *DB) CreateJob(ctx context.Context, job *imaged.Job) error {
	if !imaged.ValidID(job.ID) {
		return fmt.Errorf("sqlite: create job: malformed id %q", job.ID)
	}
	ids, err := imageIDs(job.ImageIDs)
	if err != nil {
		return wrap("create job", err)
	}
	request := []byte(job.Request)
	if request == nil {
		request = []byte{}
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			job.ID, job.Owner, string(job.Status), job.Provider, request, ids,
			string(job.ErrorCode), job.ErrorMessage, job.Attempts, job.LeaseOwner, nullMicros(job.LeaseUntil),
			micros(job.CreatedAt), micros(job.UpdatedAt), job.Webhook.URLOrEmpty(), job.Webhook.StoredEvents())
		if err != nil {
			return err
		}
		return recordEvent(ctx, tx, job, nil, job.CreatedAt)
	})
	if isUniqueViolation(err) {
		return &imaged.Error{Code: imaged.EConflict, Message: "Generation job already exists", Err: err}
	}
	return wrap("create job", err)
}

// FindJob returns owner's job id, or EJobNotFound.
func (db *DB) FindJob(ctx context.Context, owner, id string) (*imaged.Job, error) {
	if !imaged.ValidID(id) {
		return nil, jobNotFound()
	}
	job, err := scanJob(db.read.QueryRowContext(ctx, findJobSQL, id, owner))
	return job, wrap("find job", err)
}

// claimJobSQL picks the job ClaimJob takes: two index walks, one per kind of
// claimable job, instead of one OR that would scan the table of finished jobs.
const claimJobSQL = `SELECT id, created_at FROM (
		SELECT id, created_at FROM jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1)
	UNION ALL
	SELECT id, created_at FROM (
		SELECT id, created_at FROM jobs WHERE status = 'running' AND lease_until <= ? ORDER BY created_at, id LIMIT 1)
	ORDER BY created_at, id LIMIT 1`

const findJobSQL = `SELECT ` + jobColumns + ` FROM jobs WHERE id = ? AND owner = ?`

// ClaimJob leases to worker the oldest (by CreatedAt, then ID) job that is
// queued, or running with a lease passed at now.
func (db *DB) ClaimJob(ctx context.Context, worker string, now, leaseUntil time.Time) (*imaged.Job, error) {
	var job *imaged.Job
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			id      string
			created int64
		)
		err := tx.QueryRowContext(ctx, claimJobSQL, micros(now)).Scan(&id, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		job, err = scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET status = 'running', lease_owner = ?,
			lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? RETURNING `+jobColumns,
			worker, micros(leaseUntil), micros(now), id))
		if err != nil {
			return err
		}
		return recordEvent(ctx, tx, job, nil, now)
	})
	if err != nil {
		return nil, wrap("claim job", err)
	}
	return job, nil
}

// ExtendJob moves the lease of job id that worker holds.
func (db *DB) ExtendJob(ctx context.Context, id, worker string, leaseUntil time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE jobs SET lease_until = ?
		WHERE id = ? AND lease_owner = ? AND status = 'running'`, micros(leaseUntil), id, worker)
	return wrap("extend job", held(res, err))
}

// FinishJob records the outcome of a job that worker holds, or with Status
// JobQueued hands it back to the queue. The job's UpdatedAt is stored as
// given, or as now when zero.
func (db *DB) FinishJob(ctx context.Context, job *imaged.Job, worker string) error {
	ids, err := imageIDs(job.ImageIDs)
	if err != nil {
		return wrap("finish job", err)
	}
	updated := job.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		// A job handed back to the queue keeps no lease.
		stored, err := scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET status = ?1, image_ids = ?2, error_code = ?3,
			error_message = ?4, updated_at = ?5,
			lease_owner = CASE WHEN ?1 = 'queued' THEN '' ELSE lease_owner END,
			lease_until = CASE WHEN ?1 = 'queued' THEN NULL ELSE lease_until END
			WHERE id = ?6 AND lease_owner = ?7 AND status = 'running' RETURNING `+jobColumns,
			string(job.Status), ids, string(job.ErrorCode), job.ErrorMessage, micros(updated), job.ID, worker))
		if imaged.ErrCode(err) == imaged.EJobNotFound {
			return leaseLost()
		} else if err != nil {
			return err
		}
		return recordEvent(ctx, tx, stored, nil, updated)
	})
	return wrap("finish job", err)
}

// ReportJobProgress records a running event with percent for a job worker
// holds.
func (db *DB) ReportJobProgress(ctx context.Context, id, worker string, percent int, now time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		job, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs
			WHERE id = ? AND lease_owner = ? AND status = 'running'`, id, worker))
		if imaged.ErrCode(err) == imaged.EJobNotFound {
			return leaseLost()
		} else if err != nil {
			return err
		}
		return recordEvent(ctx, tx, job, &percent, now)
	})
	return wrap("report job progress", err)
}

// recordEvent appends the event of job's new state (as stored) and, when its
// webhook subscribed to it, queues the delivery: a job's first run is
// "started", its end "completed"; a delivery already queued for the job and
// event (a rerun) is left as it is.
func recordEvent(ctx context.Context, tx *sql.Tx, job *imaged.Job, percent *int, now time.Time) error {
	ev := imaged.NewJobEvent(job, percent, now)
	ids, err := imageIDs(ev.ImageIDs)
	if err != nil {
		return err
	}
	var pct sql.NullInt64
	if percent != nil {
		pct = sql.NullInt64{Int64: int64(*percent), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO job_events (job_id, seq, type, attempt, percent, image_ids,
			error_code, error_message, created_at)
		SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM job_events WHERE job_id = ?1`,
		job.ID, string(ev.Type), ev.Attempt, pct, ids, string(ev.ErrorCode), ev.ErrorMessage, micros(now)); err != nil {
		return err
	}
	if event := ev.WebhookEvent(); event != "" && job.Webhook.Has(event) {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, owner, job_id, event, url, status,
				next_attempt_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT DO NOTHING`,
			imaged.WebhookDeliveryID(job.ID, event), job.Owner, job.ID, event, job.Webhook.URL,
			micros(now), micros(now), micros(now))
		return err
	}
	return nil
}

// JobEvents returns up to limit events of job id after seq after.
func (db *DB) JobEvents(ctx context.Context, id string, after int64, limit int) ([]*imaged.JobEvent, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT job_id, seq, type, attempt, percent, image_ids, error_code,
			error_message, created_at
		FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, after, max(limit, 1))
	if err != nil {
		return nil, wrap("job events", err)
	}
	defer rows.Close()
	out := []*imaged.JobEvent{}
	for rows.Next() {
		var (
			ev        imaged.JobEvent
			typ, code string
			pct       sql.NullInt64
			ids       sql.NullString
			created   int64
		)
		if err := rows.Scan(&ev.JobID, &ev.Seq, &typ, &ev.Attempt, &pct, &ids, &code, &ev.ErrorMessage, &created); err != nil {
			return nil, wrap("job events", err)
		}
		ev.Type, ev.ErrorCode, ev.CreatedAt = imaged.JobStatus(typ), imaged.ErrorCode(code), fromMicros(created)
		if pct.Valid {
			p := int(pct.Int64)
			ev.Percent = &p
		}
		if ids.Valid {
			if err := json.Unmarshal([]byte(ids.String), &ev.ImageIDs); err != nil {
				return nil, wrap("job events", err)
			}
		}
		out = append(out, &ev)
	}
	return out, wrap("job events", rows.Err())
}

// RecentJobEvents returns the highest seq of every job with an event at or
// after since, through job_events_created.
func (db *DB) RecentJobEvents(ctx context.Context, since time.Time) (map[string]int64, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT job_id, max(seq) FROM job_events WHERE created_at >= ? GROUP BY job_id`, micros(since))
	if err != nil {
		return nil, wrap("recent job events", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, wrap("recent job events", err)
		}
		out[id] = seq
	}
	return out, wrap("recent job events", rows.Err())
}

// held turns an update of a leased job that changed nothing into EConflict.
func held(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	} else if n == 0 {
		return leaseLost()
	}
	return nil
}

// imageIDs is the stored form of Job.ImageIDs: a JSON array, NULL for none.
func imageIDs(ids []string) (sql.NullString, error) {
	if ids == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(ids)
	return sql.NullString{String: string(b), Valid: true}, err
}

// scanJob reads one row of jobColumns; no row is EJobNotFound.
func scanJob(row interface{ Scan(...any) error }) (*imaged.Job, error) {
	var (
		job                  imaged.Job
		status, errorCode    string
		request              []byte
		ids                  sql.NullString
		leaseUntil           sql.NullInt64
		createdAt, updatedAt int64
		hookURL, hookEvents  string
	)
	err := row.Scan(&job.ID, &job.Owner, &status, &job.Provider, &request, &ids, &errorCode,
		&job.ErrorMessage, &job.Attempts, &job.LeaseOwner, &leaseUntil, &createdAt, &updatedAt, &hookURL, &hookEvents)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, jobNotFound()
	} else if err != nil {
		return nil, err
	}
	job.Status = imaged.JobStatus(status)
	job.ErrorCode = imaged.ErrorCode(errorCode)
	if len(request) > 0 {
		job.Request = request
	}
	if ids.Valid {
		if err := json.Unmarshal([]byte(ids.String), &job.ImageIDs); err != nil {
			return nil, fmt.Errorf("job %s: image ids: %w", job.ID, err)
		}
	}
	job.LeaseUntil = fromNullMicros(leaseUntil)
	job.CreatedAt = fromMicros(createdAt)
	job.UpdatedAt = fromMicros(updatedAt)
	job.Webhook = imaged.StoredWebhook(hookURL, hookEvents)
	return &job, nil
}

// ListJobs returns one page of f.Owner's jobs, newest first, through
// jobs_owner_created or jobs_owner_status_created (migration 0004): a page
// costs the same at any depth; the count walks the owner's index entries.
func (db *DB) ListJobs(ctx context.Context, f imaged.JobFilter) (*imaged.JobPage, error) {
	limit := max(f.Limit, 1)
	where := ` WHERE owner = ?`
	args := []any{f.Owner}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	countArgs := slices.Clone(args)
	if f.Cursor != nil {
		where += ` AND (created_at, id) < (?, ?)`
		args = append(args, micros(f.Cursor.CreatedAt), f.Cursor.ID)
	}
	args = append(args, limit+1) // one more tells whether a page follows
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, wrap("list jobs", err)
	}
	defer tx.Rollback()
	page := &imaged.JobPage{Jobs: []*imaged.Job{}}
	countWhere, _, _ := strings.Cut(where, ` AND (created_at`)
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM jobs`+countWhere, countArgs...).Scan(&page.TotalItems); err != nil {
		return nil, wrap("list jobs", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs`+where+` ORDER BY created_at DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, wrap("list jobs", err)
	}
	defer rows.Close()
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, wrap("list jobs", err)
		}
		page.Jobs = append(page.Jobs, job)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list jobs", err)
	}
	if len(page.Jobs) > limit {
		page.Jobs = page.Jobs[:limit]
		last := page.Jobs[limit-1]
		page.Next = &imaged.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}

// QueuedJobs returns how many jobs wait to run and when the oldest of them
// was created (zero when none), for the job queue metrics.
func (db *DB) QueuedJobs(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullInt64
	)
	err := db.read.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM jobs WHERE status = 'queued'`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, wrap("queued jobs", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, fromMicros(oldest.Int64), nil
}
