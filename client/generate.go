package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// GenerateRequest is the body of POST /api/images/generate. Only Prompt is
// required; the service fills in the defaults of the provider and model.
type GenerateRequest struct {
	Prompt           string `json:"prompt"`
	AspectRatio      string `json:"aspectRatio,omitempty"`
	ArtStyle         string `json:"artStyle,omitempty"`
	ArtDescription   string `json:"artDescription,omitempty"`
	ThemeStyle       string `json:"themeStyle,omitempty"`
	ThemeDescription string `json:"themeDescription,omitempty"`
	Model            string `json:"model,omitempty"`
	Provider         string `json:"provider,omitempty"`
	N                int    `json:"n,omitempty"`
	Seed             *int64 `json:"seed,omitempty"`
	NegativePrompt   string `json:"negativePrompt,omitempty"`
}

// GeneratedImage is one image of a generation: the image object plus the
// fields the original generation API documented.
type GeneratedImage struct {
	Image
	MimeType string    `json:"mimeType"`
	Created  time.Time `json:"created"`
}

// Job statuses.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job is an asynchronous generation.
type Job struct {
	ID        string           `json:"id"`
	Status    string           `json:"status"`
	Provider  string           `json:"provider"`
	Model     string           `json:"model,omitempty"`
	Prompt    string           `json:"prompt,omitempty"`
	ParentID  string           `json:"parentId,omitempty"` // edits: the image edited
	Attempts  int              `json:"attempts"`
	CreatedAt time.Time        `json:"createdAt"`
	UpdatedAt time.Time        `json:"updatedAt"`
	Images    []GeneratedImage `json:"images"`
	Error     *JobError        `json:"error,omitempty"`
}

// Done reports whether the job has ended, well or not.
func (j *Job) Done() bool { return j.Status == JobSucceeded || j.Status == JobFailed }

// JobError is why a job failed.
type JobError struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// Provider is an enabled provider and its models, the first the default.
type Provider struct {
	Name    string  `json:"provider"`
	Default bool    `json:"default"`
	Models  []Model `json:"models"`
}

// Model is what one model can be asked for.
type Model struct {
	ID                     string   `json:"id"`
	Description            string   `json:"description"`
	AspectRatios           []string `json:"aspectRatios"`
	MaxImages              int      `json:"maxImages"`
	MaxPromptLength        int      `json:"maxPromptLength"`
	SupportsSeed           bool     `json:"supportsSeed"`
	SupportsNegativePrompt bool     `json:"supportsNegativePrompt"`
	SupportsEdit           bool     `json:"supportsEdit"`
	SupportsMask           bool     `json:"supportsMask"`
	SupportsStrength       bool     `json:"supportsStrength"`
}

// Models lists the providers and models the service offers.
func (c *Client) Models(ctx context.Context) ([]Provider, error) {
	var ps []Provider
	if _, _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/images/models"}, &ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// Generate runs a generation and waits for its images (bounded by the
// service's generation timeout).
func (c *Client) Generate(ctx context.Context, req GenerateRequest) ([]GeneratedImage, error) {
	body, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	var imgs []GeneratedImage
	if _, _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/images/generate", body: body, contentType: "application/json"}, &imgs); err != nil {
		return nil, err
	}
	return imgs, nil
}

// Submit queues a generation as a job (Prefer: respond-async). A non-empty
// idempotencyKey makes a retry of the same request return the same job.
func (c *Client) Submit(ctx context.Context, req GenerateRequest, idempotencyKey string) (*Job, error) {
	body, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Prefer": {"respond-async"}}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var job Job
	if _, _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/images/generate", header: h, body: body, contentType: "application/json"}, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// Job returns the state of a job.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	job, _, err := c.job(ctx, id)
	return job, err
}

func (c *Client) job(ctx context.Context, id string) (*Job, time.Duration, error) {
	var job Job
	_, h, err := c.do(ctx, request{method: http.MethodGet, path: "/api/images/generations/" + url.PathEscape(id)}, &job)
	if err != nil {
		return nil, 0, err
	}
	return &job, retryAfter(h), nil
}

// maxPoll bounds the wait between two polls of a job.
const maxPoll = 5 * time.Second

// Wait polls a job until it ends or ctx is done, calling progress (when not
// nil) with every state seen. It waits what the service's Retry-After asks
// (at most 5 s, at least 200 ms). A failed job is returned with its Error
// set, and a nil error: the call itself worked.
func (c *Client) Wait(ctx context.Context, id string, progress func(*Job)) (*Job, error) {
	for {
		job, wait, err := c.job(ctx, id)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(job)
		}
		if job.Done() {
			return job, nil
		}
		wait = min(max(wait, 200*time.Millisecond), maxPoll)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return job, ctx.Err()
		case <-t.C:
		}
	}
}

func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if d, err := time.ParseDuration(h.Get("Retry-After") + "s"); err == nil && d > 0 {
		return d
	}
	return 0
}
