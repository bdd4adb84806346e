package http

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"

	"github.com/imaged/imaged/jsonappend"
)

// The image object is the answer served most often (GET /api/images/{id},
// listings), so its envelope is written by hand with jsonappend rather than
// by encoding/json's reflection: the same bytes (TestImageEncodingMatches
// compares both). Reflection over the image object was about a tenth of a
// GET's CPU.

// imageBuffers recycles the buffers image answers are written into.
var imageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// writeImage answers the success envelope around one image object.
func writeImage(w http.ResponseWriter, status int, message string, j *imageJSON) {
	buf := imageBuffers.Get().(*[]byte)
	*buf = appendImageEnvelope((*buf)[:0], status, message, j)
	writePooledJSON(w, status, buf)
}

// writeImagePage answers the success envelope around a page of image
// objects and its pagination.
func writeImagePage(w http.ResponseWriter, status int, message string, page []imageJSON, p *pagination) {
	buf := imageBuffers.Get().(*[]byte)
	*buf = appendPageEnvelope((*buf)[:0], status, message, page, p)
	writePooledJSON(w, status, buf)
}

// writePooledJSON answers the JSON in buf, a buffer from imageBuffers, and
// gives the buffer back.
func writePooledJSON(w http.ResponseWriter, status int, buf *[]byte) {
	writeJSONBytes(w, status, *buf)
	putImageBuffer(buf)
}

// putImageBuffer gives buf back to imageBuffers unless it grew too large
// to keep.
func putImageBuffer(buf *[]byte) {
	if cap(*buf) <= maxPooledJSON {
		imageBuffers.Put(buf)
	}
}

// appendImageEnvelope appends what encoding/json writes for successBody
// (and the newline of json.Encoder) around one image.
func appendImageEnvelope(b []byte, status int, message string, j *imageJSON) []byte {
	b = appendEnvelopeHead(b, status, message)
	b = appendImage(b, j)
	return append(b, "}\n"...)
}

// appendPageEnvelope appends what encoding/json writes for successBody
// (and the newline of json.Encoder) around a page of images: data is null
// for a nil page, as encoding/json writes a nil slice.
func appendPageEnvelope(b []byte, status int, message string, page []imageJSON, p *pagination) []byte {
	b = appendEnvelopeHead(b, status, message)
	if page == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range page {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendImage(b, &page[i])
		}
		b = append(b, ']')
	}
	if p != nil {
		b = append(b, `,"pagination":{"currentPage":`...)
		b = jsonappend.Int(b, int64(p.CurrentPage))
		b = append(b, `,"pageSize":`...)
		b = jsonappend.Int(b, int64(p.PageSize))
		b = append(b, `,"totalItems":`...)
		b = jsonappend.Int(b, p.TotalItems)
		b = append(b, `,"totalPages":`...)
		b = jsonappend.Int(b, p.TotalPages)
		b = append(b, `,"nextCursor":`...)
		if p.NextCursor == nil {
			b = append(b, "null"...)
		} else {
			b = jsonappend.String(b, *p.NextCursor)
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

// appendEnvelopeHead appends the envelope up to its data value.
func appendEnvelopeHead(b []byte, status int, message string) []byte {
	b = append(b, `{"success":true,"code":`...)
	b = jsonappend.Int(b, int64(status))
	b = append(b, `,"message":`...)
	b = jsonappend.String(b, message)
	return append(b, `,"data":`...)
}

// appendImage appends what encoding/json writes for j: every field in
// declaration order, omitempty ones only when set.
func appendImage(b []byte, j *imageJSON) []byte {
	b = append(b, `{"id":`...)
	b = jsonappend.String(b, j.ID)
	b = append(b, `,"originalFilename":`...)
	b = jsonappend.String(b, j.OriginalFilename)
	b = append(b, `,"url":`...)
	b = jsonappend.String(b, j.URL)
	b = append(b, `,"mediaType":`...)
	b = jsonappend.String(b, j.MediaType)
	b = append(b, `,"fileSize":`...)
	b = jsonappend.Int(b, j.FileSize)
	b = append(b, `,"createdAt":`...)
	b = jsonappend.String(b, j.CreatedAt)
	b = append(b, `,"updatedAt":`...)
	b = jsonappend.String(b, j.UpdatedAt)
	b = append(b, `,"width":`...)
	b = jsonappend.Int(b, int64(j.Width))
	b = append(b, `,"height":`...)
	b = jsonappend.Int(b, int64(j.Height))
	b = append(b, `,"sha256":`...)
	b = jsonappend.String(b, j.SHA256)
	b = append(b, `,"source":`...)
	b = jsonappend.String(b, j.Source)
	b = optString(b, "prompt", j.Prompt)
	b = optString(b, "negativePrompt", j.NegativePrompt)
	b = optString(b, "model", j.Model)
	b = optString(b, "provider", j.Provider)
	b = optString(b, "aspectRatio", j.AspectRatio)
	if j.Seed != nil {
		b = append(b, `,"seed":`...)
		b = jsonappend.Int(b, *j.Seed)
	}
	b = optString(b, "revisedPrompt", j.RevisedPrompt)
	if p := j.Provenance; p != nil {
		b = append(b, `,"provenance":{`...)
		b = optString(b, "digitalSourceType", p.DigitalSourceType)
		b = jsonappend.Key(b, "c2pa")
		b = jsonappend.Bool(b, p.C2PA)
		b = optString(b, "manifest", p.Manifest)
		b = optString(b, "claimGenerator", p.ClaimGenerator)
		b = optString(b, "ingredient", p.Ingredient)
		b = append(b, '}')
	}
	b = optMap(b, "options", j.Options)
	if j.Usage != nil {
		b = optMarshal(b, "usage", j.Usage)
	}
	b = optString(b, "parentId", j.ParentID)
	if j.Strength != nil {
		b = optMarshal(b, "strength", j.Strength)
	}
	b = optString(b, "maskId", j.MaskID)
	b = optString(b, "artStyle", j.ArtStyle)
	b = optString(b, "artDescription", j.ArtDescription)
	b = optString(b, "themeStyle", j.ThemeStyle)
	b = optString(b, "themeDescription", j.ThemeDescription)
	if j.Variants != nil {
		b = appendPresetLinks(jsonappend.Key(b, "variants"), j.Variants)
	}
	return append(b, '}')
}

// optString appends the member name: v unless v is empty (omitempty).
func optString(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return jsonappend.String(jsonappend.Key(b, name), v)
}

// optMap appends a string map with its keys sorted, as encoding/json does,
// unless it is empty (omitempty).
func optMap(b []byte, name string, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	var stack [8]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(jsonappend.Key(b, name), '{')
	for _, k := range keys {
		b = jsonappend.String(jsonappend.Key(b, k), m[k])
	}
	return append(b, '}')
}

// optMarshal appends a rarely set value (usage, strength: floats) through
// encoding/json itself.
func optMarshal(b []byte, name string, v any) []byte {
	enc, err := json.Marshal(v)
	if err != nil {
		return b // only a NaN or an infinity gets here; imaged never stores one
	}
	return append(jsonappend.Key(b, name), enc...)
}
