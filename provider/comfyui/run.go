package comfyui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/upstream"
)

// maxMessageBytes bounds one WebSocket message (previews come as binary
// frames of a few hundred KiB when the server sends them).
const maxMessageBytes = 16 << 20

// run submits a filled workflow and returns its output images.
func (g *Generator) run(ctx context.Context, m model, t *template, values map[string]any, seed int64, n int) ([]imaged.GeneratedImage, error) {
	if err := ctx.Err(); err != nil {
		return nil, g.upstream.TransportError(ctx, 0, err)
	}
	promptID := uuid.NewString()
	clientID := "imaged-" + promptID
	workflow, filled := t.fill(values)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	events := g.listen(wctx, clientID)

	promptID, err := g.submit(ctx, m, workflow, filled, clientID, promptID)
	if err != nil {
		return nil, err
	}
	entry, err := g.follow(ctx, promptID, events)
	if err != nil {
		if ctx.Err() != nil {
			g.cancel(ctx, promptID)
		}
		return nil, err
	}
	images, err := g.outputs(ctx, entry, n)
	if err != nil {
		return nil, err
	}
	for i := range images {
		images[i].Seed = &seed // the images of one batch share the seed
	}
	return images, nil
}

// message is one JSON message of the /ws stream.
type message struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// listen opens the WebSocket for clientID and passes its JSON messages on
// until ctx ends or the connection fails, then closes the channel. It
// returns nil when the WebSocket cannot be opened: the caller polls.
func (g *Generator) listen(ctx context.Context, clientID string) <-chan message {
	wsURL := strings.Replace(g.base, "http", "ws", 1) + "/ws?clientId=" + url.QueryEscape(clientID)
	h := http.Header{}
	g.header(h)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPClient: g.hc, HTTPHeader: h})
	if err != nil {
		return nil
	}
	conn.SetReadLimit(maxMessageBytes)
	out := make(chan message, 64)
	go func() {
		defer close(out)
		defer conn.CloseNow()
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			if typ != websocket.MessageText {
				continue // previews
			}
			var msg message
			if json.Unmarshal(data, &msg) != nil {
				continue
			}
			select {
			case out <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// promptAnswer is the answer of POST /prompt.
type promptAnswer struct {
	PromptID   string          `json:"prompt_id"`
	Number     float64         `json:"number"`
	NodeErrors json.RawMessage `json:"node_errors"`
}

// submit queues the workflow under promptID. When the answer is lost, it
// asks ComfyUI whether the prompt is queued anyway: if so the run goes on,
// if not the failure stands (and a retry is safe), and if ComfyUI cannot
// tell, the failure is not retryable.
func (g *Generator) submit(ctx context.Context, m model, workflow map[string]any, filled map[string][]string, clientID, promptID string) (string, error) {
	body := map[string]any{"prompt": workflow, "client_id": clientID, "prompt_id": promptID}
	hreq, err := upstream.NewJSONRequest(ctx, g.base+"/prompt", body)
	if err != nil {
		return "", err
	}
	g.header(hreq.Header)
	answer, err := g.upstream.Do(hreq)
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		return "", ref.mapped(m.ID, filled)
	case err != nil:
		var ue *imaged.UpstreamError
		var op *net.OpError
		if ctx.Err() != nil || !errors.As(err, &ue) || !ue.Retryable || (errors.As(err, &op) && op.Op == "dial") {
			return "", err // refused, or never connected: nothing was queued
		}
		queued, lerr := g.known(ctx, promptID)
		switch {
		case lerr != nil:
			ue.Retryable = false // it may be queued: a retry could run it twice
			ue.Err = fmt.Errorf("%w; and whether prompt %s was queued is unknown: %v", ue.Err, promptID, lerr)
			return "", ue
		case queued:
			return promptID, nil
		}
		return "", err
	}
	var pa promptAnswer
	if err := json.Unmarshal(answer.Body, &pa); err != nil {
		return "", g.upstream.Malformed(answer, fmt.Errorf("decoding the answer of /prompt: %w", err))
	}
	if pa.PromptID != "" && pa.PromptID != promptID {
		return pa.PromptID, nil // a server that chose its own id
	}
	return promptID, nil
}

// known reports whether ComfyUI holds promptID, in its queue or history.
func (g *Generator) known(ctx context.Context, promptID string) (bool, error) {
	if _, found, err := g.history(ctx, promptID); err != nil || found {
		return found, err
	}
	var q struct {
		Running [][]any `json:"queue_running"`
		Pending [][]any `json:"queue_pending"`
	}
	if err := g.getJSON(ctx, "/queue", &q); err != nil {
		return false, err
	}
	for _, item := range slices.Concat(q.Running, q.Pending) {
		if len(item) > 1 && item[1] == promptID {
			return true, nil
		}
	}
	return false, nil
}

// historyEntry is one prompt of GET /history/{prompt_id}.
type historyEntry struct {
	Outputs map[string]struct {
		Images []fileRef `json:"images"`
	} `json:"outputs"`
	Status struct {
		StatusStr string              `json:"status_str"`
		Completed bool                `json:"completed"`
		Messages  [][]json.RawMessage `json:"messages"`
	} `json:"status"`
}

// fileRef names an output file for /view.
type fileRef struct {
	Filename  string `json:"filename"`
	Subfolder string `json:"subfolder"`
	Type      string `json:"type"`
}

// history returns the history entry of promptID; found is false while the
// prompt has not finished (ComfyUI adds it to the history when it ends).
func (g *Generator) history(ctx context.Context, promptID string) (*historyEntry, bool, error) {
	var h map[string]*historyEntry
	if err := g.getJSON(ctx, "/history/"+url.PathEscape(promptID), &h); err != nil {
		return nil, false, err
	}
	e, ok := h[promptID]
	return e, ok && e != nil, nil
}

// follow waits for promptID to end: over the WebSocket when there is one
// (progress included), polling the history otherwise and now and then
// anyway (a message can be lost with a dropped connection).
func (g *Generator) follow(ctx context.Context, promptID string, events <-chan message) (*historyEntry, error) {
	interval := g.poll
	if events != nil {
		interval = 5 * g.poll
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	check := func() (*historyEntry, bool, error) {
		e, found, err := g.history(ctx, promptID)
		if err != nil || !found {
			return nil, false, err
		}
		switch {
		case e.Status.StatusStr == "error":
			return nil, true, g.failure(e)
		case e.Status.Completed || e.Status.StatusStr == "success":
			return e, true, nil
		}
		return nil, false, nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil, g.upstream.TransportError(ctx, 0, ctx.Err())
		case msg, ok := <-events:
			if !ok {
				events = nil
				tick.Reset(g.poll)
				continue
			}
			finished, err := g.event(ctx, promptID, msg)
			if err != nil {
				return nil, err
			}
			if !finished {
				continue
			}
			// The history is written as the run ends; poll until it is.
			tick.Reset(g.poll)
			if e, done, err := check(); done || err != nil {
				return e, err
			}
		case <-tick.C:
			e, done, err := check()
			if err != nil {
				var ue *imaged.UpstreamError
				if errors.As(err, &ue) && ue.Retryable && ctx.Err() == nil {
					continue // a passing failure of a poll: the run goes on
				}
				return nil, err
			}
			if done {
				return e, nil
			}
		}
	}
}

// event reads one WebSocket message about promptID: progress is reported,
// an error returned, and finished is true once the run succeeded.
func (g *Generator) event(ctx context.Context, promptID string, msg message) (finished bool, err error) {
	var d struct {
		PromptID string   `json:"prompt_id"`
		Value    float64  `json:"value"`
		Max      float64  `json:"max"`
		Node     *string  `json:"node"`
		NodeID   string   `json:"node_id"`
		NodeType string   `json:"node_type"`
		ExcType  string   `json:"exception_type"`
		ExcMsg   string   `json:"exception_message"`
		Executed []string `json:"executed"`
	}
	if json.Unmarshal(msg.Data, &d) != nil || d.PromptID != promptID {
		return false, nil
	}
	switch msg.Type {
	case "execution_start":
		imaged.ReportProgress(ctx, 0)
	case "progress":
		if d.Max > 0 {
			imaged.ReportProgress(ctx, int(d.Value*100/d.Max))
		}
	case "executing":
		return d.Node == nil, nil // older servers end a run with node null
	case "execution_success":
		return true, nil
	case "execution_error":
		return false, executionError(d.NodeID, d.NodeType, d.ExcType, d.ExcMsg)
	case "execution_interrupted":
		return false, &imaged.Error{Code: imaged.EGeneration, Message: "The ComfyUI run was interrupted on the server",
			Err: fmt.Errorf("comfyui: prompt %s interrupted at node %s (%s)", promptID, d.NodeID, d.NodeType)}
	}
	return false, nil
}

// failure is the error of a history entry whose run failed.
func (g *Generator) failure(e *historyEntry) error {
	for _, m := range e.Status.Messages {
		if len(m) != 2 {
			continue
		}
		var typ string
		var d struct {
			NodeID   string `json:"node_id"`
			NodeType string `json:"node_type"`
			ExcType  string `json:"exception_type"`
			ExcMsg   string `json:"exception_message"`
		}
		if json.Unmarshal(m[0], &typ) == nil && json.Unmarshal(m[1], &d) == nil {
			switch typ {
			case "execution_error":
				return executionError(d.NodeID, d.NodeType, d.ExcType, d.ExcMsg)
			case "execution_interrupted":
				return &imaged.Error{Code: imaged.EGeneration, Message: "The ComfyUI run was interrupted on the server"}
			}
		}
	}
	return &imaged.Error{Code: imaged.EGeneration, Message: "The ComfyUI run failed"}
}

// executionError names the node that failed; the exception's text, which
// may quote paths of the server, goes to the log only.
func executionError(nodeID, nodeType, excType, excMsg string) error {
	msg := fmt.Sprintf("ComfyUI failed running node %s (%s)", nodeID, nodeType)
	if excType != "" {
		msg += ": " + upstream.Truncate(excType, 100)
	}
	return &imaged.Error{Code: imaged.EGeneration, Message: msg,
		Err: fmt.Errorf("comfyui: %s", upstream.Truncate(excMsg, 500))}
}

// outputs fetches the images of a finished run from /view: the saved ones
// (type "output"), or the previews when the workflow saves none; nodes in
// id order, at most n.
func (g *Generator) outputs(ctx context.Context, e *historyEntry, n int) ([]imaged.GeneratedImage, error) {
	ids := nodeIDs(e.Outputs)
	var saved, other []fileRef
	for _, id := range ids {
		for _, f := range e.Outputs[id].Images {
			if f.Type == "output" {
				saved = append(saved, f)
			} else {
				other = append(other, f)
			}
		}
	}
	files := saved
	if len(files) == 0 {
		files = other
	}
	if len(files) == 0 {
		return nil, &imaged.UpstreamError{Provider: providerName, Status: http.StatusOK, Err: errors.New("the run finished without an output image")}
	}
	files = files[:min(len(files), n)]
	images := make([]imaged.GeneratedImage, 0, len(files))
	for _, f := range files {
		q := url.Values{"filename": {f.Filename}, "subfolder": {f.Subfolder}, "type": {f.Type}}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/view?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		g.header(hreq.Header)
		got, err := g.upstream.Do(hreq)
		if err != nil {
			return nil, err
		}
		images = append(images, imaged.GeneratedImage{Data: got.Body})
	}
	return images, nil
}

// cancel takes promptID out of the queue and interrupts it if it runs, with
// a context of its own: ctx is what ended.
func (g *Generator) cancel(ctx context.Context, promptID string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, c := range []struct {
		path string
		body any
	}{
		{"/queue", map[string]any{"delete": []string{promptID}}},
		{"/interrupt", map[string]any{"prompt_id": promptID}},
	} {
		hreq, err := upstream.NewJSONRequest(cctx, g.base+c.path, c.body)
		if err != nil {
			continue
		}
		g.header(hreq.Header)
		_, _ = g.upstream.Do(hreq) // best effort: the server may be gone
	}
}

// upload sends an input image to /upload/image and returns the name a
// LoadImage node reads it by.
func (g *Generator) upload(ctx context.Context, img imaged.InputImage, kind string) (string, error) {
	ext := map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}[img.MediaType]
	if ext == "" {
		ext = ".png"
	}
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	part, err := form.CreateFormFile("image", "imaged-"+kind+"-"+uuid.NewString()+ext)
	if err != nil {
		return "", err
	}
	part.Write(img.Data)
	form.WriteField("type", "input")
	form.WriteField("overwrite", "true")
	if err := form.Close(); err != nil {
		return "", err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/upload/image", &body)
	if err != nil {
		return "", err
	}
	hreq.Header.Set("Content-Type", form.FormDataContentType())
	g.header(hreq.Header)
	answer, err := g.upstream.Do(hreq)
	if err != nil {
		return "", err
	}
	var up struct {
		Name      string `json:"name"`
		Subfolder string `json:"subfolder"`
	}
	if err := json.Unmarshal(answer.Body, &up); err != nil || up.Name == "" {
		return "", g.upstream.Malformed(answer, fmt.Errorf("the answer of /upload/image names no file (%v)", err))
	}
	if up.Subfolder != "" {
		return up.Subfolder + "/" + up.Name, nil
	}
	return up.Name, nil
}

// getJSON GETs path and decodes its JSON answer into v.
func (g *Generator) getJSON(ctx context.Context, path string, v any) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+path, nil)
	if err != nil {
		return err
	}
	hreq.Header.Set("Accept", "application/json")
	g.header(hreq.Header)
	answer, err := g.upstream.Do(hreq)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(answer.Body, v); err != nil {
		return g.upstream.Malformed(answer, fmt.Errorf("decoding the answer of %s: %w", path, err))
	}
	return nil
}
