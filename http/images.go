package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
)

// imageJSON is the image object of the API contract; the first seven fields
// never change meaning, the rest are additions.
type imageJSON struct {
	ID               string `json:"id"`
	OriginalFilename string `json:"originalFilename"`
	URL              string `json:"url"`
	MediaType        string `json:"mediaType"`
	FileSize         int64  `json:"fileSize"`
	CreatedAt        string `json:"createdAt"`
	UpdatedAt        string `json:"updatedAt"`

	Width          int                `json:"width"`
	Height         int                `json:"height"`
	SHA256         string             `json:"sha256"`
	Source         string             `json:"source"`
	Prompt         string             `json:"prompt,omitempty"`
	NegativePrompt string             `json:"negativePrompt,omitempty"`
	Model          string             `json:"model,omitempty"`
	Provider       string             `json:"provider,omitempty"`
	AspectRatio    string             `json:"aspectRatio,omitempty"`
	Seed           *int64             `json:"seed,omitempty"`
	RevisedPrompt  string             `json:"revisedPrompt,omitempty"`
	Provenance     *imaged.Provenance `json:"provenance,omitempty"`

	Options map[string]string `json:"options,omitempty"`
	Usage   *imaged.Usage     `json:"usage,omitempty"`

	// ParentID is the image an edit was made from; Strength and MaskID
	// what the edit asked for.
	ParentID         string   `json:"parentId,omitempty"`
	Strength         *float64 `json:"strength,omitempty"`
	MaskID           string   `json:"maskId,omitempty"`
	ArtStyle         string   `json:"artStyle,omitempty"`
	ArtDescription   string   `json:"artDescription,omitempty"`
	ThemeStyle       string   `json:"themeStyle,omitempty"`
	ThemeDescription string   `json:"themeDescription,omitempty"`

	// Variants maps each preset's name to the URL of the image in it.
	Variants *presetLinks `json:"variants,omitempty"`
}

func (s *Server) imageJSON(r *http.Request, img *imaged.Image) imageJSON {
	return s.imageJSONUnder(s.cdnBase(r), img)
}

// imageJSONUnder is the image object of img, whose byte URLs start with
// cdnBase.
func (s *Server) imageJSONUnder(cdnBase string, img *imaged.Image) imageJSON {
	j := imageJSON{
		ID:               img.ID,
		OriginalFilename: img.OriginalFilename,
		URL:              cdnBase + "/" + img.BlobKey,
		MediaType:        img.MediaType,
		FileSize:         img.Size,
		CreatedAt:        formatTime(img.CreatedAt),
		UpdatedAt:        formatTime(img.UpdatedAt),
		Width:            img.Width,
		Height:           img.Height,
		SHA256:           img.SHA256,
		Source:           string(img.Source),
		Provenance:       img.Provenance,
		ParentID:         img.ParentID,
		Variants:         s.presetURLs(cdnBase, img.BlobKey),
	}
	if g := img.Generation; g != nil {
		j.Prompt, j.NegativePrompt, j.Model, j.Provider = g.Prompt, g.NegativePrompt, g.Model, g.Provider
		j.AspectRatio, j.Seed, j.RevisedPrompt = g.AspectRatio, g.Seed, g.RevisedPrompt
		j.Options, j.Usage = g.Options, g.Usage
		j.Strength, j.MaskID = g.Strength, g.MaskID
		j.ArtStyle, j.ArtDescription = g.ArtStyle, g.ArtDescription
		j.ThemeStyle, j.ThemeDescription = g.ThemeStyle, g.ThemeDescription
	}
	return j
}

// cdnBase is where the byte URLs start: the configured CDN, or this
// service's /cdn.
func (s *Server) cdnBase(r *http.Request) string {
	return s.cdnBaseAt(r.TLS != nil, r.Host)
}

// cdnBaseAt is cdnBase for a request that reached host, over TLS or not.
func (s *Server) cdnBaseAt(tls bool, host string) string {
	if s.cdnBaseURL != "" {
		return s.cdnBaseURL
	}
	return s.baseAt(tls, host) + "/cdn"
}

// baseAt is the configured public base URL, or the one a request reached:
// host, over TLS or not.
func (s *Server) baseAt(tls bool, host string) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	if tls {
		return "https://" + host
	}
	return "http://" + host
}

func (s *Server) handleGetImage(w http.ResponseWriter, r *http.Request) {
	owner, id := imaged.OwnerFrom(r.Context()), r.PathValue("id")
	err := laneLookupError(r, owner) // the lane looked it up already
	var img *imaged.Image
	if err == nil {
		img, err = s.images.Get(r.Context(), owner, id)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	j := s.imageJSON(r, img)
	writeImage(w, http.StatusOK, "OK", &j)
}

func (s *Server) handleDeleteImage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.images.Delete(r.Context(), imaged.OwnerFrom(r.Context()), id); err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, "Image deleted", map[string]any{"id": id, "deleted": true})
}

func (s *Server) handleListImages(w http.ResponseWriter, r *http.Request) {
	owner := imaged.OwnerFrom(r.Context())
	f, err := s.parseListQuery(r, owner)
	if err != nil {
		writeError(w, r, err)
		return
	}
	f.Owner = owner
	page, err := s.images.List(r.Context(), f)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if f.PageSize == 0 {
		f.PageSize = images.DefaultPageSize
	}
	current := f.Page
	if f.Cursor != nil {
		current = f.Cursor.Page
	}
	if current < 1 {
		current = 1
	}
	data := make([]imageJSON, 0, len(page.Images))
	for _, img := range page.Images {
		data = append(data, s.imageJSON(r, img))
	}
	p := &pagination{
		CurrentPage: current,
		PageSize:    f.PageSize,
		TotalItems:  page.TotalItems,
		TotalPages:  totalPages(page.TotalItems, f.PageSize),
	}
	if page.Next != nil {
		page.Next.Page = current + 1
		c := s.encodeCursor(owner, page.Next)
		p.NextCursor = &c
	}
	writeImagePage(w, http.StatusOK, "OK", data, p)
}

// parseListQuery reads page, pageSize, sort, search, source and cursor. A
// query that does not decode (an invalid percent-escape) is refused rather
// than read in part, and so is a search holding control characters or
// invalid UTF-8.
func (s *Server) parseListQuery(r *http.Request, owner string) (imaged.ImageFilter, error) {
	var f imaged.ImageFilter
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return f, imaged.Errorf(imaged.EValidation, "The query string is malformed (an invalid percent-escape or a semicolon)")
	}
	intParam := func(name string, min, max int) (int, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return 0, imaged.Errorf(imaged.EValidation, "%s must be a whole number from %d to %d", name, min, max)
		}
		return n, nil
	}
	if f.Page, err = intParam("page", 1, 1_000_000); err != nil {
		return f, err
	}
	if f.PageSize, err = intParam("pageSize", 1, images.MaxPageSize); err != nil {
		return f, err
	}
	switch v := strings.ToLower(q.Get("sort")); v {
	case "", "desc":
		f.Sort = imaged.SortDesc
	case "asc":
		f.Sort = imaged.SortAsc
	default:
		return f, imaged.Errorf(imaged.EValidation, "sort must be asc or desc")
	}
	switch v := q.Get("source"); v {
	case "", string(imaged.SourceUpload), string(imaged.SourceGeneration), string(imaged.SourceEdit):
		f.Source = imaged.Source(v)
	default:
		return f, imaged.Errorf(imaged.EValidation, "source must be upload, generation or edit")
	}
	f.Search = q.Get("search")
	if len(f.Search) > 255 {
		return f, imaged.Errorf(imaged.EValidation, "search must be at most 255 bytes")
	}
	if !utf8.ValidString(f.Search) || strings.IndexFunc(f.Search, unicode.IsControl) >= 0 {
		return f, imaged.Errorf(imaged.EValidation, "search must be UTF-8 text without control characters")
	}
	if c := q.Get("cursor"); c != "" {
		if f.Cursor, err = s.decodeCursor(owner, c); err != nil {
			return f, err
		}
	}
	return f, nil
}

// multipartOverhead is what a multipart body may carry beyond the files
// themselves (boundaries, headers, small fields).
const multipartOverhead = 1 << 20

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.receiveFiles(w, r, "file", 1)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/images/"+imgs[0].ID)
	writeData(w, http.StatusCreated, "Image uploaded", s.imageJSON(r, imgs[0]))
}

func (s *Server) handleUploadMultiple(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.receiveFiles(w, r, "files", s.maxFiles)
	if err != nil {
		writeError(w, r, err)
		return
	}
	data := make([]imageJSON, len(imgs))
	for i, img := range imgs {
		data[i] = s.imageJSON(r, img)
	}
	writeData(w, http.StatusCreated, fmt.Sprintf("%d images uploaded", len(imgs)), data)
}

// receiveFiles streams the parts named field of a multipart body straight to
// storage, one at a time, in order. It stores all of them or none: when one
// fails, those already stored are deleted again.
func (s *Server) receiveFiles(w http.ResponseWriter, r *http.Request, field string, max int) (stored []*imaged.Image, err error) {
	limit := int64(max)*s.images.MaxFileSize() + multipartOverhead
	if r.ContentLength > limit {
		return nil, imaged.Errorf(imaged.ETooLarge, "The request body exceeds the limit of %d bytes", limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, imaged.Errorf(imaged.EValidation, "The body must be multipart/form-data with a %q field", field)
	}
	ctx := r.Context()
	owner := imaged.OwnerFrom(ctx)
	defer func() {
		if err != nil {
			// The client may be gone: roll back regardless.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			for _, img := range stored {
				if derr := s.images.Delete(rctx, owner, img.ID); derr != nil {
					loggerFrom(ctx).ErrorContext(ctx, "rollback of a partial upload failed", "id", img.ID, "err", derr)
				}
			}
			stored = nil
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.As(err, new(*imaged.Error)) || classify(ctx, err) != err {
				// The body itself failed (see clientBody), or is too large.
				return stored, err
			}
			return stored, &imaged.Error{Code: imaged.EValidation, Message: "The multipart body is malformed", Err: err}
		}
		if part.FormName() != field {
			// Other fields are ignored, within the body limit.
			_, _ = io.Copy(io.Discard, part)
			part.Close()
			continue
		}
		if len(stored) == max {
			if max == 1 {
				return stored, imaged.Errorf(imaged.EValidation, "Send one file in field %q; use /api/media/upload-multiple for several", field)
			}
			return stored, imaged.Errorf(imaged.EValidation, "At most %d files may be uploaded at once", max)
		}
		name := rawFilename(part)
		img, err := s.images.Store(ctx, images.NewImage{Owner: owner, Filename: name, Source: imaged.SourceUpload}, partReader{part})
		part.Close()
		if err != nil {
			if max > 1 {
				err = withFilePrefix(err, len(stored)+1, name)
			}
			return stored, err
		}
		stored = append(stored, img)
	}
	if len(stored) == 0 {
		return nil, imaged.Errorf(imaged.EValidation, "The multipart field %q with a file is required", field)
	}
	// The closing boundary is not the end of the request: a body shorter
	// than its Content-Length (or cut before its last chunk) is incomplete,
	// and nothing of it is kept.
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return stored, err
	}
	return stored, nil
}

// partReader reads one multipart part, reporting what the multipart reader
// itself cannot decode (a Content-Transfer-Encoding: quoted-printable part
// holding bytes that are not quoted-printable, for example) as the client's
// mistake. Failures of the body underneath are application errors already.
type partReader struct{ p *multipart.Part }

func (r partReader) Read(b []byte) (int, error) {
	n, err := r.p.Read(b)
	if err != nil && err != io.EOF && !errors.As(err, new(*imaged.Error)) {
		var mb *http.MaxBytesError
		if !errors.As(err, &mb) {
			err = &imaged.Error{Code: imaged.EValidation, Message: "A multipart part could not be decoded (its Content-Transfer-Encoding does not match its bytes)", Err: err}
		}
	}
	return n, err
}

// rawFilename is the filename exactly as the client sent it (Part.FileName
// strips directories; the display name keeps them, storage never uses it).
func rawFilename(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// withFilePrefix names the failing file in an application error's message.
func withFilePrefix(err error, n int, name string) error {
	code := imaged.ErrCode(err)
	if code == imaged.EInternal || code == imaged.EUnavailable {
		return err
	}
	return &imaged.Error{Code: code, Message: fmt.Sprintf("File %d (%q): %s", n, name, imaged.ErrMessage(err)), Err: err}
}
