package comfyui

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// The placeholders a workflow template may hold, as JSON strings. A string
// that is exactly one placeholder becomes the typed value (a number for
// seed, width, height, batch_size and strength); a placeholder inside a
// longer string is replaced as text.
const (
	phPrompt    = "prompt"
	phNegative  = "negative_prompt"
	phSeed      = "seed"
	phWidth     = "width"
	phHeight    = "height"
	phBatchSize = "batch_size"
	phImage     = "image"    // edits: the uploaded source image's name
	phMask      = "mask"     // edits: the uploaded mask's name
	phStrength  = "strength" // edits: 0-1, typically a sampler's denoise
)

var knownPlaceholders = []string{phPrompt, phNegative, phSeed, phWidth, phHeight, phBatchSize, phImage, phMask, phStrength}

var placeholderRE = regexp.MustCompile(`\{\{\s*([a-zA-Z0-9_]+)\s*\}\}`)

// metaKey is the one top-level key of a template that is not a node: what
// imaged needs to know about the model. It is removed before submitting.
const metaKey = "imaged"

// templateMeta is the metaKey object of a template.
type templateMeta struct {
	Description string            `json:"description"`
	Sizes       map[string]string `json:"sizes"`     // aspect ratio -> "WxH"
	MaxImages   int               `json:"maxImages"` // batch size limit; 4
}

// defaultSizes are SDXL's trained resolutions, for templates without sizes.
var defaultSizes = map[string]string{
	"1:1": "1024x1024", "16:9": "1344x768", "9:16": "768x1344",
	"4:3": "1152x896", "3:4": "896x1152", "3:2": "1216x832", "2:3": "832x1216",
}

// template is one workflow in ComfyUI's API format, parsed and checked.
type template struct {
	nodes        map[string]any // node id -> {"class_type", "inputs", ...}
	placeholders map[string]bool
	meta         templateMeta
	sizes        map[string][2]int
}

//go:embed workflows/*.json
var shipped embed.FS

// loadTemplates reads the workflow templates of dir, or the shipped ones
// when dir is empty: NAME.json is the text-to-image workflow of model NAME,
// NAME.edit.json (optional) its edit workflow.
func loadTemplates(dir string) (map[string]*template, map[string]*template, error) {
	var fsys fs.FS = os.DirFS(dir)
	if dir == "" {
		sub, _ := fs.Sub(shipped, "workflows")
		fsys = sub
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, nil, fmt.Errorf("workflow directory: %w", err)
	}
	gen, edit := map[string]*template{}, map[string]*template{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, nil, err
		}
		id, isEdit := strings.TrimSuffix(name, ".json"), false
		if strings.HasSuffix(id, ".edit") {
			id, isEdit = strings.TrimSuffix(id, ".edit"), true
		}
		if !validModelID(id) {
			return nil, nil, fmt.Errorf("workflow %s: the model name %q must be letters, digits, '.', '-' or '_'", name, id)
		}
		t, err := parseTemplate(data, isEdit)
		if err != nil {
			return nil, nil, fmt.Errorf("workflow %s: %w", filepath.Join(dir, name), err)
		}
		if isEdit {
			edit[id] = t
		} else {
			gen[id] = t
		}
	}
	for id := range edit {
		if gen[id] == nil {
			return nil, nil, fmt.Errorf("workflow %s.edit.json has no text-to-image workflow %s.json beside it", id, id)
		}
	}
	if len(gen) == 0 {
		return nil, nil, fmt.Errorf("no workflow template (NAME.json) in %s", dir)
	}
	return gen, edit, nil
}

func validModelID(id string) bool {
	if id == "" || len(id) > 100 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// parseTemplate checks a template: an object of nodes, each with a
// class_type and inputs; only known placeholders; a prompt; for an edit, the
// image.
func parseTemplate(data []byte, isEdit bool) (*template, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object in ComfyUI's API format: %w", err)
	}
	t := &template{nodes: map[string]any{}, placeholders: map[string]bool{}}
	if m, ok := raw[metaKey]; ok {
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t.meta); err != nil {
			return nil, fmt.Errorf("the %q object: %w", metaKey, err)
		}
		delete(raw, metaKey)
	}
	for id, n := range raw {
		var node struct {
			ClassType string         `json:"class_type"`
			Inputs    map[string]any `json:"inputs"`
		}
		if err := json.Unmarshal(n, &node); err != nil || node.ClassType == "" || node.Inputs == nil {
			return nil, fmt.Errorf("node %q is not {\"class_type\": ..., \"inputs\": {...}} (export the workflow with \"Save (API Format)\")", id)
		}
		var v any
		_ = json.Unmarshal(n, &v)
		t.nodes[id] = v
	}
	if len(t.nodes) == 0 {
		return nil, errors.New("it holds no node")
	}
	for _, m := range placeholderRE.FindAllSubmatch(data, -1) {
		name := string(m[1])
		if !slices.Contains(knownPlaceholders, name) {
			return nil, fmt.Errorf("unknown placeholder {{%s}}; the known ones: %s", name, strings.Join(knownPlaceholders, ", "))
		}
		t.placeholders[name] = true
	}
	switch {
	case !t.placeholders[phPrompt]:
		return nil, errors.New("it has no {{prompt}} placeholder")
	case isEdit && !t.placeholders[phImage]:
		return nil, errors.New("an edit workflow needs the {{image}} placeholder")
	case !isEdit && (t.placeholders[phImage] || t.placeholders[phMask] || t.placeholders[phStrength]):
		return nil, errors.New("{{image}}, {{mask}} and {{strength}} belong in the edit workflow (NAME.edit.json)")
	}
	sizes := t.meta.Sizes
	if sizes == nil {
		sizes = defaultSizes
	}
	t.sizes = map[string][2]int{}
	for ar, s := range sizes {
		if !slices.Contains(imaged.AspectRatios, ar) {
			return nil, fmt.Errorf("sizes: %q is not one of the aspect ratios %s", ar, strings.Join(imaged.AspectRatios, ", "))
		}
		var w, h int
		if _, err := fmt.Sscanf(s, "%dx%d", &w, &h); err != nil || w < 16 || h < 16 || w > 16384 || h > 16384 {
			return nil, fmt.Errorf("sizes: %q for %s is not WIDTHxHEIGHT", s, ar)
		}
		t.sizes[ar] = [2]int{w, h}
	}
	if t.meta.MaxImages == 0 {
		t.meta.MaxImages = 4
	}
	if t.meta.MaxImages < 1 || (t.meta.MaxImages > 1 && !t.placeholders[phBatchSize]) {
		return nil, errors.New("maxImages above 1 needs the {{batch_size}} placeholder")
	}
	return t, nil
}

// ratios lists the template's aspect ratios in the API's order.
func (t *template) ratios() []string {
	var out []string
	for _, ar := range imaged.AspectRatios {
		if _, ok := t.sizes[ar]; ok {
			out = append(out, ar)
		}
	}
	return out
}

// fill returns the workflow with the placeholders replaced by values, and
// for each node the inputs that received one (so that a refusal of such an
// input is the caller's, not the template's).
func (t *template) fill(values map[string]any) (map[string]any, map[string][]string) {
	filled := map[string][]string{}
	out := make(map[string]any, len(t.nodes))
	for id, n := range t.nodes {
		node := n.(map[string]any)
		copied := make(map[string]any, len(node))
		for k, v := range node {
			copied[k] = v
		}
		inputs, _ := node["inputs"].(map[string]any)
		newInputs := make(map[string]any, len(inputs))
		for name, v := range inputs {
			nv, changed := substitute(v, values)
			newInputs[name] = nv
			if changed {
				filled[id] = append(filled[id], name)
			}
		}
		copied["inputs"] = newInputs
		out[id] = copied
	}
	for id := range filled {
		slices.Sort(filled[id])
	}
	return out, filled
}

// substitute replaces the placeholders in v (and, for lists and objects,
// in its elements).
func substitute(v any, values map[string]any) (any, bool) {
	switch x := v.(type) {
	case string:
		if m := placeholderRE.FindStringSubmatch(x); m != nil && m[0] == x {
			return values[m[1]], true
		}
		changed := false
		s := placeholderRE.ReplaceAllStringFunc(x, func(p string) string {
			changed = true
			return text(values[placeholderRE.FindStringSubmatch(p)[1]])
		})
		return s, changed
	case []any:
		out := make([]any, len(x))
		changed := false
		for i, e := range x {
			var c bool
			out[i], c = substitute(e, values)
			changed = changed || c
		}
		return out, changed
	case map[string]any:
		out := make(map[string]any, len(x))
		changed := false
		for k, e := range x {
			var c bool
			out[k], c = substitute(e, values)
			changed = changed || c
		}
		return out, changed
	}
	return v, false
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// nodeIDs is the keys of a map by node id in id order: numeric ids first,
// by value (ComfyUI's own "2" before "10"), then the others as text. (A
// comparison that mixed the two would not be an order: "10:3" < "2" < "10".)
func nodeIDs[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		x, errX := strconv.Atoi(a)
		y, errY := strconv.Atoi(b)
		switch {
		case errX == nil && errY == nil:
			return cmp.Compare(x, y)
		case errX == nil:
			return -1
		case errY == nil:
			return 1
		}
		return strings.Compare(a, b)
	})
}
