package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Image is the API's image object: the contract's seven fields, then the
// service's additions (generation fields are empty for uploads).
type Image struct {
	ID               string    `json:"id"`
	OriginalFilename string    `json:"originalFilename"`
	URL              string    `json:"url"`
	MediaType        string    `json:"mediaType"`
	FileSize         int64     `json:"fileSize"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`

	Width          int    `json:"width"`
	Height         int    `json:"height"`
	SHA256         string `json:"sha256"`
	Source         string `json:"source"`
	Prompt         string `json:"prompt,omitempty"`
	NegativePrompt string `json:"negativePrompt,omitempty"`
	Model          string `json:"model,omitempty"`
	Provider       string `json:"provider,omitempty"`
	AspectRatio    string `json:"aspectRatio,omitempty"`
	Seed           *int64 `json:"seed,omitempty"`
	RevisedPrompt  string `json:"revisedPrompt,omitempty"`
	// Variants are the rendered sizes of the image by preset name ("thumb"),
	// where the service has them.
	Variants map[string]Variant `json:"variants,omitempty"`
	// Provenance is how the image is marked (C2PA, XMP), where present; kept
	// as the service sent it.
	Provenance json.RawMessage `json:"provenance,omitempty"`
}

// Variant is one rendered size of an image. The service may describe it as
// an object or as its bare URL; both decode.
type Variant struct {
	URL       string `json:"url"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
}

// UnmarshalJSON accepts "https://..." as well as {"url": ...}.
func (v *Variant) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &v.URL)
	}
	type plain Variant
	return json.Unmarshal(b, (*plain)(v))
}

// Pagination is where a page sits in a listing.
type Pagination struct {
	CurrentPage int     `json:"currentPage"`
	PageSize    int     `json:"pageSize"`
	TotalItems  int64   `json:"totalItems"`
	TotalPages  int64   `json:"totalPages"`
	NextCursor  *string `json:"nextCursor"`
}

// ListOptions selects a page of the caller's images; zero values are the
// service's defaults (newest first, 20 per page).
type ListOptions struct {
	Page     int    // 1-based; ignored with Cursor
	PageSize int    // 1-100
	Sort     string // "desc" (default) or "asc"
	Search   string
	Source   string // "upload", "generation" or "" for both
	Cursor   string // Pagination.NextCursor of the previous page
}

// ImagePage is one page of a listing.
type ImagePage struct {
	Images     []Image
	Pagination Pagination
}

// GetImage returns one of the caller's images.
func (c *Client) GetImage(ctx context.Context, id string) (*Image, error) {
	var img Image
	if _, _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/images/" + url.PathEscape(id)}, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

// ListImages returns one page of the caller's images.
func (c *Client) ListImages(ctx context.Context, o ListOptions) (*ImagePage, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Page > 0 {
		set("page", strconv.Itoa(o.Page))
	}
	if o.PageSize > 0 {
		set("pageSize", strconv.Itoa(o.PageSize))
	}
	set("sort", o.Sort)
	set("search", o.Search)
	set("source", o.Source)
	set("cursor", o.Cursor)
	var p ImagePage
	env, _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/images", query: q}, &p.Images)
	if err != nil {
		return nil, err
	}
	if env.Pagination != nil {
		p.Pagination = *env.Pagination
	}
	return &p, nil
}

// DeleteImage deletes one of the caller's images; its URL stops serving.
func (c *Client) DeleteImage(ctx context.Context, id string) error {
	_, _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/images/" + url.PathEscape(id)}, nil)
	return err
}

// File is one file to upload. Progress, when set, is called with the bytes
// of this file sent so far.
type File struct {
	Name     string
	Body     io.Reader
	Progress func(sent int64)
}

// Upload stores one image (POST /api/media/upload), streaming its bytes.
func (c *Client) Upload(ctx context.Context, f File) (*Image, error) {
	var img Image
	if err := c.upload(ctx, "/api/media/upload", "file", []File{f}, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

// UploadMultiple stores several images in one request, all or none (POST
// /api/media/upload-multiple); the answer is in the same order.
func (c *Client) UploadMultiple(ctx context.Context, files []File) ([]Image, error) {
	var imgs []Image
	if err := c.upload(ctx, "/api/media/upload-multiple", "files", files, &imgs); err != nil {
		return nil, err
	}
	return imgs, nil
}

// upload streams files as a multipart body: nothing is held in memory
// beyond a copy buffer.
func (c *Client) upload(ctx context.Context, path, field string, files []File, out any) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		var err error
		defer func() { pw.CloseWithError(err) }()
		for _, f := range files {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, field, escapeQuotes(f.Name)))
			h.Set("Content-Type", "application/octet-stream")
			var part io.Writer
			if part, err = mw.CreatePart(h); err != nil {
				return
			}
			var src io.Reader = f.Body
			if f.Progress != nil {
				src = &progressReader{r: f.Body, fn: f.Progress}
			}
			if _, err = io.Copy(part, src); err != nil {
				return
			}
		}
		err = mw.Close()
	}()
	_, _, err := c.do(ctx, request{method: http.MethodPost, path: path, body: pr, contentType: mw.FormDataContentType()}, out)
	pr.CloseWithError(io.ErrClosedPipe) // stop the writer if the server answered early
	return err
}

// escapeQuotes keeps a filename inside its quoted parameter the way
// browsers do: quotes and backslashes escaped, line breaks replaced.
func escapeQuotes(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", " ", "\n", " ").Replace(s)
}

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		p.fn(p.n)
	}
	return n, err
}

// Download writes the bytes at an image's URL to w and returns how many
// were written. The URL needs no token, so none is sent (it may be a CDN).
func (c *Client) Download(ctx context.Context, imageURL string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, imageURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, errorFrom(resp, raw)
	}
	return io.Copy(w, resp.Body)
}

// Import has the service fetch the image at rawURL and store it like an
// upload (POST /api/media/import); filename, when not "", is its display
// name. A URL the service may not reach is an *Error IMPORT_URL_REFUSED; a
// fetch that failed, IMPORT_FAILED or IMPORT_TIMEOUT.
func (c *Client) Import(ctx context.Context, rawURL, filename string) (*Image, error) {
	body, err := jsonBody(struct {
		URL      string `json:"url"`
		Filename string `json:"filename,omitempty"`
	}{rawURL, filename})
	if err != nil {
		return nil, err
	}
	var img Image
	if _, _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/media/import", body: body, contentType: "application/json"}, &img); err != nil {
		return nil, err
	}
	return &img, nil
}
