package imaged

import (
	"context"
	"strings"
	"time"
)

// Webhook events a generation request may subscribe to.
const (
	WebhookStarted   = "started"   // a worker began the job (its first run)
	WebhookCompleted = "completed" // the job succeeded or failed
)

// JobWebhook is where a job's owner wants to hear of it: a URL and the
// events it subscribed to.
type JobWebhook struct {
	URL    string
	Events []string // WebhookStarted, WebhookCompleted
}

// Has reports whether w subscribed to event.
func (w *JobWebhook) Has(event string) bool {
	if w == nil {
		return false
	}
	for _, e := range w.Events {
		if e == event {
			return true
		}
	}
	return false
}

// DeliveryStatus is the state of one webhook delivery.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"   // to be sent (again) at NextAttemptAt
	DeliveryDelivered DeliveryStatus = "delivered" // the receiver answered 2xx
	DeliveryFailed    DeliveryStatus = "failed"    // given up: 410 Gone, or the schedule ran out
)

// WebhookDelivery is one event of one job for its webhook. The job store
// queues it in the transaction that records the event (so it survives any
// crash), at most once per job and event; its ID is the webhook-id the
// receiver sees on every attempt.
type WebhookDelivery struct {
	ID    string // "msg_" + job id (hex) + "_" + event, the same on every replica
	Owner string
	JobID string
	Event string // WebhookStarted or WebhookCompleted
	URL   string
	// Body is the payload, rendered at the first attempt and sent as is on
	// every retry; nil until then.
	Body          []byte
	Status        DeliveryStatus
	Attempts      int // attempts made
	NextAttemptAt time.Time
	LeaseOwner    string
	LeaseUntil    time.Time
	LastStatus    int    // the receiver's last HTTP status, 0 if none
	LastError     string // why the last attempt failed, for the operator
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// WebhookSecret is an owner's signing secret ("whsec_" + base64 of 32
// bytes). After a rotation the previous one keeps signing beside the new
// one until PreviousUntil, so receivers can switch without losing events.
type WebhookSecret struct {
	Owner         string
	Secret        string
	Previous      string // "" when none
	PreviousUntil time.Time
	CreatedAt     time.Time // of Secret
}

// WebhookStore keeps webhook secrets and deliveries in the database, shared
// by every replica.
type WebhookStore interface {
	// WebhookSecret returns owner's secret, storing candidate first when the
	// owner has none (two callers racing get the same one).
	WebhookSecret(ctx context.Context, owner, candidate string, now time.Time) (*WebhookSecret, error)
	// RotateWebhookSecret makes next owner's secret; the current one becomes
	// Previous until previousUntil.
	RotateWebhookSecret(ctx context.Context, owner, next string, now, previousUntil time.Time) (*WebhookSecret, error)
	// ClaimWebhookDelivery leases to worker the pending delivery due the
	// longest (NextAttemptAt <= now, no live lease) until leaseUntil; (nil,
	// nil) when none is due. One delivery is leased to one worker at a time.
	ClaimWebhookDelivery(ctx context.Context, worker string, now, leaseUntil time.Time) (*WebhookDelivery, error)
	// FinishWebhookAttempt records an attempt of a delivery worker holds
	// (Status, Attempts, NextAttemptAt, Body, LastStatus, LastError) and
	// releases the lease; EConflict when the lease was lost.
	FinishWebhookAttempt(ctx context.Context, d *WebhookDelivery, worker string) error
	// WebhookDeliveries lists the deliveries of owner's job, oldest first.
	WebhookDeliveries(ctx context.Context, owner, jobID string) ([]*WebhookDelivery, error)
}

// WebhookDeliveryID is the webhook-id of job's event: the same whichever
// replica queues or sends it, so receivers can drop repeats.
func WebhookDeliveryID(jobID, event string) string {
	return "msg_" + strings.ReplaceAll(jobID, "-", "") + "_" + event
}

// StoredEvents is the stored form of Events: comma-separated.
func (w *JobWebhook) StoredEvents() string {
	if w == nil {
		return ""
	}
	return strings.Join(w.Events, ",")
}

// StoredWebhook reads a job's stored webhook columns; nil when it has none.
func StoredWebhook(url, events string) *JobWebhook {
	if url == "" {
		return nil
	}
	w := &JobWebhook{URL: url}
	if events != "" {
		w.Events = strings.Split(events, ",")
	}
	return w
}

// URLOrEmpty is w's URL, "" for nil.
func (w *JobWebhook) URLOrEmpty() string {
	if w == nil {
		return ""
	}
	return w.URL
}
