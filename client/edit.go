package client

import (
	"context"
	"net/http"
	"net/url"
)

// EditRequest is the body of POST /api/images/{id}/edit: a generation
// request (its aspect ratio defaulting to the source's) with a mask (the
// id of one of the caller's images) and a strength, where the model takes
// them.
type EditRequest struct {
	GenerateRequest
	Mask     string   `json:"mask,omitempty"`
	Strength *float64 `json:"strength,omitempty"`
}

// SubmitEdit queues an edit of image id as a job (Prefer: respond-async);
// Wait follows it like a generation.
func (c *Client) SubmitEdit(ctx context.Context, id string, req EditRequest, idempotencyKey string) (*Job, error) {
	body, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Prefer": {"respond-async"}}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var job Job
	path := "/api/images/" + url.PathEscape(id) + "/edit"
	if _, _, err := c.do(ctx, request{method: http.MethodPost, path: path, header: h, body: body, contentType: "application/json"}, &job); err != nil {
		return nil, err
	}
	return &job, nil
}
