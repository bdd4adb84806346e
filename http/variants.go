package http

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/jsonappend"
	"github.com/imaged/imaged/variants"
)

// presetURLs is each preset's URL, under cdnBase, for the image stored
// under key (nil without variants).
func (s *Server) presetURLs(cdnBase, key string) *presetLinks {
	if len(s.presetNames) == 0 {
		return nil
	}
	return &presetLinks{base: cdnBase + "/" + key + "/", names: s.presetNames}
}

// presetLinks is the variants object of an image: each preset's name mapped
// to base+name. It is written without building the map (appendImage), and
// as the map would be through encoding/json.
type presetLinks struct {
	base  string
	names []string // sorted, as encoding/json orders a map's keys
}

func (l *presetLinks) MarshalJSON() ([]byte, error) {
	return appendPresetLinks(nil, l), nil
}

func appendPresetLinks(b []byte, l *presetLinks) []byte {
	b = append(b, '{')
	for _, name := range l.names {
		b = jsonappend.Concat(jsonappend.Key(b, name), l.base, name)
	}
	return append(b, '}')
}

// sortedPresetNames is the names of the presets of v in order, nil without
// variants.
func sortedPresetNames(v *variants.Service) []string {
	if v == nil {
		return nil
	}
	var names []string
	for _, p := range v.Presets() {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// presetJSON is one preset of GET /api/variants.
type presetJSON struct {
	Name    string `json:"name"`
	Width   int    `json:"width,omitempty"`
	Height  int    `json:"height,omitempty"`
	Fit     string `json:"fit"`
	Format  string `json:"format"`
	Quality int    `json:"quality,omitempty"`
	Spec    string `json:"spec"`
}

func (s *Server) handleListPresets(w http.ResponseWriter, r *http.Request) {
	out := []presetJSON{}
	for _, p := range s.variants.Presets() {
		fit := string(p.Fit)
		switch {
		case p.Width == 0 || p.Height == 0:
			fit = "inside"
		case fit == "":
			fit = "cover"
		}
		out = append(out, presetJSON{Name: p.Name, Width: p.Width, Height: p.Height, Fit: fit,
			Format: p.Format, Quality: p.Quality, Spec: p.Spec.String()})
	}
	writeData(w, http.StatusOK, "OK", out)
}

// handleImageResource serves GET /api/images/{id}/{resource}; only
// "variant" exists.
func (s *Server) handleImageResource(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("resource") != "variant" {
		writeError(w, r, imaged.Errorf(imaged.ERouteNotFound, "No such route"))
		return
	}
	s.handleSignVariant(w, r)
}

// variantJSON is the answer of GET /api/images/{id}/variant.
type variantJSON struct {
	URL       string `json:"url"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	MediaType string `json:"mediaType"`
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// maxExpiresIn bounds expiresIn: a year.
const maxExpiresIn = 365 * 24 * 3600

// handleSignVariant answers the owner a signed URL of a transform.
func (s *Server) handleSignVariant(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, imaged.Errorf(imaged.EValidation, "The query string is malformed (an invalid percent-escape or a semicolon)"))
		return
	}
	var spec variants.Spec
	var expiresIn time.Duration
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		if len(q[name]) > 1 {
			writeError(w, r, imaged.Errorf(imaged.EValidation, "%s is given more than once", name))
			return
		}
		v := q.Get(name)
		if name == "expiresIn" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxExpiresIn {
				writeError(w, r, imaged.Errorf(imaged.EValidation, "expiresIn must be a whole number of seconds from 1 to %d, got %q", maxExpiresIn, v))
				return
			}
			expiresIn = time.Duration(n) * time.Second
			continue
		}
		if err := spec.Set(name, v, s.variants.MaxSide()); err != nil {
			writeError(w, r, err)
			return
		}
	}
	signed, err := s.variants.Sign(r.Context(), imaged.OwnerFrom(r.Context()), r.PathValue("id"), spec, expiresIn, r.Header.Get("Accept"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := variantJSON{URL: s.cdnBase(r) + "/" + signed.Path, Width: signed.Width, Height: signed.Height, MediaType: signed.MediaType}
	if !signed.Expires.IsZero() {
		out.ExpiresAt = formatTime(signed.Expires)
	}
	writeData(w, http.StatusOK, "OK", out)
}

func (s *Server) handlePresetVariant(w http.ResponseWriter, r *http.Request) {
	if err := laneLookupError(r, ""); err != nil {
		writeError(w, r, err) // the lane looked it up already
		return
	}
	v, err := s.variants.Preset(r.Context(), r.PathValue("key"), r.PathValue("preset"), r.Header.Get("Accept"))
	s.serveVariant(w, r, v, err)
}

func (s *Server) handleSignedVariant(w http.ResponseWriter, r *http.Request) {
	if err := laneLookupError(r, ""); err != nil {
		writeError(w, r, err)
		return
	}
	v, err := s.variants.Transform(r.Context(), r.PathValue("key"), r.PathValue("transform"), r.PathValue("signature"), r.Header.Get("Accept"))
	s.serveVariant(w, r, v, err)
}

// serveVariant answers a variant like the original's bytes: strong ETag,
// Range, HEAD, 304; immutable unless its URL expires (then cacheable until
// it does); Vary: Accept when the format followed the Accept header.
func (s *Server) serveVariant(w http.ResponseWriter, r *http.Request, v *variants.Variant, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer v.Close()
	if !checkRange(w, r, v.Size(), v.ETag) {
		return
	}
	serveBlob(w, r, v.Blob, variantDelivery(v))
}

// variantDelivery is what a variant's answer says of its bytes.
func variantDelivery(v *variants.Variant) delivery {
	cc := immutable
	if !v.Expires.IsZero() {
		left := int64(time.Until(v.Expires) / time.Second)
		cc = "public, max-age=" + strconv.FormatInt(max(0, left), 10)
	}
	d := delivery{mediaType: v.MediaType, etag: v.ETag, modTime: v.ModTime, cacheControl: cc}
	if v.VaryAccept {
		d.vary = "Accept"
	}
	return d
}
