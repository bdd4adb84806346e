package variants

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/render"
)

// Auto is the format chosen per request from its Accept header: AVIF, else
// WebP, else the original's format.
const Auto = "auto"

// Spec describes a variant before it meets an image: the box, how the image
// fits it, the format (render's, or Auto) and the quality (0: the format's
// default). Nothing is ever upscaled: an image smaller than the box keeps
// its own size.
type Spec struct {
	Width, Height int
	Fit           render.Fit
	Format        string
	Quality       int
}

// Preset is a named Spec that every image offers, at an unsigned URL.
type Preset struct {
	Name string
	Spec
}

// DefaultPresets are the presets out of the box.
func DefaultPresets() []Preset {
	return []Preset{
		{"thumb", Spec{Width: 256, Height: 256, Fit: render.Cover, Format: render.WebP}},
		{"small", Spec{Width: 640, Format: render.WebP}},
		{"medium", Spec{Width: 1280, Format: render.WebP}},
		{"large", Spec{Width: 2048, Format: render.WebP}},
	}
}

// validate checks the spec against the largest output side.
func (s Spec) validate(maxSide int) error {
	format := s.Format
	if format == Auto || format == "" {
		format = render.WebP // any real format, for the checks of render
	}
	o := render.Options{Width: s.Width, Height: s.Height, Fit: s.Fit, Format: format, Quality: s.Quality}
	return o.Validate(maxSide)
}

// String is the spec in the form of transform URLs and of presets:
// width=640,height=480,fit=cover,format=webp,quality=80, fields left out
// when zero.
func (s Spec) String() string {
	var parts []string
	if s.Width > 0 {
		parts = append(parts, "width="+strconv.Itoa(s.Width))
	}
	if s.Height > 0 {
		parts = append(parts, "height="+strconv.Itoa(s.Height))
	}
	if s.Fit != "" {
		parts = append(parts, "fit="+string(s.Fit))
	}
	if s.Format != "" {
		parts = append(parts, "format="+s.Format)
	}
	if s.Quality > 0 {
		parts = append(parts, "quality="+strconv.Itoa(s.Quality))
	}
	return strings.Join(parts, ",")
}

// Transform is the variant a signed URL asks for: a Spec and, optionally,
// the time after which the URL no longer answers.
type Transform struct {
	Spec
	Expires time.Time // zero: never
}

// String is the transform's path segment: the spec's fields, then
// expires=UNIX-SECONDS when it expires.
func (t Transform) String() string {
	s := t.Spec.String()
	if !t.Expires.IsZero() {
		if s != "" {
			s += ","
		}
		s += "expires=" + strconv.FormatInt(t.Expires.Unix(), 10)
	}
	return s
}

// ParseTransform reads a transform segment: name=value pairs separated by
// commas, in any order, each name at most once, among width, height, fit,
// format, quality and expires. Its errors are EValidation naming the field;
// the spec is validated against maxSide.
func ParseTransform(seg string, maxSide int) (Transform, error) {
	var t Transform
	seen := map[string]bool{}
	if seg == "" {
		return t, imaged.Errorf(imaged.EValidation, "the transform is empty; give width or height")
	}
	for _, kv := range strings.Split(seg, ",") {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || value == "" {
			return t, imaged.Errorf(imaged.EValidation, "transform part %q must be name=value", kv)
		}
		if seen[name] {
			return t, imaged.Errorf(imaged.EValidation, "%s is given twice", name)
		}
		seen[name] = true
		if name == "expires" {
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n <= 0 || !digits(value) {
				return t, imaged.Errorf(imaged.EValidation, "expires must be a Unix time in seconds, got %q", value)
			}
			t.Expires = time.Unix(n, 0)
			continue
		}
		if err := t.Spec.set(name, value, maxSide); err != nil {
			return t, err
		}
	}
	if err := t.Spec.validate(maxSide); err != nil {
		return t, err
	}
	return t, nil
}

// Set sets one field of the spec (width, height, fit, format or quality)
// from its text; its error is EValidation naming the field.
func (s *Spec) Set(name, value string, maxSide int) error { return s.set(name, value, maxSide) }

// Validate checks the spec as a whole (a side given, within maxSide).
func (s Spec) Validate(maxSide int) error { return s.validate(maxSide) }

// set sets one field of the spec from its text.
func (s *Spec) set(name, value string, maxSide int) error {
	number := func(what string, lo, hi int) (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || !digits(value) || n < lo || n > hi {
			return 0, imaged.Errorf(imaged.EValidation, "%s must be a whole number from %d to %d, got %q", what, lo, hi, value)
		}
		return n, nil
	}
	if maxSide <= 0 {
		maxSide = render.DefaultMaxSide
	}
	var err error
	switch name {
	case "width":
		s.Width, err = number("width", 1, maxSide)
	case "height":
		s.Height, err = number("height", 1, maxSide)
	case "quality":
		s.Quality, err = number("quality", 1, 100)
	case "fit":
		switch f := render.Fit(value); f {
		case render.Cover, render.Contain, render.Fill, render.Inside:
			s.Fit = f
		default:
			err = imaged.Errorf(imaged.EValidation, "fit must be cover, contain, fill or inside, got %q", value)
		}
	case "format":
		switch value {
		case render.WebP, render.AVIF, render.JPEG, render.PNG, Auto:
			s.Format = value
		default:
			err = imaged.Errorf(imaged.EValidation, "format must be webp, avif, jpeg, png or auto, got %q", value)
		}
	default:
		err = imaged.Errorf(imaged.EValidation, "unknown transform field %q (known: width, height, fit, format, quality, expires)", name)
	}
	return err
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// presetName is what a preset may be called: it is a path segment of its
// URL, and never contains '=' (which marks a transform).
var presetName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ParsePresets reads the operator's presets (IMAGED_VARIANTS, or the file of
// IMAGED_VARIANTS_FILE) and returns the presets in force: the defaults,
// changed by the text. Entries are separated by semicolons or new lines;
// a line starting with # is a comment. Each entry is
//
//	NAME=SIZE[,fit=FIT][,format=FORMAT][,quality=Q]
//
// where SIZE is WIDTHxHEIGHT, WIDTH (free height) or xHEIGHT (free width).
// An entry with a default's name replaces it; NAME=off removes it. The
// defaults' sides are bounded by maxSide.
func ParsePresets(text string, maxSide int) ([]Preset, error) {
	presets := DefaultPresets()
	if maxSide <= 0 {
		maxSide = render.DefaultMaxSide
	}
	for i := range presets { // a smaller IMAGED_RENDER_MAX_SIDE bounds the defaults
		presets[i].Width, presets[i].Height = min(presets[i].Width, maxSide), min(presets[i].Height, maxSide)
	}
	index := func(name string) int {
		for i, p := range presets {
			if p.Name == name {
				return i
			}
		}
		return -1
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, entry := range strings.Split(line, ";") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			name, def, ok := strings.Cut(entry, "=")
			name, def = strings.TrimSpace(name), strings.TrimSpace(def)
			if !ok || !presetName.MatchString(name) {
				return nil, fmt.Errorf("variant preset %q: want NAME=SIZE[,fit=..][,format=..][,quality=..] with NAME of 1 to 32 characters a-z, 0-9, - and _", entry)
			}
			if def == "off" {
				if i := index(name); i >= 0 {
					presets = append(presets[:i], presets[i+1:]...)
				}
				continue
			}
			spec, err := parsePresetSpec(def, maxSide)
			if err != nil {
				return nil, fmt.Errorf("variant preset %s: %s", name, imaged.ErrMessage(err))
			}
			if i := index(name); i >= 0 {
				presets[i].Spec = spec
			} else {
				presets = append(presets, Preset{name, spec})
			}
		}
	}
	slices.SortStableFunc(presets, func(a, b Preset) int { return strings.Compare(a.Name, b.Name) })
	return presets, nil
}

// parsePresetSpec reads SIZE[,name=value...].
func parsePresetSpec(def string, maxSide int) (Spec, error) {
	var s Spec
	size, rest, _ := strings.Cut(def, ",")
	w, h, hasX := strings.Cut(strings.TrimSpace(size), "x")
	if w != "" {
		if err := s.set("width", w, maxSide); err != nil {
			return s, err
		}
	}
	if hasX && h != "" {
		if err := s.set("height", h, maxSide); err != nil {
			return s, err
		}
	}
	if s.Width == 0 && s.Height == 0 {
		return s, imaged.Errorf(imaged.EValidation, "the size must be WIDTHxHEIGHT, WIDTH or xHEIGHT, got %q", size)
	}
	if rest != "" {
		seen := map[string]bool{}
		for _, kv := range strings.Split(rest, ",") {
			name, value, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || name == "width" || name == "height" || name == "expires" || seen[name] {
				return s, imaged.Errorf(imaged.EValidation, "after the size, give fit=, format= or quality= once each, got %q", kv)
			}
			seen[name] = true
			if err := s.set(name, value, maxSide); err != nil {
				return s, err
			}
		}
	}
	if s.Format == "" {
		s.Format = render.WebP
	}
	return s, s.validate(maxSide)
}
