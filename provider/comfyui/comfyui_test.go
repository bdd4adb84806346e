package comfyui_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/comfyui"
	"github.com/imaged/imaged/provider/generatortest"
	"github.com/imaged/imaged/provider/upstream/upstreamtest"
)

func (f *fakeComfy) generator(t *testing.T, mutate ...func(*comfyui.Config)) *comfyui.Generator {
	t.Helper()
	cfg := comfyui.Config{BaseURL: f.srv.URL, HTTPClient: f.srv.Client(), PollInterval: 5 * time.Millisecond, Token: f.token}
	for _, m := range mutate {
		m(&cfg)
	}
	g, err := comfyui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// node returns the inputs of node id of a submitted workflow.
func node(t *testing.T, body map[string]any, id string) map[string]any {
	t.Helper()
	n, ok := body["prompt"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("the workflow has no node %s", id)
	}
	return n["inputs"].(map[string]any)
}

// progressRecorder collects what the adapter reports.
type progressRecorder struct {
	mu  sync.Mutex
	got []int
}

func (p *progressRecorder) ctx() context.Context {
	return imaged.WithProgress(context.Background(), func(v int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.got = append(p.got, v)
	})
}

func (p *progressRecorder) values() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func TestGenerate(t *testing.T) {
	seed := int64(42)
	req := imaged.GenerateRequest{Prompt: "a lighthouse at dusk", NegativePrompt: "blur", AspectRatio: "16:9", N: 2, Seed: &seed}
	for _, mode := range []struct {
		name          string
		noWS, dropWS  bool
		wantProgress  []int
		wantWebSocket bool
	}{
		{"over_the_websocket_with_progress", false, false, []int{0, 25, 50, 75, 100}, true},
		{"polling_the_history_without_a_websocket", true, false, nil, false},
		{"polling_the_history_when_the_websocket_drops", false, true, nil, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			f := newFakeComfy(t)
			f.noWS, f.dropWS = mode.noWS, mode.dropWS
			var progress progressRecorder
			images, err := f.generator(t).Generate(progress.ctx(), req)
			if err != nil {
				t.Fatal(err)
			}
			body := f.lastPrompt(t)
			id, _ := body["prompt_id"].(string)
			if len(id) != 36 || body["client_id"] != "imaged-"+id {
				t.Errorf("prompt_id %v, client_id %v: want a UUID and a client id of the adapter's own", body["prompt_id"], body["client_id"])
			}
			if in := node(t, body, "6"); in["text"] != "a lighthouse at dusk" {
				t.Errorf("positive prompt %v", in["text"])
			}
			if in := node(t, body, "7"); in["text"] != "blur" {
				t.Errorf("negative prompt %v", in["text"])
			}
			if in := node(t, body, "5"); in["width"] != 1344.0 || in["height"] != 768.0 || in["batch_size"] != 2.0 {
				t.Errorf("latent %v, want 1344x768, a batch of 2, as numbers", in)
			}
			if in := node(t, body, "3"); in["seed"] != 42.0 || in["steps"] != 25.0 || !reflect.DeepEqual(in["model"], []any{"4", 0.0}) {
				t.Errorf("sampler %v", in)
			}
			if _, ok := body["prompt"].(map[string]any)["imaged"]; ok {
				t.Error("the template's imaged object was submitted as a node")
			}
			if len(images) != 2 || bytes.Equal(images[0].Data, images[1].Data) {
				t.Fatalf("%d images (want the 2 saved ones, distinct; not the preview)", len(images))
			}
			for _, img := range images {
				if !bytes.HasPrefix(img.Data, f.image[:len(f.image)-1]) || len(img.Data) != len(f.image)+1 {
					t.Error("an image is not one the server saved")
				}
				if img.Seed == nil || *img.Seed != 42 {
					t.Errorf("seed %v, want 42", img.Seed)
				}
			}
			if got := progress.values(); !slices.Equal(got, mode.wantProgress) && !(mode.wantProgress == nil && len(got) <= 1) {
				t.Errorf("progress %v, want %v", got, mode.wantProgress)
			}
			if opened := f.wsOpened > 0; opened != mode.wantWebSocket {
				t.Errorf("WebSocket opened: %v, want %v", opened, mode.wantWebSocket)
			}
		})
	}
	t.Run("without_a_seed_a_random_one_is_sent_and_reported", func(t *testing.T) {
		f := newFakeComfy(t)
		images, err := f.generator(t).Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
		if err != nil {
			t.Fatal(err)
		}
		sent, _ := node(t, f.lastPrompt(t), "3")["seed"].(float64)
		if len(images) != 1 || images[0].Seed == nil || float64(*images[0].Seed) != sent {
			t.Errorf("seed sent %v, reported %v", sent, images[0].Seed)
		}
		if in := node(t, f.lastPrompt(t), "5"); in["width"] != 1024.0 || in["height"] != 1024.0 || in["batch_size"] != 1.0 {
			t.Errorf("latent %v", in)
		}
	})
	t.Run("an_answer_lost_after_queueing_does_not_run_the_workflow_twice", func(t *testing.T) {
		f := newFakeComfy(t)
		f.loseAnswer = true
		images, err := f.generator(t).Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(images) != 1 || len(f.prompts) != 1 {
			t.Errorf("%d images from %d submissions, want 1 from 1", len(images), len(f.prompts))
		}
	})
	t.Run("the_proxy_token_goes_on_every_request_and_the_websocket", func(t *testing.T) {
		f := newFakeComfy(t)
		f.token = "proxy-secret-token"
		if _, err := f.generator(t).Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1}); err != nil {
			t.Fatal(err)
		}
		if f.wsOpened != 1 {
			t.Errorf("WebSocket opened %d times with the token", f.wsOpened)
		}
		_, err := f.generator(t, func(c *comfyui.Config) { c.Token = "wrong" }).Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1})
		upstreamtest.CheckUpstream(t, err, "comfyui", &imaged.UpstreamError{Status: 401})
	})
}

func TestGenerateFailures(t *testing.T) {
	cat := imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "1:1", N: 1}
	t.Run("a_refused_value_of_the_request_is_an_invalid_prompt_naming_the_node", func(t *testing.T) {
		f := newFakeComfy(t)
		f.nodeErrors = map[string]any{"5": map[string]any{
			"errors": []any{map[string]any{"type": "value_bigger_than_max", "message": "Value 20000 bigger than max of 16384",
				"details": "width", "extra_info": map[string]any{"input_name": "width"}}},
			"dependent_outputs": []string{"9"}, "class_type": "EmptyLatentImage"}}
		_, err := f.generator(t).Generate(context.Background(), cat)
		e := upstreamtest.AppError(t, err, imaged.EInvalidPrompt)
		for _, want := range []string{"node 5", "EmptyLatentImage", "input width", `"sdxl-base"`} {
			if !strings.Contains(e.Message, want) {
				t.Errorf("message %q does not say %q", e.Message, want)
			}
		}
	})
	t.Run("a_template_error_is_a_generation_error_naming_the_node_without_the_servers_files", func(t *testing.T) {
		f := newFakeComfy(t)
		f.nodeErrors = map[string]any{"4": map[string]any{
			"errors": []any{map[string]any{"type": "value_not_in_list", "message": "Value not in list",
				"details":    "ckpt_name: 'sd_xl_base_1.0.safetensors' not in ['private-model.safetensors']",
				"extra_info": map[string]any{"input_name": "ckpt_name"}}},
			"dependent_outputs": []string{"9"}, "class_type": "CheckpointLoaderSimple"}}
		_, err := f.generator(t).Generate(context.Background(), cat)
		e := upstreamtest.AppError(t, err, imaged.EGeneration)
		if !strings.Contains(e.Message, "node 4 (CheckpointLoaderSimple)") || strings.Contains(e.Message, "private-model") {
			t.Errorf("message %q", e.Message)
		}
		if !strings.Contains(err.Error(), "private-model") {
			t.Errorf("the log detail %q lost the server's words", err)
		}
	})
	t.Run("an_execution_error_names_the_node_not_the_servers_paths", func(t *testing.T) {
		f := newFakeComfy(t)
		f.failNode = "3"
		_, err := f.generator(t).Generate(context.Background(), cat)
		e := upstreamtest.AppError(t, err, imaged.EGeneration)
		if !strings.Contains(e.Message, "node 3 (KSampler)") || strings.Contains(e.Message, "/home/comfy") {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("an_execution_error_is_found_by_polling_too", func(t *testing.T) {
		f := newFakeComfy(t)
		f.failNode, f.noWS = "3", true
		_, err := f.generator(t).Generate(context.Background(), cat)
		e := upstreamtest.AppError(t, err, imaged.EGeneration)
		if !strings.Contains(e.Message, "node 3 (KSampler)") {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("a_cancelled_request_deletes_and_interrupts_its_prompt", func(t *testing.T) {
		f := newFakeComfy(t)
		f.hang = true
		var progress progressRecorder
		ctx, cancel := context.WithCancel(progress.ctx())
		go func() {
			for len(progress.values()) < 3 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err := f.generator(t).Generate(ctx, cat)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want the cancellation", err)
		}
		id := f.lastPrompt(t)["prompt_id"]
		f.mu.Lock()
		defer f.mu.Unlock()
		if !slices.Contains(f.interrupted, id.(string)) || !slices.Contains(f.deleted, id.(string)) {
			t.Errorf("interrupted %v, deleted %v; want prompt %v in both", f.interrupted, f.deleted, id)
		}
	})
	t.Run("a_timeout_interrupts_too", func(t *testing.T) {
		f := newFakeComfy(t)
		f.hang, f.noWS = true, true
		ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
		defer cancel()
		_, err := f.generator(t).Generate(ctx, cat)
		upstreamtest.CheckUpstream(t, err, "comfyui", &imaged.UpstreamError{Timeout: true})
		if f.count(&f.interrupted) != 1 {
			t.Errorf("interrupted %v", f.interrupted)
		}
	})
	t.Run("a_server_that_is_down_is_retryable", func(t *testing.T) {
		f := newFakeComfy(t)
		g := f.generator(t)
		f.srv.Close()
		_, err := g.Generate(context.Background(), cat)
		upstreamtest.CheckUpstream(t, err, "comfyui", &imaged.UpstreamError{Retryable: true})
	})
	t.Run("an_answer_lost_with_the_server_then_unreachable_is_not_retryable", func(t *testing.T) {
		f := newFakeComfy(t)
		f.loseAnswer, f.hang = true, true
		g := f.generator(t)
		f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/prompt" {
				hj, _ := w.(http.Hijacker)
				conn, _, _ := hj.Hijack()
				conn.Close() // queued or not: the client cannot tell
				return
			}
			http.Error(w, "bad gateway", http.StatusBadGateway)
		})
		_, err := g.Generate(context.Background(), cat)
		upstreamtest.CheckUpstream(t, err, "comfyui", &imaged.UpstreamError{Retryable: false})
	})
}

func TestEdit(t *testing.T) {
	f := newFakeComfy(t)
	src := upstreamtest.PNG(t, 8, 6, imagedColor)
	strength := 0.35
	images, err := f.generator(t).Edit(context.Background(), imaged.EditRequest{
		GenerateRequest: imaged.GenerateRequest{Prompt: "make it winter", AspectRatio: "4:3", N: 1},
		Image:           imaged.InputImage{Data: src, MediaType: "image/png", Width: 8, Height: 6},
		Strength:        &strength,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 {
		t.Fatalf("%d images", len(images))
	}
	body := f.lastPrompt(t)
	name, _ := node(t, body, "10")["image"].(string)
	if got, ok := f.uploads[name]; !ok || !bytes.Equal(got, src) {
		t.Errorf("LoadImage reads %q, which is not the uploaded source (uploads: %d)", name, len(f.uploads))
	}
	if in := node(t, body, "3"); in["denoise"] != 0.35 {
		t.Errorf("denoise %v, want the strength", in["denoise"])
	}
	if in := node(t, body, "11"); in["width"] != 1152.0 || in["height"] != 896.0 {
		t.Errorf("scale %v", in)
	}
	t.Run("a_mask_is_refused_without_the_placeholder", func(t *testing.T) {
		_, err := f.generator(t).Edit(context.Background(), imaged.EditRequest{
			GenerateRequest: imaged.GenerateRequest{Prompt: "x", AspectRatio: "1:1", N: 1},
			Image:           imaged.InputImage{Data: src, MediaType: "image/png"}, Mask: &imaged.InputImage{Data: src, MediaType: "image/png"}})
		upstreamtest.AppError(t, err, imaged.EInvalidPrompt)
	})
}

var imagedColor = upstreamtest.Gray(90)

func TestTemplates(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	const minimal = `{"imaged": {"description": "Mine", "sizes": {"1:1": "512x512", "3:2": "768x512"}, "maxImages": 1},
		"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of {{prompt}}, {{seed}}"}},
		"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`
	t.Run("a_directory_defines_the_models_and_their_capabilities", func(t *testing.T) {
		f := newFakeComfy(t)
		dir := write(t, map[string]string{"mine.json": minimal, "notes.txt": "ignored"})
		g := f.generator(t, func(c *comfyui.Config) { c.Workflows = dir })
		models := g.Models()
		if len(models) != 1 {
			t.Fatalf("models %+v", models)
		}
		m := models[0]
		if m.ID != "mine" || m.Description != "Mine" || !slices.Equal(m.AspectRatios, []string{"1:1", "3:2"}) || m.MaxImages != 1 ||
			!m.SupportsSeed || m.SupportsNegativePrompt || m.SupportsEdit {
			t.Errorf("model %+v", m)
		}
		seed := int64(7)
		if _, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", AspectRatio: "3:2", N: 1, Seed: &seed}); err != nil {
			t.Fatal(err)
		}
		if got := node(t, f.lastPrompt(t), "1")["text"]; got != "a photo of a cat, 7" {
			t.Errorf("text %q: placeholders inside a string are replaced as text", got)
		}
		_, err := g.Generate(context.Background(), imaged.GenerateRequest{Prompt: "a cat", NegativePrompt: "dogs", AspectRatio: "1:1", N: 1})
		upstreamtest.AppError(t, err, imaged.EInvalidPrompt)
	})
	for name, files := range map[string]map[string]string{
		"unknown_placeholder":  {"a.json": `{"1": {"class_type": "X", "inputs": {"text": "{{prompt}} {{promt}}"}}}`},
		"no_prompt":            {"a.json": `{"1": {"class_type": "X", "inputs": {"seed": "{{seed}}"}}}`},
		"ui_format_not_api":    {"a.json": `{"nodes": [], "links": [], "version": 0.4}`},
		"edit_without_image":   {"a.json": minimal, "a.edit.json": `{"1": {"class_type": "X", "inputs": {"text": "{{prompt}}"}}}`},
		"edit_alone":           {"b.edit.json": `{"1": {"class_type": "X", "inputs": {"text": "{{prompt}}", "image": "{{image}}"}}}`},
		"image_in_text_to_img": {"a.json": `{"1": {"class_type": "X", "inputs": {"text": "{{prompt}}", "image": "{{image}}"}}}`},
		"bad_ratio":            {"a.json": `{"imaged": {"sizes": {"5:4": "640x512"}}, "1": {"class_type": "X", "inputs": {"text": "{{prompt}}"}}}`},
		"batch_without_size":   {"a.json": `{"imaged": {"maxImages": 4}, "1": {"class_type": "X", "inputs": {"text": "{{prompt}}"}}}`},
		"empty_directory":      {},
	} {
		t.Run("refused/"+name, func(t *testing.T) {
			if _, err := comfyui.New(comfyui.Config{BaseURL: "http://127.0.0.1:1", Workflows: write(t, files)}); err == nil {
				t.Error("New accepted the templates")
			}
		})
	}
	t.Run("the_shipped_template_serves_sdxl_base_with_edits", func(t *testing.T) {
		g, err := comfyui.New(comfyui.Config{BaseURL: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		m := g.Models()
		if len(m) != 1 || m[0].ID != "sdxl-base" || len(m[0].AspectRatios) != 7 || !m[0].SupportsEdit || !m[0].SupportsStrength || m[0].SupportsMask ||
			!m[0].SupportsNegativePrompt || !m[0].SupportsSeed || m[0].MaxImages != 4 {
			t.Errorf("models %+v", m)
		}
	})
}

func TestConformance(t *testing.T) {
	g, err := comfyui.New(comfyui.Config{BaseURL: "http://127.0.0.1:1", HTTPClient: generatortest.NoNetwork(t)})
	if err != nil {
		t.Fatal(err)
	}
	generatortest.Test(t, g)
}
