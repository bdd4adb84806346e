package imaged

import (
	"context"
	"encoding/json"
	"time"
)

// IdempotencyRecord remembers one idempotent request of one owner, so that a
// retry with the same key replays the first answer instead of generating again.
type IdempotencyRecord struct {
	Owner       string
	Key         string
	RequestHash string // hex SHA-256 of the method, path and canonical body
	Completed   bool   // false while the first request is still running
	StatusCode  int    // the first answer, once Completed
	Response    []byte // the first answer's JSON body, once Completed
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// IdempotencyStore keeps idempotency records, scoped per owner, across
// restarts and replicas.
type IdempotencyStore interface {
	// ReserveIdempotencyKey inserts rec (not Completed) if no live record has
	// the same owner and key, and returns (nil, nil). Otherwise it returns
	// the existing record untouched. Expired records count as absent.
	ReserveIdempotencyKey(ctx context.Context, rec *IdempotencyRecord) (*IdempotencyRecord, error)
	// CompleteIdempotencyKey stores the answer of a reserved key.
	CompleteIdempotencyKey(ctx context.Context, owner, key string, status int, response []byte) error
	// ReleaseIdempotencyKey forgets a reserved key whose request failed in a
	// way worth retrying, so that a retry runs again.
	ReleaseIdempotencyKey(ctx context.Context, owner, key string) error
}

// QuotaLimits are per-owner generation limits; 0 means unlimited.
type QuotaLimits struct {
	ImagesPerDay int // images per rolling 24 hours
	Concurrent   int // generations running at once
}

// QuotaStore counts generations in the database, so that replicas share one
// count.
type QuotaStore interface {
	// ReserveQuota atomically checks that owner may start a generation of n
	// images at now and records a running reservation that holds until
	// leaseUntil (so a crashed replica's reservation stops counting as
	// running). Over a limit it answers an *Error with EQuotaExceeded and a
	// RetryAfter.
	ReserveQuota(ctx context.Context, owner string, n int, limits QuotaLimits, now, leaseUntil time.Time) (reservation string, err error)
	// FinishQuota marks the reservation done, charging `images` images
	// (0 charges nothing: a failed generation costs no quota).
	FinishQuota(ctx context.Context, reservation string, images int) error
}

// JobStatus is the state of an asynchronous generation.
type JobStatus string

const (
	JobQueued    JobStatus = "queued"
	JobRunning   JobStatus = "running"
	JobSucceeded JobStatus = "succeeded"
	JobFailed    JobStatus = "failed"
)

// Job is a persisted asynchronous generation.
type Job struct {
	ID           string
	Owner        string
	Status       JobStatus
	Provider     string
	Request      json.RawMessage // the generation request, replayed by whoever runs it
	ImageIDs     []string        // once succeeded
	ErrorCode    ErrorCode       // once failed
	ErrorMessage string          // once failed, caller-safe
	Attempts     int
	LeaseOwner   string    // the worker running it
	LeaseUntil   time.Time // a running job whose lease passed is claimable again
	// Webhook, when set, is told of the job (see WebhookDelivery): the job
	// store queues a delivery when the job first runs and when it ends.
	Webhook   *JobWebhook
	CreatedAt time.Time
	UpdatedAt time.Time
}

// JobStore persists generation jobs. Workers on any replica claim them; a
// job is run by one worker at a time, and a worker that dies loses its lease.
// Each change of a job records its JobEvent in the same transaction, and
// queues its webhook's delivery when the job subscribed to it.
type JobStore interface {
	JobEventStore
	CreateJob(ctx context.Context, job *Job) error
	// FindJob answers EJobNotFound for unknown, malformed or other owners' ids.
	FindJob(ctx context.Context, owner, id string) (*Job, error)
	// ClaimJob marks the oldest queued job, or a running job whose lease has
	// passed, as running for worker until leaseUntil, increments Attempts and
	// returns it; (nil, nil) when there is none.
	ClaimJob(ctx context.Context, worker string, now, leaseUntil time.Time) (*Job, error)
	// ExtendJob moves the lease of a job worker still holds; an *Error with
	// EConflict if the lease was lost.
	ExtendJob(ctx context.Context, id, worker string, leaseUntil time.Time) error
	// ListJobs returns one page of an owner's jobs, newest first: ordered by
	// (CreatedAt, ID) descending, positioned after f.Cursor.
	ListJobs(ctx context.Context, f JobFilter) (*JobPage, error)
	// FinishJob records the outcome (Status, ImageIDs, ErrorCode,
	// ErrorMessage) of a job worker holds; EConflict if the lease was lost.
	// With Status JobQueued it hands an interrupted job back to the queue.
	FinishJob(ctx context.Context, job *Job, worker string) error
}

// JobFilter selects one page of an owner's jobs.
type JobFilter struct {
	Owner  string
	Status JobStatus // "" for any
	Limit  int       // at least 1
	// Cursor is the (CreatedAt, ID) of the last job of the previous page;
	// nil for the first page.
	Cursor *Cursor
}

// JobPage is one page of jobs.
type JobPage struct {
	Jobs []*Job
	// TotalItems counts the owner's jobs of the filter's status, all pages,
	// read with the page from one snapshot.
	TotalItems int64
	Next       *Cursor // the last job's position, nil on the last page
}
