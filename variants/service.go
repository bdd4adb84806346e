// Package variants delivers images in the sizes and formats clients need:
// named presets that every image offers at an unsigned URL, and ad-hoc
// transforms at URLs signed with the service's key (urlsign). A variant is
// rendered on its first request (render), stored in the blob store beside
// its original under a derived key (imaged.VariantKey), and served from
// there afterwards by every replica; concurrent first requests for one
// variant render it once per replica.
package variants

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/render"
	"github.com/imaged/imaged/urlsign"
)

// MarkFunc adds marks to a rendered variant before it is stored: source is
// the original's stored bytes, variant the rendered bytes, mediaType the
// variant's. It returns the bytes to store. (Renders strip all metadata;
// AI-provenance marks come back only through this hook.)
type MarkFunc func(ctx context.Context, original *imaged.Image, source, variant []byte, mediaType string) ([]byte, error)

// Config configures a Service.
type Config struct {
	// Presets are the named variants (DefaultPresets when nil).
	Presets []Preset
	// Renderer renders the variants (a render.Pool).
	Renderer render.Renderer
	// Signer signs and checks transform URLs; without one, ad-hoc
	// transforms are refused.
	Signer *urlsign.Signer
	// Limits are the renderer's (MaxSide bounds asked sizes; MaxPixels and
	// MaxSourceBytes bound what is read to learn an image's displayed size).
	Limits render.Limits
	// Mark, when set, marks each variant after rendering, before storing.
	Mark MarkFunc
	// CanMark, when set, tells the media types Mark can write into. For an
	// image that carries provenance marks, format=auto then chooses among
	// those only, and a transform asking for another is refused.
	CanMark func(mediaType string) bool
	// RenderTimeout bounds a render with its storing (DefaultRenderTimeout if 0).
	RenderTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// DefaultRenderTimeout bounds a render and the storing of its result.
const DefaultRenderTimeout = 2 * time.Minute

// Service serves variants.
type Service struct {
	images  *images.Service
	blobs   imaged.BlobStore
	cfg     Config
	log     *slog.Logger
	presets []Preset
	byName  map[string]Preset
	flight  singleflight.Group
	sizes   sizeCache
	stats   struct{ rendered, stored atomic.Uint64 }
}

// New returns a Service over the images service (whose lookups decide
// whether an original still exists) and the blob store holding both the
// originals and the variants.
func New(imgs *images.Service, blobs imaged.BlobStore, cfg Config) *Service {
	if cfg.Presets == nil {
		cfg.Presets = DefaultPresets()
	}
	if cfg.RenderTimeout <= 0 {
		cfg.RenderTimeout = DefaultRenderTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limits.MaxSide <= 0 {
		cfg.Limits.MaxSide = render.DefaultMaxSide
	}
	s := &Service{images: imgs, blobs: blobs, cfg: cfg, log: cfg.Logger, presets: cfg.Presets, byName: map[string]Preset{}}
	for _, p := range cfg.Presets {
		s.byName[p.Name] = p
	}
	return s
}

// Presets lists the presets in force, by name.
func (s *Service) Presets() []Preset { return s.presets }

// MaxSide is the largest side a variant may ask for.
func (s *Service) MaxSide() int { return s.cfg.Limits.MaxSide }

// Stats counts what the service did since it started.
type Stats struct {
	Rendered uint64 // variants rendered (and stored) by this process
	Stored   uint64 // requests answered with bytes already in the blob store
}

// Stats returns the counters now.
func (s *Service) Stats() Stats {
	return Stats{Rendered: s.stats.rendered.Load(), Stored: s.stats.stored.Load()}
}

// Variant is an open variant, ready to be served.
type Variant struct {
	imaged.Blob
	MediaType string
	// ETag is a strong entity tag: the variant's key digest and its size.
	ETag    string
	ModTime time.Time
	// VaryAccept is true when the format was chosen from the Accept header.
	VaryAccept bool
	// Expires is when the URL stops answering (zero: never).
	Expires time.Time
}

// Preset opens the named preset of the image stored under key. A name
// that holds '=' is a transform without its signature.
func (s *Service) Preset(ctx context.Context, key, name, accept string) (*Variant, error) {
	return s.preset(ctx, key, name, accept, true)
}

// StoredPreset is Preset without rendering: nil (and no error) when the
// variant is not in the blob store yet.
func (s *Service) StoredPreset(ctx context.Context, key, name, accept string) (*Variant, error) {
	return s.preset(ctx, key, name, accept, false)
}

func (s *Service) preset(ctx context.Context, key, name, accept string, render bool) (*Variant, error) {
	p, ok := s.byName[name]
	if !ok {
		if strings.Contains(name, "=") {
			return nil, imaged.Errorf(imaged.EInvalidSignature, "The transform URL has no signature")
		}
		return nil, imaged.Errorf(imaged.ENotFound, "No variant preset is named %q (GET /api/variants lists them)", name)
	}
	return s.open(ctx, key, p.Spec, accept, render)
}

// Transform opens the variant of a signed transform URL: key, the transform
// segment and the signature of the two. A missing, wrong or expired
// signature is EInvalidSignature; a transform out of range EValidation.
func (s *Service) Transform(ctx context.Context, key, transform, sig, accept string) (*Variant, error) {
	return s.transform(ctx, key, transform, sig, accept, true)
}

// StoredTransform is Transform without rendering: nil (and no error) when
// the variant is not in the blob store yet.
func (s *Service) StoredTransform(ctx context.Context, key, transform, sig, accept string) (*Variant, error) {
	return s.transform(ctx, key, transform, sig, accept, false)
}

func (s *Service) transform(ctx context.Context, key, transform, sig, accept string, render bool) (*Variant, error) {
	if s.cfg.Signer == nil || !s.cfg.Signer.Verify(key+"/"+transform, sig) {
		return nil, imaged.Errorf(imaged.EInvalidSignature, "The URL's signature is missing or wrong")
	}
	t, err := ParseTransform(transform, s.cfg.Limits.MaxSide)
	if err != nil {
		return nil, err
	}
	if !t.Expires.IsZero() && !s.cfg.Now().Before(t.Expires) {
		return nil, imaged.Errorf(imaged.EInvalidSignature, "The URL expired at %s", t.Expires.UTC().Format(time.RFC3339))
	}
	v, err := s.open(ctx, key, t.Spec, accept, render)
	if err != nil || v == nil {
		return nil, err
	}
	v.Expires = t.Expires
	return v, nil
}

// Signed is a signed transform URL's path below /cdn/ and what it serves.
type Signed struct {
	Path          string // {key}/{transform}/{signature}
	Width, Height int
	MediaType     string
	Expires       time.Time // zero: never
}

// Sign returns the signed URL of a transform of the caller's image, with
// the size and type it will have (for format=auto, the type a client
// sending accept gets). expiresIn 0 makes a URL that never expires.
func (s *Service) Sign(ctx context.Context, owner, id string, spec Spec, expiresIn time.Duration, accept string) (*Signed, error) {
	if s.cfg.Signer == nil {
		return nil, imaged.Errorf(imaged.EUnavailable, "Signed transforms are not configured")
	}
	if err := spec.validate(s.cfg.Limits.MaxSide); err != nil {
		return nil, err
	}
	img, err := s.images.Get(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	w, h, err := s.displaySize(ctx, img)
	if err != nil {
		return nil, err
	}
	opt, _ := s.resolve(img, spec, accept)
	if !s.markable(img, opt.MediaType()) {
		return nil, unmarkable(opt.MediaType())
	}
	t := Transform{Spec: spec}
	if expiresIn > 0 {
		// Whole seconds, rounded up: never sooner than asked.
		t.Expires = s.cfg.Now().Add(expiresIn + time.Second - 1).Truncate(time.Second)
	}
	path := img.BlobKey + "/" + t.String()
	out := &Signed{Path: path + "/" + s.cfg.Signer.Sign(path), MediaType: opt.MediaType(), Expires: t.Expires}
	out.Width, out.Height = opt.Size(w, h)
	return out, nil
}

// open serves the variant of spec of the image under key: from the blob
// store when it is there, else rendered (once per replica however many ask
// at the same time) and stored; without render, nil when it is not stored.
func (s *Service) open(ctx context.Context, key string, spec Spec, accept string, render bool) (*Variant, error) {
	img, err := s.images.ByBlobKey(ctx, key)
	if err != nil {
		return nil, err
	}
	opt, vary := s.resolve(img, spec, accept)
	if !s.markable(img, opt.MediaType()) {
		return nil, unmarkable(opt.MediaType())
	}
	digest := optionsDigest(opt)
	vkey := imaged.VariantKey(img.BlobKey, digest, extension(opt.Format))
	v := &Variant{MediaType: opt.MediaType(), ModTime: img.CreatedAt, VaryAccept: vary}
	b, err := s.blobs.Open(ctx, vkey)
	switch imaged.ErrCode(err) {
	case "":
		s.stats.stored.Add(1)
		v.Blob = b
	case imaged.ENotFound:
		if !render {
			return nil, nil
		}
		data, err := s.renderOnce(ctx, img, vkey, opt)
		if err != nil {
			return nil, err
		}
		v.Blob = memBlob{bytes.NewReader(data)}
	default:
		return nil, err
	}
	v.ETag = `"v-` + digest + "-" + strconv.FormatInt(v.Size(), 36) + `"`
	return v, nil
}

// renderOnce renders and stores one variant, sharing the work with the
// requests for the same variant that arrive meanwhile. The render goes on
// for the others (and for the store) when the first caller leaves.
func (s *Service) renderOnce(ctx context.Context, img *imaged.Image, vkey string, opt render.Options) ([]byte, error) {
	ch := s.flight.DoChan(vkey, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RenderTimeout)
		defer cancel()
		return s.renderAndStore(rctx, img, vkey, opt)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Service) renderAndStore(ctx context.Context, img *imaged.Image, vkey string, opt render.Options) ([]byte, error) {
	start := time.Now()
	src, err := s.blobs.Open(ctx, img.BlobKey)
	if err != nil {
		if imaged.ErrCode(err) == imaged.ENotFound {
			return nil, imaged.NotFound()
		}
		return nil, err
	}
	defer src.Close()
	var source bytes.Buffer
	var r io.Reader = src
	if s.cfg.Mark != nil {
		r = io.TeeReader(src, &source)
	}
	res, err := s.cfg.Renderer.Render(ctx, r, opt)
	if err != nil {
		return nil, err
	}
	data := res.Data
	if s.cfg.Mark != nil {
		if data, err = s.cfg.Mark(ctx, img, source.Bytes(), res.Data, res.MediaType); err != nil {
			return nil, fmt.Errorf("marking variant %s: %w", vkey, err)
		}
	}
	// Another replica may have stored this variant while we rendered: keep
	// its bytes (those it served; two encoders, native and WASM, may write
	// different bytes) rather than replace them under the same ETag.
	if theirs, err := s.storedBytes(ctx, vkey); err == nil {
		return theirs, nil
	}
	if _, err := s.blobs.Put(ctx, vkey, bytes.NewReader(data)); err != nil {
		return nil, err
	}
	// An image deleted while its variant rendered must not keep it: the
	// deletion's sweep may have run before the Put.
	if _, err := s.images.ByBlobKey(ctx, img.BlobKey); imaged.ErrCode(err) == imaged.ENotFound {
		if derr := s.blobs.Delete(ctx, vkey); derr != nil {
			s.log.ErrorContext(ctx, "variant of a deleted image left behind; imaged gc removes it", "key", vkey, "err", derr)
		}
		return nil, imaged.NotFound()
	}
	s.stats.rendered.Add(1)
	s.log.InfoContext(ctx, "variant rendered", "key", vkey, "width", res.Width, "height", res.Height,
		"mediaType", res.MediaType, "bytes", len(data), "duration", time.Since(start).Round(time.Millisecond))
	return data, nil
}

// markable tells whether a variant of img in mediaType can carry the
// marks img carries (true for an image without provenance).
func (s *Service) markable(img *imaged.Image, mediaType string) bool {
	return img.Provenance == nil || s.cfg.Mark == nil || s.cfg.CanMark == nil || s.cfg.CanMark(mediaType)
}

func unmarkable(mediaType string) error {
	return imaged.Errorf(imaged.EUnsupportedMedia, "This image carries provenance marks, which %s variants cannot carry: ask for WebP, JPEG or PNG", mediaType)
}

// storedBytes reads a stored variant whole (variants are bounded by the
// render limits).
func (s *Service) storedBytes(ctx context.Context, vkey string) ([]byte, error) {
	b, err := s.blobs.Open(ctx, vkey)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(b)
}

// resolve turns a spec into the render options for one image: the format
// (Auto and none decided), the fit and quality in force. vary tells whether
// the format depends on accept.
func (s *Service) resolve(img *imaged.Image, spec Spec, accept string) (opt render.Options, vary bool) {
	opt = render.Options{Width: spec.Width, Height: spec.Height, Fit: spec.Fit, Format: spec.Format, Quality: spec.Quality}
	switch opt.Format {
	case Auto:
		opt.Format, vary = negotiate(accept, img.MediaType, s.markable(img, "image/avif")), true
	case "":
		opt.Format = formatOf(img.MediaType)
	}
	if opt.Width == 0 || opt.Height == 0 {
		opt.Fit = render.Inside
	} else if opt.Fit == "" {
		opt.Fit = render.Cover
	}
	if opt.Quality == 0 {
		opt.Quality = render.DefaultQuality[opt.Format] // 0 for PNG
	}
	if opt.Format == render.PNG {
		opt.Quality = 0
	}
	return opt, vary
}

// renderVersion names the rendering in variant keys: change it when the
// renderer's output changes enough that stored variants must be redone.
const renderVersion = "r1"

// optionsDigest names resolved options in a variant key: 16 hex digits.
// Every request for a stored variant needs it, so the digests of the
// options met last are kept (a few thousand: presets and the transforms
// in use).
func optionsDigest(o render.Options) string {
	digests.mu.Lock()
	d, ok := digests.m[o]
	digests.mu.Unlock()
	if ok {
		return d
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("%s w=%d h=%d fit=%s f=%s q=%d bg=%v",
		renderVersion, o.Width, o.Height, o.Fit, o.Format, o.Quality, o.Background)))
	d = hex.EncodeToString(h[:8])
	digests.mu.Lock()
	defer digests.mu.Unlock()
	if len(digests.m) >= maxDigests {
		clear(digests.m) // rare: more distinct transforms than that in use
	}
	digests.m[o] = d
	return d
}

// maxDigests bounds the digests optionsDigest keeps.
const maxDigests = 4096

var digests = struct {
	mu sync.Mutex
	m  map[render.Options]string
}{m: map[render.Options]string{}}

// formatOf is the output format that keeps an original's format (PNG for
// a GIF, which renders do not write).
func formatOf(mediaType string) string {
	switch mediaType {
	case "image/jpeg":
		return render.JPEG
	case "image/webp":
		return render.WebP
	}
	return render.PNG
}

// extension is a format's file extension in variant keys.
func extension(format string) string {
	if format == render.JPEG {
		return "jpg"
	}
	return format
}

// memBlob serves a variant just rendered from memory.
type memBlob struct{ *bytes.Reader }

func (memBlob) Close() error { return nil }

// displaySize is the image's size as displayed (EXIF orientation applied),
// which a render's size derives from; the stored width and height are the
// raw ones. It reads the original once per image and remembers the answer.
func (s *Service) displaySize(ctx context.Context, img *imaged.Image) (int, int, error) {
	if img.MediaType == "image/gif" {
		return img.Width, img.Height, nil // GIF has no orientation
	}
	if wh, ok := s.sizes.get(img.BlobKey); ok {
		return wh[0], wh[1], nil
	}
	b, err := s.blobs.Open(ctx, img.BlobKey)
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	limit := s.cfg.Limits.MaxSourceBytes
	if limit <= 0 {
		limit = render.DefaultMaxSourceBytes
	}
	src, err := io.ReadAll(io.LimitReader(b, limit))
	if err != nil {
		return 0, 0, imaged.Unavailable("The image store", err)
	}
	w, h, err := render.Probe(src, s.cfg.Limits)
	if err != nil {
		return 0, 0, err
	}
	s.sizes.put(img.BlobKey, [2]int{w, h})
	return w, h, nil
}

// sizeCacheLen bounds the displayed sizes remembered.
const sizeCacheLen = 8192

// sizeCache remembers displayed sizes by blob key (bytes never change
// under a key).
type sizeCache struct {
	mu sync.Mutex
	m  map[string][2]int
}

func (c *sizeCache) get(key string) ([2]int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wh, ok := c.m[key]
	return wh, ok
}

func (c *sizeCache) put(key string, wh [2]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][2]int{}
	}
	if len(c.m) >= sizeCacheLen {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = wh
}
