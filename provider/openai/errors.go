package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/imaged/imaged/provider/upstream"
)

// errorBody is the JSON body of every API error.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Param   any    `json:"param"`
		Code    any    `json:"code"` // a string, sometimes null
	} `json:"error"`
}

// statusError maps a non-2xx answer: a refused prompt is a content-policy
// error, whose provider text is not passed on; the rest maps by status.
func (g *Generator) statusError(r *upstream.Response) error {
	var eb errorBody
	_ = json.Unmarshal(r.Body, &eb) // a body that is not the documented shape still maps by status
	code, _ := eb.Error.Code.(string)
	if code == "content_policy_violation" || code == "moderation_blocked" {
		return upstream.ContentPolicy(fmt.Errorf("%s refused the request: %s", providerName, code))
	}

	detail := fmt.Sprintf("%s (type %q, code %q)", http.StatusText(r.Status), eb.Error.Type, code)
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		// Authentication messages quote the key; the others help the logs.
		if msg := g.redact(eb.Error.Message); msg != "" {
			detail += ": " + msg
		}
	}
	ue := g.upstream.StatusError(r, errors.New(detail))
	if r.Status == http.StatusTooManyRequests && code == "insufficient_quota" {
		// A billing state, not a rate: waiting does not help.
		ue.Retryable = false
	}
	return ue
}

// redact removes the API key from provider text and bounds its length.
func (g *Generator) redact(s string) string {
	return upstream.Truncate(upstream.Redact(s, g.apiKey), 300)
}
