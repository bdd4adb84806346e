// Package s3 is an imaged.BlobStore on any S3-compatible object storage
// (AWS S3, MinIO, versitygw, Ceph RGW, ...), through minio-go.
//
// Uploads stream: a Put of unknown length is a multipart upload read one
// part at a time into a single buffer of Config.PartSize bytes, so an upload
// holds about PartSize bytes of memory whatever the size of the image, and the
// largest blob is PartSize × 10,000 parts (78 GiB at the default 8 MiB). An
// object becomes visible only when its upload completes; a failed upload is
// aborted, so its parts do not linger.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/imaged/imaged"
)

// DefaultPartSize is the multipart part size when Config.PartSize is zero.
const DefaultPartSize = 8 << 20

// MinPartSize is the smallest part size S3 accepts for all parts but the last.
const MinPartSize = 5 << 20

// DefaultTimeout bounds connecting and waiting for response headers when
// Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config says where the blobs are. Its String and LogValue never show the
// secret key.
type Config struct {
	// Endpoint is the server, as a URL ("https://s3.eu-west-1.amazonaws.com",
	// "http://127.0.0.1:7070") or a bare host[:port]. A URL's scheme decides
	// UseTLS.
	Endpoint        string
	Bucket          string
	Region          string // empty: asked of the server
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle forces path-style requests (http://host/bucket/key), which
	// most self-hosted servers need; otherwise the style is chosen from the
	// endpoint.
	PathStyle bool
	// UseTLS selects https for an Endpoint given without a scheme.
	UseTLS bool
	// Prefix is prepended to every key, to share a bucket ("imaged/").
	Prefix string
	// PartSize is the multipart part size, and so the memory one upload
	// holds: DefaultPartSize when zero, at least MinPartSize.
	PartSize uint64
	// Timeout bounds connecting to the server and waiting for the headers of
	// each response (not the transfer of a body): DefaultTimeout when zero.
	Timeout time.Duration
	// CreateBucket makes Open create the bucket when it does not exist, for
	// tests and development; production buckets are made by their owner.
	CreateBucket bool
	// MaxRetries bounds the client's own retries of a failed request, so
	// that an unreachable server is reported (503) quickly: 2 when zero.
	MaxRetries int
}

// String describes c without its secret key.
func (c Config) String() string {
	secret := ""
	if c.SecretAccessKey != "" {
		secret = "REDACTED"
	}
	return fmt.Sprintf("s3.Config{Endpoint:%q Bucket:%q Region:%q AccessKeyID:%q SecretAccessKey:%s PathStyle:%t UseTLS:%t Prefix:%q PartSize:%d Timeout:%s CreateBucket:%t}",
		c.Endpoint, c.Bucket, c.Region, c.AccessKeyID, secret, c.PathStyle, c.UseTLS, c.Prefix, c.PartSize, c.Timeout, c.CreateBucket)
}

// GoString is String, so that %#v does not print the secret key either.
func (c Config) GoString() string { return c.String() }

// LogValue logs c without its secret key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("bucket", c.Bucket),
		slog.String("region", c.Region),
		slog.String("prefix", c.Prefix),
		slog.Bool("path_style", c.PathStyle),
	)
}

// ConfigFromEnv reads the configuration from IMAGED_S3_ENDPOINT,
// IMAGED_S3_BUCKET, IMAGED_S3_REGION, IMAGED_S3_ACCESS_KEY_ID,
// IMAGED_S3_SECRET_ACCESS_KEY, IMAGED_S3_PATH_STYLE (true/false/1/0) and
// IMAGED_S3_PREFIX, falling back to the AWS SDK's AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// It reports false when no bucket is set, meaning S3 is not configured. With
// no endpoint, it is AWS S3 itself.
func ConfigFromEnv(getenv func(string) string) (Config, bool) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return v
			}
		}
		return ""
	}
	c := Config{
		Endpoint:        first("IMAGED_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		Bucket:          first("IMAGED_S3_BUCKET"),
		Region:          first("IMAGED_S3_REGION", "AWS_REGION"),
		AccessKeyID:     first("IMAGED_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
		SecretAccessKey: first("IMAGED_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
		Prefix:          getenv("IMAGED_S3_PREFIX"),
		UseTLS:          true,
	}
	if c.Endpoint == "" {
		c.Endpoint = "s3.amazonaws.com"
	}
	if u, err := url.Parse(c.Endpoint); err == nil && u.Host != "" {
		c.UseTLS = u.Scheme != "http"
	}
	c.PathStyle, _ = strconv.ParseBool(first("IMAGED_S3_PATH_STYLE"))
	c.CreateBucket, _ = strconv.ParseBool(first("IMAGED_S3_CREATE_BUCKET"))
	if d, err := time.ParseDuration(first("IMAGED_S3_TIMEOUT")); err == nil && d > 0 {
		c.Timeout = d
	}
	return c, c.Bucket != ""
}

// Store is a BlobStore in an S3 bucket.
type Store struct {
	client   *minio.Client
	bucket   string
	prefix   string
	partSize uint64
}

var _ imaged.BlobStore = (*Store)(nil)

// Open returns a store on cfg's bucket. It contacts the server only to create
// the bucket when cfg.CreateBucket is set; use Ping to check that the bucket
// answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket configured")
	}
	host, secure, err := endpoint(cfg)
	if err != nil {
		return nil, err
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize {
		return nil, fmt.Errorf("s3: part size %d is below the S3 minimum of %d", partSize, MinPartSize)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	transport.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	transport.TLSHandshakeTimeout = timeout
	transport.ResponseHeaderTimeout = timeout
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	maxRetries := cfg.MaxRetries
	if maxRetries <= 0 {
		maxRetries = 2
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
		MaxRetries:   maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	s := &Store{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, partSize: partSize}
	if cfg.CreateBucket {
		if err := s.createBucket(ctx, cfg.Region); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// endpoint returns the host[:port] minio-go wants and whether to use TLS.
func endpoint(cfg Config) (string, bool, error) {
	e := strings.TrimSuffix(cfg.Endpoint, "/")
	if e == "" {
		return "", false, errors.New("s3: no endpoint configured")
	}
	if !strings.Contains(e, "://") {
		return e, cfg.UseTLS, nil
	}
	u, err := url.Parse(e)
	if err != nil {
		return "", false, fmt.Errorf("s3: endpoint: %w", err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("s3: endpoint %q must be scheme://host[:port]", e)
	}
	switch u.Scheme {
	case "https":
		return u.Host, true, nil
	case "http":
		return u.Host, false, nil
	}
	return "", false, fmt.Errorf("s3: endpoint scheme %q is neither http nor https", u.Scheme)
}

func (s *Store) createBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.fail(ctx, "checking bucket", "", err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		return nil // made meanwhile by another process
	}
	if err != nil {
		return s.fail(ctx, "creating bucket", "", err)
	}
	return nil
}

// Ping checks that the bucket exists and answers.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.fail(ctx, "ping", "", err)
	}
	if !ok {
		return fmt.Errorf("s3: bucket %q does not exist", s.bucket)
	}
	return nil
}

func (s *Store) object(key string) (string, error) {
	if !imaged.ValidBlobKey(key) {
		return "", imaged.Errorf(imaged.EValidation, "Invalid blob key")
	}
	return s.prefix + key, nil
}

// Put streams r as a multipart upload of unknown size, one part in memory at
// a time.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	name, err := s.object(key)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	src := &source{ctx: ctx, r: r}
	_, err = s.client.PutObject(ctx, s.bucket, name, src, -1, minio.PutObjectOptions{
		// A public bucket or CDN serves the object as stored: give it the
		// image's type (from the key's extension) and immutable caching.
		ContentType:  contentType(key),
		CacheControl: "public, max-age=31536000, immutable",
		PartSize:     s.partSize,
		// One part at a time: ConcurrentStreamParts would hold NumThreads
		// buffers of PartSize.
		ConcurrentStreamParts: false,
		NumThreads:            1,
	})
	if src.err != nil {
		// r's error, or ctx's, exactly as it was: minio-go may have
		// wrapped it, dropped it or reported a later failure instead.
		return 0, src.err
	}
	if err != nil {
		return 0, s.fail(ctx, "put", key, err)
	}
	return src.n, nil
}

// source is the reader handed to minio-go. It stops on ctx, keeps the first
// error of r and repeats it, so that an error cannot be lost between parts.
type source struct {
	ctx context.Context
	r   io.Reader
	n   int64
	err error // first error other than io.EOF
	eof bool
}

func (s *source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.eof {
		return 0, io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.err = err
	}
	return n, err
}

// Open returns the blob; its reads are ranged GETs made as they are needed,
// under ctx.
func (s *Store) Open(ctx context.Context, key string) (imaged.Blob, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail(ctx, "open", key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, s.fail(ctx, "open", key, err)
	}
	return &blob{obj: obj, size: info.Size, fail: func(op string, err error) error {
		return s.fail(ctx, op, key, err)
	}}, nil
}

// blob adapts minio.Object, which refuses to seek past the end, to the
// behaviour of a file: seeking anywhere at or after the end is allowed and
// the next Read answers io.EOF.
type blob struct {
	obj  *minio.Object
	size int64
	pos  int64
	past bool // pos is at or past size; obj is not positioned
	// fail classifies the errors of the ranged GETs made after Open: a
	// server that went away between Open and a read is Unavailable too.
	fail func(op string, err error) error
}

func (b *blob) Size() int64 { return b.size }

func (b *blob) Read(p []byte) (int, error) {
	if b.past || b.pos >= b.size {
		return 0, io.EOF
	}
	n, err := b.obj.Read(p)
	b.pos += int64(n)
	if err != nil && err != io.EOF {
		err = b.fail("read", err)
	}
	return n, err
}

func (b *blob) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.pos + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, fmt.Errorf("s3: seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("s3: seek: negative position %d", abs)
	}
	if abs >= b.size {
		b.pos, b.past = abs, true
		return abs, nil
	}
	if _, err := b.obj.Seek(abs, io.SeekStart); err != nil {
		return 0, b.fail("seek", err)
	}
	b.pos, b.past = abs, false
	return abs, nil
}

func (b *blob) Close() error { return b.obj.Close() }

// Stat describes the blob from a HEAD request.
func (s *Store) Stat(ctx context.Context, key string) (imaged.BlobInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return imaged.BlobInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return imaged.BlobInfo{}, s.fail(ctx, "stat", key, err)
	}
	return imaged.BlobInfo{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// Delete removes the blob; S3 answers success for a missing key.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	err = s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
	if err != nil {
		if err := s.fail(ctx, "delete", key, err); imaged.ErrCode(err) != imaged.ENotFound {
			return err
		}
	}
	return nil
}

// Walk lists the objects under the prefix; S3 lists in UTF-8 binary order,
// which is key order. Objects whose names are not keys are skipped.
func (s *Store) Walk(ctx context.Context, after string, fn func(imaged.BlobInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing when fn stops early
	opts := minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}
	if after != "" {
		opts.StartAfter = s.prefix + after
	}
	last := after
	for obj := range s.client.ListObjects(ctx, s.bucket, opts) {
		if obj.Err != nil {
			return s.fail(ctx, "walk", "", obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if !imaged.ValidBlobKey(key) {
			continue
		}
		if key <= last {
			// A server that ignored StartAfter or broke the order: refuse
			// to hand fn keys out of order.
			if key <= after {
				continue
			}
			return fmt.Errorf("s3: walk: server listed %q after %q", key, last)
		}
		last = key
		if err := fn(imaged.BlobInfo{Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// fail turns an error of minio-go into the service's: a missing object is
// NotFound, an unreachable or failing server is Unavailable (503), the
// caller's cancellation is returned as it is, anything else is internal.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("s3: %s %s: %w", op, key, ctxErr)
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code != "" {
		switch {
		case resp.Code == "NoSuchKey" || resp.Code == "NoSuchObject":
			return imaged.NotFound()
		case resp.Code == "NoSuchBucket":
			return fmt.Errorf("s3: %s %s: bucket %q does not exist: %w", op, key, s.bucket, err)
		case resp.StatusCode == http.StatusNotFound && key != "":
			return imaged.NotFound()
		case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests,
			resp.Code == "SlowDown", resp.Code == "RequestTimeout":
			return imaged.Unavailable("object storage", fmt.Errorf("s3: %s %s: %w", op, key, err))
		}
		return fmt.Errorf("s3: %s %s: %w", op, key, err)
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
		return imaged.Unavailable("object storage", fmt.Errorf("s3: %s %s: %w", op, key, err))
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, err)
}

// contentType maps the extension the service puts on keys to a media type.
func contentType(key string) string {
	switch path.Ext(key) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	}
	return "application/octet-stream"
}
