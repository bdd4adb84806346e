package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provider/builtin"
	"github.com/imaged/imaged/provider/openai"
)

func TestMaxPixelsWarnings(t *testing.T) {
	oa, err := openai.New(openai.Config{APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	provs := []imaged.Generator{builtin.New(), oa}
	if w := maxPixelsWarnings(provs, 50_000_000); len(w) != 0 {
		t.Errorf("warnings at the default limit: %q", w)
	}
	// 2 megapixels: gpt-image-2 (up to 3840x2160) is over it, the
	// fixed-size models (1536x1024) and the builtin renderer are not.
	w := maxPixelsWarnings(provs, 2_000_000)
	if len(w) != 1 || !strings.Contains(w[0], "provider openai model gpt-image-2 makes images of up to 8294400 pixels") {
		t.Errorf("warnings %q", w)
	}
	if w := maxPixelsWarnings(provs, 1_000_000); len(w) != 5 {
		t.Errorf("%d warnings at 1 megapixel, want 5 (builtin and the four OpenAI models): %q", len(w), w)
	}
}

func TestApplyModelsFile(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	provs := []imaged.Generator{builtin.New()}
	if out, err := applyModelsFile("", provs, log); err != nil || len(out) != 1 || out[0] != provs[0] {
		t.Errorf("no file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "models.json")
	os.WriteFile(p, []byte(`{"providers": {"stabilty": {}}}`), 0o600)
	_, err := applyModelsFile(p, provs, log)
	if _, usage := err.(usageError); !usage || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"stabilty"`) {
		t.Errorf("error %v", err)
	}
}
