package http

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/imaged/imaged"
)

type secretJSON struct {
	Secret    string `json:"secret"`
	CreatedAt string `json:"createdAt"`
	// PreviousExpiresAt is until when the previous secret still signs
	// beside this one, after a rotation.
	PreviousExpiresAt *string `json:"previousExpiresAt,omitempty"`
}

func secretData(sec *imaged.WebhookSecret) secretJSON {
	j := secretJSON{Secret: sec.Secret, CreatedAt: formatTime(sec.CreatedAt)}
	if sec.Previous != "" && !sec.PreviousUntil.IsZero() {
		t := formatTime(sec.PreviousUntil)
		j.PreviousExpiresAt = &t
	}
	return j
}

func (s *Server) handleWebhookSecret(w http.ResponseWriter, r *http.Request) {
	sec, err := s.hooks.Secret(r.Context(), imaged.OwnerFrom(r.Context()))
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeData(w, http.StatusOK, "OK", secretData(sec))
}

func (s *Server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	sec, err := s.hooks.RotateSecret(r.Context(), imaged.OwnerFrom(r.Context()))
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeData(w, http.StatusOK, "Webhook secret rotated", secretData(sec))
}

type deliveryJSON struct {
	ID            string  `json:"id"`
	Event         string  `json:"event"`
	URL           string  `json:"url"`
	Status        string  `json:"status"`
	Attempts      int     `json:"attempts"`
	NextAttemptAt *string `json:"nextAttemptAt,omitempty"`
	LastStatus    int     `json:"lastStatus,omitempty"`
	LastError     string  `json:"lastError,omitempty"`
	CreatedAt     string  `json:"createdAt"`
	UpdatedAt     string  `json:"updatedAt"`
}

// handleJobDeliveries lists the webhook deliveries of the caller's job.
func (s *Server) handleJobDeliveries(w http.ResponseWriter, r *http.Request) {
	owner := imaged.OwnerFrom(r.Context())
	job, err := s.gen.Job(r.Context(), owner, r.PathValue("jobId"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	ds, err := s.hooks.Deliveries(r.Context(), owner, job.ID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = deliveryJSON{ID: d.ID, Event: d.Event, URL: d.URL, Status: string(d.Status), Attempts: d.Attempts,
			LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: formatTime(d.CreatedAt), UpdatedAt: formatTime(d.UpdatedAt)}
		if d.Status == imaged.DeliveryPending {
			t := formatTime(d.NextAttemptAt)
			out[i].NextAttemptAt = &t
		}
	}
	writeData(w, http.StatusOK, "OK", out)
}

// webhookPayload is the body of a delivery: Standard Webhooks' envelope of
// a type, the time of the event and the job as the API shows it.
type webhookPayload struct {
	Type      string  `json:"type"`
	Timestamp string  `json:"timestamp"`
	Data      jobJSON `json:"data"`
}

// WebhookPayload renders the body of delivery d: the job as
// GET /api/images/generations/{jobId} shows it, its image URLs on base (the
// configured BaseURL wins) when the service has no public URL of its own.
func (s *Server) WebhookPayload(ctx context.Context, d *imaged.WebhookDelivery, base string) ([]byte, error) {
	v, err := s.gen.Job(ctx, d.Owner, d.JobID)
	if err != nil {
		return nil, err
	}
	r := &http.Request{Host: "localhost", URL: &url.URL{}}
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		r.Host = u.Host
	}
	r = r.WithContext(ctx)
	data := s.jobJSON(r, v)
	if d.Event == imaged.WebhookStarted {
		// The job as it was when it started, even if it has ended since.
		data.Status, data.Images, data.Error = string(imaged.JobRunning), []generatedJSON{}, nil
	}
	return json.Marshal(webhookPayload{Type: "generation." + d.Event, Timestamp: formatTime(d.CreatedAt), Data: data})
}
