package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
)

// sseHeartbeat is how long a stream stays silent before a comment line
// keeps proxies and clients from closing it.
const sseHeartbeat = 15 * time.Second

// sseWriteTimeout drops a client that does not take an event in that long.
const sseWriteTimeout = 30 * time.Second

// eventJSON is the data of one Server-Sent Event of a job.
type eventJSON struct {
	JobID     string          `json:"jobId"`
	Status    string          `json:"status"`
	Attempt   int             `json:"attempt"`
	Percent   *int            `json:"percent,omitempty"`
	Images    []generatedJSON `json:"images,omitempty"`
	Error     *jobErrorJSON   `json:"error,omitempty"`
	CreatedAt string          `json:"createdAt"`
}

// handleJobEvents streams the caller's job as Server-Sent Events: one event
// per change (queued, running, running with percent, succeeded, failed), id
// the change's sequence number, ending after the job's last. A client that
// reconnects with Last-Event-ID gets the changes after that one.
func (s *Server) handleJobEvents(w http.ResponseWriter, r *http.Request) {
	var after int64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, r, imaged.Errorf(imaged.EValidation, "Last-Event-ID must be the id of an event of this stream (a whole number)"))
			return
		}
		after = n
	}
	rc := http.NewResponseController(w)
	started := false
	write := func(b []byte) error {
		if !started {
			started = true
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-store")
			h.Set("X-Accel-Buffering", "no") // nginx: pass events at once
			w.WriteHeader(http.StatusOK)
			b = append([]byte("retry: 2000\n\n"), b...)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	var buf bytes.Buffer
	send := func(v *generation.EventView) error {
		ev := eventJSON{
			JobID:     v.JobID,
			Status:    string(v.Type),
			Attempt:   v.Attempt,
			Percent:   v.Percent,
			CreatedAt: formatTime(v.CreatedAt),
		}
		if v.Type == imaged.JobSucceeded {
			ev.Images = s.generatedJSON(r, v.Images)
		}
		if v.Type == imaged.JobFailed {
			ev.Error = &jobErrorJSON{ErrorCode: string(v.ErrorCode), Message: v.ErrorMessage}
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		buf.Reset()
		buf.WriteString("id: " + strconv.FormatInt(v.Seq, 10) + "\nevent: " + string(v.Type) + "\ndata: ")
		buf.Write(data) // JSON holds no raw newline
		buf.WriteString("\n\n")
		return write(buf.Bytes())
	}
	idle := func() error { return write([]byte(": keep-alive\n\n")) }
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	err := s.gen.Watch(ctx, imaged.OwnerFrom(ctx), r.PathValue("jobId"), after, sseHeartbeat, send, idle)
	switch {
	case err == nil:
		if !started {
			// Nothing after Last-Event-ID and the stream ended (the
			// job had ended before): an empty stream that says so.
			_ = write(nil)
		}
	case !started:
		writeError(w, r, err)
	case errors.Is(err, context.Canceled), ctx.Err() != nil:
	default:
		loggerFrom(r.Context()).WarnContext(r.Context(), "event stream ended early", "err", err)
	}
}
