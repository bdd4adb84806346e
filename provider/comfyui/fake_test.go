package comfyui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

// fakeComfy reproduces the ComfyUI server routes the adapter uses, as
// ComfyUI's server.py serves them: POST /prompt (validation, node_errors,
// the client's prompt_id honoured), the /ws stream of a client_id (status,
// execution_start, executing, progress, executed, execution_success or
// execution_error, execution_interrupted), GET /history/{prompt_id} (empty
// until the run ends), GET /queue, GET /view, POST /interrupt, POST /queue
// with delete, and POST /upload/image.
type fakeComfy struct {
	t     *testing.T
	srv   *httptest.Server
	token string // required as a bearer token when set

	// What a run does; the test sets it before the run.
	steps      int           // progress messages of the sampler
	stepDelay  time.Duration // between them
	nodeErrors map[string]any
	failNode   string // execution_error at this node when set
	hang       bool   // run until interrupted
	noWS       bool   // /ws answers 404 (a proxy without WebSocket)
	dropWS     bool   // the WebSocket closes after execution_start
	loseAnswer bool   // queue the prompt, then cut the connection
	outputs    int    // images saved, default: the batch size
	image      []byte

	mu          sync.Mutex
	prompts     []map[string]any // POST /prompt bodies
	sockets     map[string]*websocket.Conn
	history     map[string]any
	queue       []string
	interrupted []string
	deleted     []string
	uploads     map[string][]byte
	files       map[string][]byte
	wsOpened    int
}

func newFakeComfy(t *testing.T) *fakeComfy {
	f := &fakeComfy{t: t, steps: 4, sockets: map[string]*websocket.Conn{}, history: map[string]any{},
		uploads: map[string][]byte{}, files: map[string][]byte{},
		image: upstreamtest.PNG(t, 4, 4, color.RGBA{R: 200, G: 30, B: 60, A: 255})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", f.ws)
	mux.HandleFunc("POST /prompt", f.prompt)
	mux.HandleFunc("GET /history/{id}", f.getHistory)
	mux.HandleFunc("GET /queue", f.getQueue)
	mux.HandleFunc("POST /queue", f.postQueue)
	mux.HandleFunc("POST /interrupt", f.interrupt)
	mux.HandleFunc("GET /view", f.view)
	mux.HandleFunc("POST /upload/image", f.upload)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	f.srv = httptest.NewServer(f.auth(mux))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeComfy) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, "401: Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeComfy) ws(w http.ResponseWriter, r *http.Request) {
	if f.noWS {
		http.NotFound(w, r)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	sid := r.URL.Query().Get("clientId")
	f.mu.Lock()
	f.sockets[sid] = conn
	f.wsOpened++
	f.mu.Unlock()
	f.send(sid, "status", map[string]any{"status": map[string]any{"exec_info": map[string]any{"queue_remaining": 0}}, "sid": sid})
	// Read until the client goes (the server ignores what clients send).
	for {
		if _, _, err := conn.Read(r.Context()); err != nil {
			f.mu.Lock()
			if f.sockets[sid] == conn {
				delete(f.sockets, sid)
			}
			f.mu.Unlock()
			return
		}
	}
}

// send writes one message to the client's socket, if it has one.
func (f *fakeComfy) send(sid, typ string, data map[string]any) {
	f.mu.Lock()
	conn := f.sockets[sid]
	f.mu.Unlock()
	if conn == nil {
		return
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "data": data})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Write(ctx, websocket.MessageText, b)
}

func (f *fakeComfy) dropSocket(sid string) {
	f.mu.Lock()
	conn := f.sockets[sid]
	delete(f.sockets, sid)
	f.mu.Unlock()
	if conn != nil {
		conn.CloseNow()
	}
}

func (f *fakeComfy) prompt(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "invalid_prompt", "message": "Invalid JSON", "details": "", "extra_info": map[string]any{}}, "node_errors": map[string]any{}})
		return
	}
	prompt, ok := body["prompt"].(map[string]any)
	if !ok {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": map[string]any{}}, "node_errors": map[string]any{}})
		return
	}
	raw, _ := json.Marshal(prompt)
	if strings.Contains(string(raw), "{{") {
		f.t.Errorf("the workflow still holds a placeholder: %s", raw)
	}
	for id, n := range prompt {
		node, _ := n.(map[string]any)
		if node["class_type"] == nil || node["inputs"] == nil {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "invalid_prompt",
				"message": "Cannot execute because a node is missing the class_type property.", "details": "Node ID '#" + id + "'", "extra_info": map[string]any{}}, "node_errors": map[string]any{}})
			return
		}
	}
	id, _ := body["prompt_id"].(string)
	sid, _ := body["client_id"].(string)
	if id == "" || sid == "" {
		f.t.Errorf("POST /prompt without its own prompt_id or client_id: %v %v", body["prompt_id"], body["client_id"])
	}
	f.mu.Lock()
	f.prompts = append(f.prompts, body)
	nodeErrors := f.nodeErrors
	f.mu.Unlock()
	if nodeErrors != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": map[string]any{}}, "node_errors": nodeErrors})
		return
	}
	f.mu.Lock()
	f.queue = append(f.queue, id)
	n := len(f.prompts)
	f.mu.Unlock()
	go f.run(id, sid, prompt)
	if f.loseAnswer {
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
		return
	}
	writeJSON(w, 200, map[string]any{"prompt_id": id, "number": n, "node_errors": map[string]any{}})
}

// batch reads the batch size the workflow asks for.
func batch(prompt map[string]any) int {
	for _, n := range prompt {
		in, _ := n.(map[string]any)["inputs"].(map[string]any)
		for _, k := range []string{"batch_size", "amount"} {
			if v, ok := in[k].(float64); ok {
				return int(v)
			}
		}
	}
	return 1
}

func (f *fakeComfy) run(id, sid string, prompt map[string]any) {
	time.Sleep(5 * time.Millisecond) // the client's WebSocket is open before it submits
	ts := time.Now().UnixMilli()
	f.send(sid, "execution_start", map[string]any{"prompt_id": id, "timestamp": ts})
	if f.dropWS {
		f.dropSocket(sid)
	}
	f.send(sid, "execution_cached", map[string]any{"nodes": []string{}, "prompt_id": id, "timestamp": ts})
	messages := []any{[]any{"execution_start", map[string]any{"prompt_id": id, "timestamp": ts}}}
	for _, node := range []string{"4", "6", "7", "5", "3"} {
		f.send(sid, "executing", map[string]any{"node": node, "display_node": node, "prompt_id": id})
		if node == f.failNode {
			data := map[string]any{"prompt_id": id, "node_id": node, "node_type": "KSampler", "executed": []string{"4"},
				"exception_message": "Allocation on device /home/comfy/models failed", "exception_type": "torch.OutOfMemoryError",
				"traceback": []string{"..."}, "current_inputs": map[string]any{}, "current_outputs": map[string]any{}}
			f.send(sid, "execution_error", data)
			f.finish(id, map[string]any{"outputs": map[string]any{}, "status": map[string]any{"status_str": "error", "completed": false,
				"messages": append(messages, []any{"execution_error", data})}})
			return
		}
		if node == "3" {
			for step := 1; step <= f.steps; step++ {
				if f.hang {
					step = 1 // runs until interrupted
				}
				if f.isInterrupted(id) {
					data := map[string]any{"prompt_id": id, "node_id": "3", "node_type": "KSampler", "executed": []string{"4"}}
					f.send(sid, "execution_interrupted", data)
					f.finish(id, map[string]any{"outputs": map[string]any{}, "status": map[string]any{"status_str": "error", "completed": false,
						"messages": append(messages, []any{"execution_interrupted", data})}})
					return
				}
				f.send(sid, "progress", map[string]any{"value": step, "max": f.steps, "prompt_id": id, "node": "3"})
				time.Sleep(f.stepDelay + time.Millisecond)
			}
		}
	}
	count := batch(prompt)
	if f.outputs > 0 {
		count = f.outputs
	}
	var images []any
	f.mu.Lock()
	for i := range count {
		name := fmt.Sprintf("imaged_%05d_.png", len(f.files)+1)
		f.files["output/"+name] = append(f.image[:len(f.image):len(f.image)], byte(i)) // distinct bytes; PNG decoders ignore trailing data
		images = append(images, map[string]any{"filename": name, "subfolder": "", "type": "output"})
	}
	f.mu.Unlock()
	f.send(sid, "executing", map[string]any{"node": "9", "display_node": "9", "prompt_id": id})
	f.send(sid, "executed", map[string]any{"node": "9", "display_node": "9", "output": map[string]any{"images": images}, "prompt_id": id})
	// A preview node's temporary image, which the adapter must not return.
	f.mu.Lock()
	f.files["temp/preview.png"] = f.image
	f.mu.Unlock()
	f.finish(id, map[string]any{
		"outputs": map[string]any{"9": map[string]any{"images": images},
			"12": map[string]any{"images": []any{map[string]any{"filename": "preview.png", "subfolder": "", "type": "temp"}}}},
		"status": map[string]any{"status_str": "success", "completed": true,
			"messages": append(messages, []any{"execution_success", map[string]any{"prompt_id": id, "timestamp": ts}})},
	})
	f.send(sid, "execution_success", map[string]any{"prompt_id": id, "timestamp": ts})
	f.send(sid, "executing", map[string]any{"node": nil, "prompt_id": id})
}

func (f *fakeComfy) finish(id string, entry map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history[id] = entry
	for i, q := range f.queue {
		if q == id {
			f.queue = append(f.queue[:i], f.queue[i+1:]...)
			break
		}
	}
}

func (f *fakeComfy) isInterrupted(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.interrupted {
		if x == id {
			return true
		}
	}
	return false
}

func (f *fakeComfy) getHistory(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]any{}
	if e, ok := f.history[r.PathValue("id")]; ok {
		out[r.PathValue("id")] = e
	}
	writeJSON(w, 200, out)
}

func (f *fakeComfy) getQueue(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	running := []any{}
	for i, id := range f.queue {
		running = append(running, []any{i, id, map[string]any{}, map[string]any{}, []string{"9"}})
	}
	writeJSON(w, 200, map[string]any{"queue_running": running, "queue_pending": []any{}})
}

func (f *fakeComfy) postQueue(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Delete []string `json:"delete"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.deleted = append(f.deleted, body.Delete...)
	f.mu.Unlock()
	w.WriteHeader(200)
}

func (f *fakeComfy) interrupt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PromptID string `json:"prompt_id"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.interrupted = append(f.interrupted, body.PromptID)
	f.mu.Unlock()
	w.WriteHeader(200)
}

func (f *fakeComfy) view(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	data, ok := f.files[q.Get("type")+"/"+q.Get("filename")]
	f.mu.Unlock()
	if !ok || q.Get("subfolder") != "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(data)
}

func (f *fakeComfy) upload(w http.ResponseWriter, r *http.Request) {
	file, hdr, err := r.FormFile("image")
	if err != nil {
		w.WriteHeader(400)
		return
	}
	data, _ := io.ReadAll(file)
	if r.FormValue("type") != "input" {
		f.t.Errorf("upload type %q, want input", r.FormValue("type"))
	}
	f.mu.Lock()
	f.uploads[hdr.Filename] = data
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"name": hdr.Filename, "subfolder": "", "type": "input"})
}

// lastPrompt is the last workflow submitted.
func (f *fakeComfy) lastPrompt(t *testing.T) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.prompts) == 0 {
		t.Fatal("nothing was submitted")
	}
	return f.prompts[len(f.prompts)-1]
}

func (f *fakeComfy) count(what *[]string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(*what)
}
