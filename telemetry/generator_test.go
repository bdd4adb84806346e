package telemetry_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/telemetry"
)

// A traced provider that edits still edits: the service finds its edit
// models through imaged.Editor.
func TestTracedGeneratorKeepsEditor(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	tel := telemetry.New()
	stop, err := tel.StartTracing(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())

	g := tel.Generator(builtin.New())
	e, ok := g.(imaged.Editor)
	if !ok {
		t.Fatalf("the traced builtin generator (%T) is no imaged.Editor", g)
	}
	var src bytes.Buffer
	png.Encode(&src, image.NewGray(image.Rect(0, 0, 8, 8)))
	out, err := e.Edit(context.Background(), imaged.EditRequest{
		GenerateRequest: imaged.GenerateRequest{Prompt: "x", Model: builtin.ModelID, AspectRatio: "1:1", N: 1},
		Image:           imaged.InputImage{Data: src.Bytes(), MediaType: "image/png", Width: 8, Height: 8},
	})
	if err != nil || len(out) != 1 {
		t.Fatalf("Edit: %d images, %v", len(out), err)
	}
}
