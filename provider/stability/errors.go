package stability

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/imaged/imaged/provider/upstream"
)

// errContentPolicy is the one answer to a refused prompt or a filtered
// image: the provider's own text is not passed on.
func errContentPolicy(why string) error {
	return upstream.ContentPolicy(fmt.Errorf("%s refused the request: %s", providerName, why))
}

// errorBody is the JSON body of every API error.
type errorBody struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Errors []string `json:"errors"`
}

// statusError maps a non-2xx answer. The API flags moderated requests with
// 403 and the error name content_moderation.
func (g *Generator) statusError(r *upstream.Response) error {
	var eb errorBody
	_ = json.Unmarshal(r.Body, &eb) // a body that is not the documented shape still maps by status
	if eb.Name == "content_moderation" {
		return errContentPolicy(eb.Name)
	}
	detail := fmt.Sprintf("%s (name %q, id %q)", http.StatusText(r.Status), g.redact(eb.Name), g.redact(eb.ID))
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden && len(eb.Errors) > 0 {
		// Authentication messages may quote the key; the others help the logs.
		detail += ": " + g.redact(strings.Join(eb.Errors, "; "))
	}
	return g.upstream.StatusError(r, errors.New(detail))
}

// redact removes the API key from provider text and bounds its length.
func (g *Generator) redact(s string) string {
	return upstream.Truncate(upstream.Redact(s, g.apiKey), 300)
}
