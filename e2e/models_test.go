package e2e

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The models file changes what /api/images/models lists and what requests
// may ask for; a bad one stops the service at start with a clear message.
func TestModelsFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "models.json")
	if err := os.WriteFile(good, []byte(`{"providers": {"builtin": {
		"models": [{"id": "procedural-v1", "aspectRatios": ["1:1", "16:9"], "maxImages": 2, "supportsStrength": false},
		           {"id": "thumbs", "from": "procedural-v1", "description": "square sketches", "aspectRatios": ["1:1"], "maxImages": 1}],
		"only": ["thumbs", "procedural-v1"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_MODELS_FILE": good}})
	tok := s.Token("alice")

	r := s.get(t, "/api/images/models", tok)
	var env struct {
		Data []struct {
			Provider string `json:"provider"`
			Models   []struct {
				ID               string   `json:"id"`
				AspectRatios     []string `json:"aspectRatios"`
				MaxImages        int      `json:"maxImages"`
				SupportsStrength bool     `json:"supportsStrength"`
			} `json:"models"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	ms := env.Data[0].Models
	if env.Data[0].Provider != "builtin" || len(ms) != 2 || ms[0].ID != "thumbs" || ms[1].ID != "procedural-v1" ||
		ms[1].MaxImages != 2 || ms[1].SupportsStrength || len(ms[1].AspectRatios) != 2 {
		t.Fatalf("models: %s", r.Body)
	}
	// The default model is now thumbs: square only, one image.
	if r := s.postJSON(t, "/api/images/generate", tok, map[string]any{"prompt": "x", "aspectRatio": "16:9"}); r.Status != 400 {
		t.Errorf("16:9 on thumbs: %d %s", r.Status, r.Body)
	}
	r = s.postJSON(t, "/api/images/generate", tok, map[string]any{"prompt": "a fox"})
	if r.Status != 200 || !strings.Contains(string(r.Body), `"model":"thumbs"`) {
		t.Errorf("generate on thumbs: %d %s", r.Status, r.Body)
	}
	if r := s.postJSON(t, "/api/images/generate", tok, map[string]any{"prompt": "x", "model": "procedural-v1", "n": 3}); r.Status != 400 {
		t.Errorf("n 3 on procedural-v1: %d %s", r.Status, r.Body)
	}

	if out := s.output.String(); strings.Contains(out, "IMAGED_MAX_PIXELS") {
		t.Errorf("a warning about the pixel limit at its default:\n%s", out)
	}

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"providers": {"builtin": {"models": [{"id": "procedural-v1", "aspectRatios": ["21:9"]}]}}}`), 0o600)
	c := newCLI(t, "IMAGED_MODELS_FILE="+bad)
	c.fails(2, `models file `+bad+`: provider builtin: model "procedural-v1": aspect ratio "21:9"`, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
}

// A pixel limit smaller than what a provider makes is warned about at start.
func TestMaxPixelsWarning(t *testing.T) {
	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_MAX_PIXELS": "500000"}})
	want := "IMAGED_MAX_PIXELS) is 500000, but provider builtin model procedural-v1 makes images of up to 1048576 pixels"
	if out := s.waitOutput(t, want); !strings.Contains(out, want) {
		t.Errorf("no warning %q in:\n%s", want, out)
	}
}

// imaged edit: a mask file is uploaded first, the edit runs as a job and
// its images are written like generate's.
func TestCLIEdit(t *testing.T) {
	s := startServer(t, serverOpts{})
	c := newCLI(t, "IMAGED_URL="+s.Base, "IMAGED_TOKEN="+s.Token("alice"))
	dir := t.TempDir()
	photo, maskFile := filepath.Join(dir, "photo.png"), filepath.Join(dir, "mask.png")
	os.WriteFile(photo, pngImage(t, 40, 30, 1), 0o644)
	// An opaque mask: white on the left half.
	m := image.NewGray(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 20 {
			m.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	var mb bytes.Buffer
	png.Encode(&mb, m)
	os.WriteFile(maskFile, mb.Bytes(), 0o644)
	c.ok("upload", photo)
	src := c.images()[0]

	outDir := filepath.Join(dir, "out")
	r := c.run("", "edit", src.ID, "make", "it", "red", "--mask", maskFile, "--strength", "0.9", "-n", "2", "-o", outDir)
	if r.code != 0 || !strings.Contains(r.stderr, "succeeded") {
		t.Fatalf("edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	files := strings.Fields(r.stdout)
	if len(files) != 2 {
		t.Fatalf("edit printed %q, want two files", r.stdout)
	}
	for _, f := range files {
		if data, err := os.ReadFile(f); err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("edited file %s: %v", f, err)
		}
	}
	edits := c.images("--source", "edit")
	if len(edits) != 2 || edits[0].Prompt != "make it red" || edits[0].Width*3 != edits[0].Height*4 {
		t.Errorf("edits = %+v", edits)
	}
	if ups := c.images("--source", "upload"); len(ups) != 2 { // the photo and its mask
		t.Errorf("uploads = %+v", ups)
	}
	c.fails(1, "MEDIA_NOT_FOUND", "edit", "01a221fc-369e-7afb-a289-ab4bbc7bb71e", "x")
	c.fails(2, "needs an image id and a prompt", "edit", src.ID)
	if out := c.ok("generate", "--models"); !strings.Contains(out, "EDIT") || !strings.Contains(out, "mask, strength") {
		t.Errorf("generate --models printed:\n%s", out)
	}
}
