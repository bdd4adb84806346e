package http

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
)

// maxGenerateBody bounds a generation request's JSON.
const maxGenerateBody = 64 << 10

// generatedJSON is one image of a generation answer: the fields the original
// API documented (url, mimeType, prompt, created) beside the image object.
type generatedJSON struct {
	imageJSON
	MimeType string `json:"mimeType"`
	Created  string `json:"created"`
}

type jobJSON struct {
	ID        string          `json:"id"`
	Status    string          `json:"status"`
	Provider  string          `json:"provider"`
	Model     string          `json:"model,omitempty"`
	Prompt    string          `json:"prompt,omitempty"`
	ParentID  string          `json:"parentId,omitempty"`
	Attempts  int             `json:"attempts"`
	CreatedAt string          `json:"createdAt"`
	UpdatedAt string          `json:"updatedAt"`
	Images    []generatedJSON `json:"images"`
	Error     *jobErrorJSON   `json:"error,omitempty"`
	Webhook   *webhookJSON    `json:"webhook,omitempty"`
}

type webhookJSON struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

type jobErrorJSON struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

func (s *Server) generatedJSON(r *http.Request, imgs []*imaged.Image) []generatedJSON {
	out := make([]generatedJSON, len(imgs))
	for i, img := range imgs {
		out[i] = generatedJSON{imageJSON: s.imageJSON(r, img), MimeType: img.MediaType, Created: formatTime(img.CreatedAt)}
	}
	return out
}

func (s *Server) jobJSON(r *http.Request, v *generation.JobView) jobJSON {
	j := jobJSON{
		ID:        v.ID,
		Status:    string(v.Status),
		Provider:  v.Provider,
		Model:     v.Request.Model,
		Prompt:    v.Request.Prompt,
		ParentID:  v.EditOf,
		Attempts:  v.Attempts,
		CreatedAt: formatTime(v.CreatedAt),
		UpdatedAt: formatTime(v.UpdatedAt),
		Images:    s.generatedJSON(r, v.Images),
	}
	if v.Status == imaged.JobFailed {
		j.Error = &jobErrorJSON{ErrorCode: string(v.ErrorCode), Message: v.ErrorMessage}
	}
	if h := v.Webhook; h != nil {
		j.Webhook = &webhookJSON{URL: h.URL, Events: h.Events}
	}
	return j
}

// decodeGenerateRequest reads the JSON body strictly: unknown fields and
// trailing data are refused, so typos do not pass silently.
func decodeGenerateRequest(w http.ResponseWriter, r *http.Request) (generation.Request, error) {
	var req generation.Request
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return req, imaged.Errorf(imaged.EValidation, "The body must be JSON (Content-Type: application/json)")
	}
	err := decodeStrict(http.MaxBytesReader(w, r.Body, maxGenerateBody), &req, "a generation request")
	return req, err
}

// decodeStrict reads one JSON object into v, refusing unknown fields and
// trailing data; what names the body in messages. An empty body is a
// missing prompt.
func decodeStrict(body io.Reader, v any, what string) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return imaged.Errorf(imaged.EInvalidPrompt, "prompt is required")
		}
		return imaged.Errorf(imaged.EValidation, "The body is not a valid %s: %s", what, jsonProblem(err))
	}
	if dec.More() {
		return imaged.Errorf(imaged.EValidation, "The body must hold one JSON object")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return "it must be a JSON object"
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	case errors.As(err, &se):
		return "malformed JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

// preferAsync reports whether the client asked for an asynchronous answer
// (RFC 7240 Prefer: respond-async).
func preferAsync(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(strings.SplitN(p, ";", 2)[0]), "respond-async") {
				return true
			}
		}
	}
	return false
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	req, err := decodeGenerateRequest(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	owner := imaged.OwnerFrom(r.Context())
	if preferAsync(r) {
		job, err := s.gen.Submit(r.Context(), owner, req)
		if err != nil {
			writeError(w, r, err)
			return
		}
		loc := "/api/images/generations/" + job.ID
		w.Header().Set("Location", loc)
		w.Header().Set("Preference-Applied", "respond-async")
		w.Header().Set("Retry-After", "1")
		writeData(w, http.StatusAccepted, "Generation queued", s.jobJSON(r, job))
		return
	}
	imgs, err := s.gen.Generate(r.Context(), owner, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, "OK", s.generatedJSON(r, imgs))
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.gen.Job(r.Context(), imaged.OwnerFrom(r.Context()), r.PathValue("jobId"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if job.Status == imaged.JobQueued || job.Status == imaged.JobRunning {
		w.Header().Set("Retry-After", "1")
	}
	writeData(w, http.StatusOK, "OK", s.jobJSON(r, job))
}

// handleListJobs lists the caller's jobs, newest first: ?status= (queued,
// running, succeeded, failed), ?pageSize= (1-100, 20) and ?cursor= (the
// signed nextCursor of the previous page).
func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	owner := imaged.OwnerFrom(r.Context())
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, imaged.Errorf(imaged.EValidation, "The query string is malformed (an invalid percent-escape or a semicolon)"))
		return
	}
	f := imaged.JobFilter{Owner: owner, Limit: generation.DefaultJobPageSize}
	switch st := imaged.JobStatus(q.Get("status")); st {
	case "", imaged.JobQueued, imaged.JobRunning, imaged.JobSucceeded, imaged.JobFailed:
		f.Status = st
	default:
		writeError(w, r, imaged.Errorf(imaged.EValidation, "status must be queued, running, succeeded or failed"))
		return
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > generation.MaxJobPageSize {
			writeError(w, r, imaged.Errorf(imaged.EValidation, "pageSize must be a whole number from 1 to %d", generation.MaxJobPageSize))
			return
		}
		f.Limit = n
	}
	current := 1
	if c := q.Get("cursor"); c != "" {
		if f.Cursor, err = s.decodeCursor(owner, c); err != nil {
			writeError(w, r, err)
			return
		}
		current = max(f.Cursor.Page, 1)
	}
	list, err := s.gen.Jobs(r.Context(), f)
	if err != nil {
		writeError(w, r, err)
		return
	}
	data := make([]jobJSON, len(list.Jobs))
	for i, v := range list.Jobs {
		data[i] = s.jobJSON(r, v)
	}
	p := &pagination{CurrentPage: current, PageSize: f.Limit, TotalItems: list.Total, TotalPages: totalPages(list.Total, f.Limit)}
	if list.Next != nil {
		list.Next.Page = current + 1
		c := s.encodeCursor(owner, list.Next)
		p.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, successBody{Success: true, Code: http.StatusOK, Message: "OK", Data: data, Pagination: p})
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeData(w, http.StatusOK, "OK", s.gen.Providers())
}
