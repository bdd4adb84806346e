package comfyui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// refusal is ComfyUI's 400 answer to POST /prompt: the workflow failed
// validation, as a whole (error) or node by node (node_errors).
type refusal struct {
	Whole struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details string `json:"details"`
	} `json:"error"`
	NodeErrors map[string]struct {
		Errors []struct {
			Type      string `json:"type"`
			Message   string `json:"message"`
			Details   string `json:"details"`
			ExtraInfo struct {
				InputName string `json:"input_name"`
			} `json:"extra_info"`
		} `json:"errors"`
		ClassType string `json:"class_type"`
	} `json:"node_errors"`
}

func (r *refusal) Error() string {
	return fmt.Sprintf("comfyui refused the workflow: %s: %s", r.Whole.Type, r.Whole.Message)
}

// mapped is the error the caller sees. The first failing node (by id) is
// named; when ComfyUI refused an input that a placeholder filled, the
// request's value is at fault (INVALID_IMAGE_PROMPT), else the template or
// the server (GENERATION_ERROR). Details, which list the server's files,
// stay in the cause.
func (r *refusal) mapped(modelID string, filled map[string][]string) error {
	ids := nodeIDs(r.NodeErrors)
	cause := fmt.Errorf("%w (%s)", r, upstream.Truncate(r.Whole.Details, 500))
	for _, id := range ids {
		ne := r.NodeErrors[id]
		for _, e := range ne.Errors {
			input := e.ExtraInfo.InputName
			what := upstream.Truncate(e.Message, 120)
			if input != "" {
				what += " (input " + upstream.Truncate(input, 60) + ")"
			}
			cause = fmt.Errorf("%w; node %s (%s): %s: %s", cause, id, ne.ClassType, e.Type, upstream.Truncate(e.Details, 300))
			if input != "" && slices.Contains(filled[id], input) {
				return &imaged.Error{Code: imaged.EInvalidPrompt, Err: cause, Message: fmt.Sprintf(
					"The ComfyUI workflow of model %q refused a value of the request at node %s (%s): %s", modelID, id, ne.ClassType, what)}
			}
			return &imaged.Error{Code: imaged.EGeneration, Err: cause, Message: fmt.Sprintf(
				"The ComfyUI workflow of model %q is invalid at node %s (%s): %s", modelID, id, ne.ClassType, what)}
		}
	}
	return &imaged.Error{Code: imaged.EGeneration, Err: cause, Message: fmt.Sprintf(
		"ComfyUI refused the workflow of model %q: %s", modelID, upstream.Truncate(strings.TrimSpace(r.Whole.Message), 120))}
}

// parseRefusal reads a 400 answer of POST /prompt; nil when it is not one.
func parseRefusal(r *upstream.Response) *refusal {
	if r.Status != http.StatusBadRequest {
		return nil
	}
	var ref refusal
	if json.Unmarshal(r.Body, &ref) != nil || (ref.Whole.Type == "" && len(ref.NodeErrors) == 0) {
		return nil
	}
	return &ref
}
