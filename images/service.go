// Package images is the service at the heart of imaged: it checks and stores
// image bytes and their metadata together, and answers the lookups, listings
// and deletions of the API. It depends only on the domain interfaces, so the
// same code runs on SQLite and a local directory or on PostgreSQL and S3.
package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/outbound"
	"github.com/imaged/imaged/provenance"
)

// Defaults for Config.
const (
	DefaultMaxFileSize = 20 << 20 // 20 MiB
	// DefaultMaxGeneratedSize bounds what a provider may return: providers'
	// PNGs can exceed an operator's upload limit, which is about clients.
	DefaultMaxGeneratedSize = 64 << 20
	DefaultMaxPixels        = 50_000_000 // about 7070x7070
	MaxPageSize             = 100
	DefaultPageSize         = 20
	// DefaultCacheSize is the default Config.CacheSize: about 400 bytes
	// an image (more with generation details), so some 26 MB per cache
	// when full.
	DefaultCacheSize = 65536
	maxFilenameRunes = 255
)

// Config bounds what the service accepts.
type Config struct {
	MaxFileSize  int64            // bytes per uploaded image; DefaultMaxFileSize if 0
	MaxGenerated int64            // bytes per generated image; the larger of MaxFileSize and DefaultMaxGeneratedSize if 0
	MaxPixels    int64            // width*height per image; DefaultMaxPixels if 0
	Now          func() time.Time // time.Now if nil
	Logger       *slog.Logger
	// KeepMetadata keeps uploads' metadata as it came; by default the
	// private parts (GPS position, serial numbers, location and contact
	// fields: container.Scrub) are removed before the image is recorded.
	KeepMetadata bool
	// CacheSize bounds each of the caches of image metadata kept over a
	// store that reports its deletions (imaged.DeletionFeed): by id, for
	// Get, and by blob key, for the byte URLs. DefaultCacheSize if 0;
	// negative turns them off.
	CacheSize int
	// Marker, when it signs, lets uploads that carry a C2PA manifest lose
	// their private metadata too: the cleaned file is signed again, the
	// uploaded manifest its parent ingredient (see rewriteSigned). Without
	// it they are stored as sent.
	Marker *provenance.Marker
	// ImportAllow lists the non-public addresses that imports by URL may
	// reach (IMAGED_OUTBOUND_ALLOW); none by default.
	ImportAllow []netip.Prefix
	// ImportTimeout bounds an import by URL, from the request to the last
	// byte; DefaultImportTimeout if 0.
	ImportTimeout time.Duration
}

// Service stores and serves images.
type Service struct {
	images imaged.ImageStore
	blobs  imaged.BlobStore
	cfg    Config
	log    *slog.Logger
	cache  *imageCaches // nil unless the store reports its deletions
	fetch  *outbound.Client
	// resigning bounds the uploads signed again at once: each holds its
	// file in memory a few times over.
	resigning chan struct{}
}

// New returns a Service over the given stores.
func New(images imaged.ImageStore, blobs imaged.BlobStore, cfg Config) *Service {
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = DefaultMaxFileSize
	}
	if cfg.MaxGenerated <= 0 {
		cfg.MaxGenerated = max(cfg.MaxFileSize, DefaultMaxGeneratedSize)
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = DefaultMaxPixels
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ImportTimeout <= 0 {
		cfg.ImportTimeout = DefaultImportTimeout
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	s := &Service{images: images, blobs: blobs, cfg: cfg, log: cfg.Logger, fetch: importClient(cfg), resigning: make(chan struct{}, 1)}
	if feed, ok := images.(imaged.DeletionFeed); ok && cfg.CacheSize > 0 {
		s.cache = newImageCaches(feed, cfg.CacheSize)
	}
	return s
}

// MaxFileSize is the configured per-image limit in bytes.
func (s *Service) MaxFileSize() int64 { return s.cfg.MaxFileSize }

// NewImage describes bytes about to be stored.
type NewImage struct {
	Owner      string
	Filename   string // as the client sent it; "" for a generated name
	Source     imaged.Source
	Generation *imaged.Generation
	// ParentID is the image an edit was made from.
	ParentID string
	// Provenance is what the bytes say of their origin, when the caller
	// knows it (the generation service marks what it stores).
	Provenance *imaged.Provenance
}

// Store checks the bytes r yields like any upload (the type from the bytes,
// the whole file well-formed, size and pixel limits), streams them to the
// blob store while checking and hashing them, and only then commits the
// metadata. Memory use does not grow with the file size nor the image's.
// On any failure nothing is left behind: no metadata, and no blob.
func (s *Service) Store(ctx context.Context, n NewImage, r io.Reader) (*imaged.Image, error) {
	if n.Owner == "" {
		return nil, imaged.Errorf(imaged.EUnauthorized, "Missing or invalid bearer token")
	}
	limit := s.cfg.MaxFileSize
	if n.Source == imaged.SourceGeneration || n.Source == imaged.SourceEdit {
		limit = s.cfg.MaxGenerated
	}
	limited := &limitReader{r: r, left: limit, max: limit}
	head := make([]byte, container.SniffLen)
	k, err := io.ReadFull(limited, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	head = head[:k]
	format := container.Sniff(head)
	if format == 0 {
		return nil, unsupported()
	}

	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	img := &imaged.Image{
		ID:         imaged.NewID(),
		Owner:      n.Owner,
		MediaType:  format.MediaType(),
		BlobKey:    imaged.NewBlobKey(format.Ext()),
		Source:     n.Source,
		Generation: n.Generation,
		ParentID:   n.ParentID,
		Provenance: n.Provenance,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	img.OriginalFilename = cleanFilename(n.Filename)
	if img.OriginalFilename == "" {
		img.OriginalFilename = string(n.Source) + "-" + img.ID + "." + format.Ext()
	}

	// The bytes are validated as they flow to the store: a file refused
	// half-way fails the Put, which then keeps nothing.
	check := newChecker(io.MultiReader(bytes.NewReader(head), limited), s.cfg.MaxPixels)
	h := sha256.New()
	size, err := s.blobs.Put(ctx, img.BlobKey, io.TeeReader(check, h))
	info, verr := check.close()
	if err != nil {
		var e *imaged.Error
		if errors.As(err, &e) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("store blob: %w", err)
	}
	if verr != nil {
		// Put read to the end, so the checker has failed it already; this is
		// a safety net for a store that does not pass errors on.
		s.removeBlob(ctx, img.BlobKey)
		return nil, verr
	}
	img.Width, img.Height = info.Width, info.Height
	if img.Provenance == nil {
		// An upload that says it was generated (XMP, C2PA) is reported so.
		img.Provenance = provenance.FromMarks(container.MarksOf(info))
	}
	img.Size = size
	img.SHA256 = hex.EncodeToString(h.Sum(nil))
	if n.Source == imaged.SourceUpload && !s.cfg.KeepMetadata {
		if edits := container.Scrub(info); len(edits) > 0 {
			if err := s.rewrite(ctx, img, format, edits); err != nil {
				return nil, err
			}
		} else if s.resigns() && container.HasC2PA(info) {
			if edits := container.ScrubSigned(info); len(edits) > 0 {
				if err := s.rewriteSigned(ctx, img, format, edits); err != nil {
					return nil, err
				}
			}
		}
	}

	if err := s.images.CreateImage(ctx, img); err != nil {
		s.removeBlob(ctx, img.BlobKey)
		return nil, err
	}
	return img, nil
}

// rewrite stores the image's blob again with the edits applied, streaming
// from the stored bytes to a new key, and drops the first blob: the record
// then describes what is stored. (A WebP's RIFF size comes first in the
// file, so edits are known whole before the rewrite starts: hence two
// passes rather than one.)
func (s *Service) rewrite(ctx context.Context, img *imaged.Image, f container.Format, edits []container.Edit) error {
	old := img.BlobKey
	defer s.removeBlob(ctx, old)
	src, err := s.blobs.Open(ctx, old)
	if err != nil {
		return err
	}
	defer src.Close()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := container.Rewrite(pw, bufio.NewReaderSize(src, 64<<10), f, edits)
		pw.CloseWithError(err)
	}()
	defer func() { pr.Close(); <-done }()
	key := imaged.NewBlobKey(f.Ext())
	h := sha256.New()
	size, err := s.blobs.Put(ctx, key, io.TeeReader(pr, h))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("store cleaned blob: %w", err)
	}
	img.BlobKey, img.Size, img.SHA256 = key, size, hex.EncodeToString(h.Sum(nil))
	return nil
}

func (s *Service) resigns() bool { return s.cfg.Marker != nil && s.cfg.Marker.Signs() }

// rewriteSigned is rewrite for an upload that carries a C2PA manifest: the
// edits would break its hard binding, so the cleaned file is signed again
// (provenance.Marker.MarkScrubbed) with the uploaded manifest as the parent
// of ours, and the record's provenance becomes what the new file says.
// Signing needs the file whole, so it is held in memory (up to the size
// limit, a few copies); at most cap(s.resigning) such uploads run at once.
// If the manifest cannot be signed again, the file is stored as sent.
func (s *Service) rewriteSigned(ctx context.Context, img *imaged.Image, f container.Format, edits []container.Edit) error {
	select {
	case s.resigning <- struct{}{}:
		defer func() { <-s.resigning }()
	case <-ctx.Done():
		s.removeBlob(ctx, img.BlobKey)
		return ctx.Err()
	}
	src, err := s.blobs.Open(ctx, img.BlobKey)
	if err != nil {
		s.removeBlob(ctx, img.BlobKey)
		return err
	}
	var cleaned bytes.Buffer
	cleaned.Grow(int(img.Size))
	_, err = container.Rewrite(&cleaned, bufio.NewReaderSize(src, 64<<10), f, edits)
	src.Close()
	if err != nil {
		s.removeBlob(ctx, img.BlobKey)
		return fmt.Errorf("clean a signed upload: %w", err)
	}
	signed, prov, err := s.cfg.Marker.MarkScrubbed(cleaned.Bytes())
	if err != nil {
		s.log.WarnContext(ctx, "an upload's C2PA manifest could not be signed again; stored as sent, metadata included", "err", err)
		return nil
	}
	cleaned = bytes.Buffer{}
	old := img.BlobKey
	defer s.removeBlob(ctx, old)
	key := imaged.NewBlobKey(f.Ext())
	size, err := s.blobs.Put(ctx, key, bytes.NewReader(signed))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("store cleaned blob: %w", err)
	}
	sum := sha256.Sum256(signed)
	img.BlobKey, img.Size, img.SHA256, img.Provenance = key, size, hex.EncodeToString(sum[:]), prov
	return nil
}

// removeBlob deletes bytes that no record references, with a fresh context
// since ctx may be what failed. A failure leaves garbage for CollectGarbage.
func (s *Service) removeBlob(ctx context.Context, key string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.blobs.Delete(dctx, key); err != nil {
		s.log.ErrorContext(ctx, "unreferenced blob left behind", "key", key, "err", err)
	}
}

// Get returns the caller's image, or NotFound for anything else.
// (Stores answer a malformed id without a query.) Over a store that reports
// its deletions (imaged.DeletionFeed) the answer is cached, and forgotten as
// soon as the image is deleted, on any replica; callers must not modify the
// image.
func (s *Service) Get(ctx context.Context, owner, id string) (*imaged.Image, error) {
	if s.cache == nil || !imaged.ValidID(id) {
		return s.images.FindImage(ctx, owner, id)
	}
	img, err := s.cache.lookup(s.cache.byID, id, func() (*imaged.Image, error) { return s.images.FindImage(ctx, owner, id) })
	if err != nil {
		return nil, err
	}
	if img.Owner != owner {
		// Cached for its owner: to anyone else it does not exist.
		return nil, imaged.NotFound()
	}
	return img, nil
}

// List returns one page of the caller's images, with defaults and bounds
// applied to the filter.
func (s *Service) List(ctx context.Context, f imaged.ImageFilter) (*imaged.ImagePage, error) {
	if f.PageSize == 0 {
		f.PageSize = DefaultPageSize
	}
	if f.PageSize < 1 || f.PageSize > MaxPageSize {
		return nil, imaged.Errorf(imaged.EValidation, "pageSize must be between 1 and %d", MaxPageSize)
	}
	if f.Page == 0 {
		f.Page = 1
	}
	if f.Page < 1 {
		return nil, imaged.Errorf(imaged.EValidation, "page must be 1 or more")
	}
	if f.Sort == "" {
		f.Sort = imaged.SortDesc
	}
	if len(f.Search) > 255 {
		return nil, imaged.Errorf(imaged.EValidation, "search must be at most 255 bytes")
	}
	return s.images.ListImages(ctx, f)
}

// Delete removes the caller's image: first its metadata, so that the id and
// the URLs (of the bytes and of every variant) stop answering at once, then
// its bytes and its variants' (imaged.VariantKey). A failure to remove
// bytes is logged and leaves unreferenced blobs for CollectGarbage, never a
// dangling record.
func (s *Service) Delete(ctx context.Context, owner, id string) error {
	img, err := s.images.DeleteImage(ctx, owner, id)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.blobs.Delete(dctx, img.BlobKey); err != nil {
		s.log.ErrorContext(ctx, "blob not deleted; it is unreferenced", "key", img.BlobKey, "err", err)
	}
	if err := s.deleteVariants(dctx, img.BlobKey); err != nil {
		s.log.ErrorContext(ctx, "variants not deleted; they are unreferenced", "key", img.BlobKey, "err", err)
	}
	return nil
}

// errWalkDone stops a Walk early.
var errWalkDone = errors.New("walk done")

// deleteVariants removes the variant blobs of the original stored under
// key: they sort right after it, so the walk starts there and stops at the
// first key that is not one of them.
func (s *Service) deleteVariants(ctx context.Context, key string) error {
	prefix := imaged.VariantPrefix(key)
	var keys []string
	err := s.blobs.Walk(ctx, prefix, func(b imaged.BlobInfo) error {
		if !strings.HasPrefix(b.Key, prefix) {
			return errWalkDone
		}
		keys = append(keys, b.Key)
		return nil
	})
	if err != nil && !errors.Is(err, errWalkDone) {
		return err
	}
	for _, k := range keys {
		if err := s.blobs.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// ByBlobKey returns the image whose bytes are stored under key, for the
// public byte URLs, which carry no token. Over a store that reports its
// deletions (imaged.DeletionFeed) the answer is cached, and forgotten as
// soon as the image is deleted; callers must not modify the image.
func (s *Service) ByBlobKey(ctx context.Context, key string) (*imaged.Image, error) {
	if !imaged.ValidBlobKey(key) {
		return nil, imaged.NotFound()
	}
	if s.cache == nil {
		return s.images.FindImageByBlobKey(ctx, key)
	}
	return s.cache.lookup(s.cache.byKey, key, func() (*imaged.Image, error) { return s.images.FindImageByBlobKey(ctx, key) })
}

// OpenBlob opens the bytes behind a public URL key. Only keys of images that
// exist answer, so a deleted image stops serving at once.
func (s *Service) OpenBlob(ctx context.Context, key string) (*imaged.Image, imaged.Blob, error) {
	img, err := s.ByBlobKey(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.blobs.Open(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	return img, b, nil
}

// cleanFilename keeps the client's name for display, minus what could harm
// a display (control characters, invalid UTF-8) and past 255 characters.
// Storage never uses it.
func cleanFilename(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > maxFilenameRunes {
		name = string([]rune(name)[:maxFilenameRunes])
	}
	return name
}

// limitReader fails with ETooLarge as soon as more than max bytes arrive,
// so an oversized upload is refused without reading the rest.
type limitReader struct {
	r         io.Reader
	left, max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, tooLarge(l.max)
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, tooLarge(l.max)
	}
	return n, err
}

func tooLarge(max int64) *imaged.Error {
	return imaged.Errorf(imaged.ETooLarge, "The file exceeds the limit of %d bytes", max)
}
