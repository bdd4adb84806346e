package imaged

import (
	"context"
	"time"
)

// JobEvent is one change of a job's state, kept in the database beside the
// job, so that whoever watches the job (an event stream on any replica) sees
// every change, and one who reconnects can resume after the last it saw. The
// job store records them itself, in the transaction of the change: a queued
// event when a job is created or handed back, a running one when a worker
// claims it and when its provider reports progress, and a succeeded or
// failed one when it finishes.
type JobEvent struct {
	JobID   string
	Seq     int64     // 1, 2, ... in the order of the job's changes
	Type    JobStatus // queued, running, succeeded or failed
	Attempt int       // the job's attempts when it happened
	// Percent is how far the run has got, for a running event that
	// reports progress; nil when the provider does not tell.
	Percent      *int
	ImageIDs     []string  // succeeded
	ErrorCode    ErrorCode // failed
	ErrorMessage string    // failed, caller-safe
	CreatedAt    time.Time
}

// Terminal reports whether the event ends its job.
func (e *JobEvent) Terminal() bool { return e.Type == JobSucceeded || e.Type == JobFailed }

// JobEventStore reads the events the job store records.
type JobEventStore interface {
	// JobEvents returns up to limit events of job id after seq `after`,
	// in order. It does not check the owner: callers find the job first.
	JobEvents(ctx context.Context, id string, after int64, limit int) ([]*JobEvent, error)
	// RecentJobEvents returns, for every job with an event recorded at or
	// after since, the highest Seq it has: one query that tells a replica
	// which of the jobs it streams have news, whoever recorded them.
	RecentJobEvents(ctx context.Context, since time.Time) (map[string]int64, error)
	// ReportJobProgress records a running event with percent for a job
	// worker holds; EConflict when the lease was lost.
	ReportJobProgress(ctx context.Context, id, worker string, percent int, now time.Time) error
}

// NewJobEvent is the event of job's state as it now is: its status, and for
// a running job the progress percent when one is reported.
func NewJobEvent(job *Job, percent *int, now time.Time) *JobEvent {
	ev := &JobEvent{JobID: job.ID, Type: job.Status, Attempt: job.Attempts, CreatedAt: now}
	switch job.Status {
	case JobRunning:
		ev.Percent = percent
	case JobSucceeded:
		ev.ImageIDs = job.ImageIDs
	case JobFailed:
		ev.ErrorCode, ev.ErrorMessage = job.ErrorCode, job.ErrorMessage
	}
	return ev
}

// WebhookEvent is the webhook event e is, "" for none: a job's first
// running event (without progress) is "started", its end "completed".
func (e *JobEvent) WebhookEvent() string {
	switch {
	case e.Terminal():
		return WebhookCompleted
	case e.Type == JobRunning && e.Percent == nil:
		return WebhookStarted
	}
	return ""
}
