package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/outbound"
)

// Bounds of an import.
const (
	DefaultImportTimeout = 60 * time.Second
	// ImportMaxRedirects is how many redirects an import follows.
	ImportMaxRedirects = 3
	// MaxImportURL bounds the length of an import URL.
	MaxImportURL = 4096
)

// importClient is the outbound client of imports: the SSRF rules of
// package outbound, ImportMaxRedirects, the import timeout, and the file
// size limit as the body bound.
func importClient(cfg Config) *outbound.Client {
	return outbound.New(outbound.Config{
		Allow:        cfg.ImportAllow,
		Timeout:      cfg.ImportTimeout,
		MaxRedirects: ImportMaxRedirects,
		MaxBody:      cfg.MaxFileSize,
	})
}

// Import fetches the image at rawURL and stores it as an upload of owner's,
// under every rule of an upload (Store): the type from the bytes, the whole
// file well-formed, the size and pixel limits, private metadata removed.
// The fetch goes through package outbound (http and https only, no address
// that is not public unless allow-listed, every redirect checked, at most
// ImportMaxRedirects), within the import timeout. filename is the
// display name; when empty, the last segment of the URL's path is used.
//
// Errors say which rule refused or what failed, never what a refused
// address held: EValidation for a URL that is not one, EImportRefused for
// a destination the rules refuse, EImportFailed for a fetch that failed,
// EImportTimeout, ETooLarge and EUnsupportedMedia as for uploads.
func (s *Service) Import(ctx context.Context, owner, rawURL, filename string) (*imaged.Image, error) {
	if owner == "" {
		return nil, imaged.Errorf(imaged.EUnauthorized, "Missing or invalid bearer token")
	}
	u, err := parseImportURL(rawURL)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.ImportTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, imaged.Errorf(imaged.EValidation, "url must be an absolute http or https URL")
	}
	req.Header.Set("Accept", "image/png, image/jpeg, image/webp, image/gif")
	req.Header.Set("User-Agent", "imaged (import by URL)")
	resp, err := s.fetch.Do(req)
	if err != nil {
		return nil, s.importError(ctx, fctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, imaged.Errorf(imaged.EImportFailed, "The URL answered %d %s, not an image", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if filename == "" {
		filename = urlFilename(resp.Request.URL)
		if filename == "" {
			filename = urlFilename(u)
		}
	}
	body := &importBody{r: resp.Body, fail: func(err error) error { return s.importError(ctx, fctx, err) }}
	img, err := s.Store(fctx, NewImage{Owner: owner, Filename: filename, Source: imaged.SourceUpload}, body)
	if err != nil {
		if fctx.Err() != nil && ctx.Err() == nil && imaged.ErrCode(err) == imaged.EInternal {
			// The import timeout passed while the blob was being written.
			return nil, s.importError(ctx, fctx, err)
		}
		return nil, err
	}
	return img, nil
}

// parseImportURL checks what can be checked without the network: an
// absolute http or https URL with a host, no user credentials, within
// MaxImportURL.
func parseImportURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, imaged.Errorf(imaged.EValidation, "url is required")
	}
	if len(raw) > MaxImportURL {
		return nil, imaged.Errorf(imaged.EValidation, "url must be at most %d bytes", MaxImportURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return nil, imaged.Errorf(imaged.EValidation, "url must be an absolute http or https URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, imaged.Errorf(imaged.EValidation, "url must use http or https")
	}
	if u.Hostname() == "" {
		return nil, imaged.Errorf(imaged.EValidation, "url must name a host")
	}
	if u.User != nil {
		return nil, imaged.Errorf(imaged.EValidation, "url must not carry a user name or password")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// urlFilename is the unescaped last segment of u's path, "" if none.
func urlFilename(u *url.URL) string {
	if u == nil {
		return ""
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." {
		return ""
	}
	return name
}

// importError turns a fetch failure into the application's error. ctx is
// the request's, fctx the fetch's (bounded by the import timeout). The
// messages name the rule or the failure, never an address or what answered
// there.
func (s *Service) importError(ctx, fctx context.Context, err error) error {
	var ae *imaged.Error
	var re *outbound.RefusedError
	switch {
	case errors.As(err, &re):
		if re.Reason == outbound.ReasonTooLarge {
			return tooLarge(s.cfg.MaxFileSize)
		}
		return &imaged.Error{Code: imaged.EImportRefused, Message: "The URL cannot be imported: " + re.Reason, Err: err}
	case errors.As(err, &ae):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case fctx.Err() != nil || isTimeout(err):
		return &imaged.Error{Code: imaged.EImportTimeout, Message: fmt.Sprintf("The URL did not yield the whole file within %s", s.cfg.ImportTimeout), Err: err}
	case errors.Is(err, outbound.ErrNoSuchHost):
		return &imaged.Error{Code: imaged.EImportFailed, Message: "The URL's host name does not resolve", Err: err}
	}
	return &imaged.Error{Code: imaged.EImportFailed, Message: "The URL could not be fetched (no connection, or the connection failed)", Err: err}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// importBody is the fetched body; it turns its failures into application
// errors (remembering the first) so that Store reports them as they are.
type importBody struct {
	r    io.Reader
	fail func(error) error
	err  error
}

func (b *importBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		if b.err == nil {
			b.err = b.fail(err)
		}
		return n, b.err
	}
	return n, err
}
