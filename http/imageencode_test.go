package http

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/imaged/imaged"
)

// TestImageEncodingMatches: the hand-written image envelope is byte for byte
// what encoding/json writes for the same answer, for every field set or
// unset and for strings that need escaping.
func TestImageEncodingMatches(t *testing.T) {
	seed, strength := int64(-42), 0.35
	full := func(s string) imageJSON {
		return imageJSON{
			ID: "img_" + s, OriginalFilename: s, URL: "http://h/cdn/" + s, MediaType: "image/png",
			FileSize: 1 << 40, CreatedAt: "2026-12-03T08:00:00Z", UpdatedAt: s,
			Width: 4096, Height: 1, SHA256: "ab", Source: "generated",
			Prompt: s, NegativePrompt: s, Model: s, Provider: s, AspectRatio: "16:9", Seed: &seed, RevisedPrompt: s,
			Provenance: &imaged.Provenance{DigitalSourceType: s, C2PA: true, Manifest: s, ClaimGenerator: s, Ingredient: s},
			Options:    map[string]string{"z": s, "a": "1", s: "k"},
			Usage:      &imaged.Usage{InputTokens: 3, Credits: 0.1, Images: 2},
			ParentID:   s, Strength: &strength, MaskID: s,
			ArtStyle: s, ArtDescription: s, ThemeStyle: s, ThemeDescription: s,
			Variants: &presetLinks{base: "http://h/cdn/" + s + "/", names: []string{"a<b", "large", "medium", "small", "thumb"}},
		}
	}
	cases := map[string]imageJSON{
		"bare":                {},
		"upload":              {ID: "i", OriginalFilename: "a.png", MediaType: "image/png", Source: "upload"},
		"provenance, no type": {Provenance: &imaged.Provenance{}},
		"empty options":       {Options: map[string]string{}},
		"zero seed":           {Seed: new(int64), Strength: new(float64), Usage: &imaged.Usage{}},
	}
	for _, s := range []string{"", "plain", `<img src=x onerror=alert(1)>.png`, "q\"b\\s\x00\n\u2028", "bad \xff utf8", "日本 😀"} {
		cases["full "+s] = full(s)
	}
	cursor := "c<&>"
	for name, j := range cases {
		t.Run(name, func(t *testing.T) {
			checkEnvelope(t, appendImageEnvelope(nil, 200, "OK", &j),
				successBody{Success: true, Code: 200, Message: "OK", Data: j})
			page := []imageJSON{j, full("second")}
			for _, p := range []*pagination{
				{CurrentPage: 1, PageSize: 20, TotalItems: 2, TotalPages: 1},
				{CurrentPage: 3, PageSize: 2, TotalItems: 9, TotalPages: 5, NextCursor: &cursor},
			} {
				checkEnvelope(t, appendPageEnvelope(nil, 200, "OK", page, p),
					successBody{Success: true, Code: 200, Message: "OK", Data: page, Pagination: p})
			}
		})
	}
	t.Run("empty page", func(t *testing.T) {
		p := &pagination{PageSize: 20}
		checkEnvelope(t, appendPageEnvelope(nil, 200, "OK", []imageJSON{}, p),
			successBody{Success: true, Code: 200, Message: "OK", Data: []imageJSON{}, Pagination: p})
	})
}

func checkEnvelope(t *testing.T, got []byte, want successBody) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("hand-written:\n%s\nencoding/json:\n%s", got, buf.Bytes())
	}
}

// TestPresetLinksAsMap: the variants object is what encoding/json writes
// for the map from each preset's name to its URL, keys sorted.
func TestPresetLinksAsMap(t *testing.T) {
	l := &presetLinks{base: "https://cdn.example/k&1.png/", names: sortedPresetNames(nil)}
	for _, names := range [][]string{{"thumb"}, {"b", "a"}, {"small", "medium", "large", "thumb", "x<y"}} {
		sorted := append([]string(nil), names...)
		slices.Sort(sorted)
		l.names = sorted
		m := map[string]string{}
		for _, n := range names {
			m[n] = l.base + n
		}
		want, _ := json.Marshal(m)
		got, err := json.Marshal(l)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%v: got %s (%v), want %s", names, got, err, want)
		}
	}
}
