package telemetry

import (
	"context"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/imaged/imaged"
	"github.com/prometheus/client_golang/prometheus"
)

// Each wrapper embeds the interface it wraps, so that a method added to
// the interface later passes through (unrecorded) instead of breaking the
// build; the methods below are recorded.

// op is one store operation being recorded.
type op struct {
	t           *Telemetry
	store, name string
	start       time.Time
	span        trace.Span // nil when tracing is off
}

func (t *Telemetry) begin(ctx context.Context, store, name string) (context.Context, op) {
	o := op{t: t, store: store, name: name, start: time.Now()}
	if t.tracer != nil {
		ctx, o.span = t.tracer.Start(ctx, store+"."+name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("imaged.store", store)))
	}
	return ctx, o
}

// end records the operation; err counts as a failure only when it is the
// service's (internal or unavailable), not an answer such as "not found".
func (o op) end(err error) {
	k := [2]string{o.store, o.name}
	obs, ok := o.t.storeSeries.Load(k)
	if !ok {
		obs, _ = o.t.storeSeries.LoadOrStore(k, o.t.storeOps.WithLabelValues(o.store, o.name))
	}
	obs.(prometheus.Observer).Observe(time.Since(o.start).Seconds())
	failed := false
	if err != nil {
		c := imaged.ErrCode(err)
		failed = c == imaged.EInternal || c == imaged.EUnavailable
		if failed {
			o.t.storeErrors.WithLabelValues(o.store, o.name).Inc()
		}
	}
	if o.span != nil {
		if failed {
			o.span.RecordError(err)
			o.span.SetStatus(codes.Error, string(imaged.ErrCode(err)))
		}
		o.span.End()
	}
}

const (
	metadata = "metadata"
	blobs    = "blob"
)

// ImageStore records s's operations; s itself when t is nil.
func (t *Telemetry) ImageStore(s imaged.ImageStore) imaged.ImageStore {
	if t == nil {
		return s
	}
	w := &imageStore{s, t}
	if feed, ok := s.(imaged.DeletionFeed); ok {
		// The images service caches lookups by blob key only over a store
		// that reports its deletions: the wrapper must still say it does.
		return &feedingImageStore{w, feed}
	}
	return w
}

// feedingImageStore is the recording wrapper of a store that is an
// imaged.DeletionFeed, and is one too.
type feedingImageStore struct {
	*imageStore
	feed imaged.DeletionFeed
}

func (s *feedingImageStore) OnImageDeleted(fn func(*imaged.Image)) { s.feed.OnImageDeleted(fn) }

func (s *feedingImageStore) DeletionsLive() bool { return s.feed.DeletionsLive() }

type imageStore struct {
	imaged.ImageStore
	t *Telemetry
}

func (s *imageStore) CreateImage(ctx context.Context, img *imaged.Image) error {
	ctx, o := s.t.begin(ctx, metadata, "create_image")
	err := s.ImageStore.CreateImage(ctx, img)
	o.end(err)
	return err
}

func (s *imageStore) FindImage(ctx context.Context, owner, id string) (img *imaged.Image, err error) {
	ctx, o := s.t.begin(ctx, metadata, "find_image")
	img, err = s.ImageStore.FindImage(ctx, owner, id)
	o.end(err)
	return img, err
}

func (s *imageStore) FindImageByBlobKey(ctx context.Context, key string) (img *imaged.Image, err error) {
	ctx, o := s.t.begin(ctx, metadata, "find_image_by_blob_key")
	img, err = s.ImageStore.FindImageByBlobKey(ctx, key)
	o.end(err)
	return img, err
}

func (s *imageStore) ListImages(ctx context.Context, f imaged.ImageFilter) (p *imaged.ImagePage, err error) {
	ctx, o := s.t.begin(ctx, metadata, "list_images")
	p, err = s.ImageStore.ListImages(ctx, f)
	o.end(err)
	return p, err
}

func (s *imageStore) DeleteImage(ctx context.Context, owner, id string) (img *imaged.Image, err error) {
	ctx, o := s.t.begin(ctx, metadata, "delete_image")
	img, err = s.ImageStore.DeleteImage(ctx, owner, id)
	o.end(err)
	return img, err
}

// IdempotencyStore records s's operations; s itself when t is nil.
func (t *Telemetry) IdempotencyStore(s imaged.IdempotencyStore) imaged.IdempotencyStore {
	if t == nil {
		return s
	}
	return &idempotencyStore{s, t}
}

type idempotencyStore struct {
	imaged.IdempotencyStore
	t *Telemetry
}

func (s *idempotencyStore) ReserveIdempotencyKey(ctx context.Context, rec *imaged.IdempotencyRecord) (got *imaged.IdempotencyRecord, err error) {
	ctx, o := s.t.begin(ctx, metadata, "reserve_idempotency_key")
	got, err = s.IdempotencyStore.ReserveIdempotencyKey(ctx, rec)
	o.end(err)
	return got, err
}

func (s *idempotencyStore) CompleteIdempotencyKey(ctx context.Context, owner, key string, status int, response []byte) error {
	ctx, o := s.t.begin(ctx, metadata, "complete_idempotency_key")
	err := s.IdempotencyStore.CompleteIdempotencyKey(ctx, owner, key, status, response)
	o.end(err)
	return err
}

func (s *idempotencyStore) ReleaseIdempotencyKey(ctx context.Context, owner, key string) error {
	ctx, o := s.t.begin(ctx, metadata, "release_idempotency_key")
	err := s.IdempotencyStore.ReleaseIdempotencyKey(ctx, owner, key)
	o.end(err)
	return err
}

// QuotaStore records s's operations and counts quota refusals; s itself
// when t is nil.
func (t *Telemetry) QuotaStore(s imaged.QuotaStore) imaged.QuotaStore {
	if t == nil {
		return s
	}
	return &quotaStore{s, t}
}

type quotaStore struct {
	imaged.QuotaStore
	t *Telemetry
}

func (s *quotaStore) ReserveQuota(ctx context.Context, owner string, n int, limits imaged.QuotaLimits, now, leaseUntil time.Time) (string, error) {
	ctx, o := s.t.begin(ctx, metadata, "reserve_quota")
	r, err := s.QuotaStore.ReserveQuota(ctx, owner, n, limits, now, leaseUntil)
	o.end(err)
	if imaged.ErrCode(err) == imaged.EQuotaExceeded {
		s.t.quotaRefusals.Inc()
	}
	return r, err
}

func (s *quotaStore) FinishQuota(ctx context.Context, reservation string, images int) error {
	ctx, o := s.t.begin(ctx, metadata, "finish_quota")
	err := s.QuotaStore.FinishQuota(ctx, reservation, images)
	o.end(err)
	return err
}

// JobStore records s's operations; s itself when t is nil.
func (t *Telemetry) JobStore(s imaged.JobStore) imaged.JobStore {
	if t == nil {
		return s
	}
	return &jobStore{s, t}
}

type jobStore struct {
	imaged.JobStore
	t *Telemetry
}

func (s *jobStore) CreateJob(ctx context.Context, job *imaged.Job) error {
	ctx, o := s.t.begin(ctx, metadata, "create_job")
	err := s.JobStore.CreateJob(ctx, job)
	o.end(err)
	return err
}

func (s *jobStore) FindJob(ctx context.Context, owner, id string) (*imaged.Job, error) {
	ctx, o := s.t.begin(ctx, metadata, "find_job")
	j, err := s.JobStore.FindJob(ctx, owner, id)
	o.end(err)
	return j, err
}

func (s *jobStore) ClaimJob(ctx context.Context, worker string, now, leaseUntil time.Time) (*imaged.Job, error) {
	ctx, o := s.t.begin(ctx, metadata, "claim_job")
	j, err := s.JobStore.ClaimJob(ctx, worker, now, leaseUntil)
	o.end(err)
	return j, err
}

func (s *jobStore) ExtendJob(ctx context.Context, id, worker string, leaseUntil time.Time) error {
	ctx, o := s.t.begin(ctx, metadata, "extend_job")
	err := s.JobStore.ExtendJob(ctx, id, worker, leaseUntil)
	o.end(err)
	return err
}

func (s *jobStore) FinishJob(ctx context.Context, job *imaged.Job, worker string) error {
	ctx, o := s.t.begin(ctx, metadata, "finish_job")
	err := s.JobStore.FinishJob(ctx, job, worker)
	o.end(err)
	return err
}

// BlobStore records s's operations; s itself when t is nil. The bytes read
// from an opened blob are not timed (they stream to the client).
func (t *Telemetry) BlobStore(s imaged.BlobStore) imaged.BlobStore {
	if t == nil {
		return s
	}
	return &blobStore{s, t}
}

type blobStore struct {
	imaged.BlobStore
	t *Telemetry
}

func (s *blobStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	ctx, o := s.t.begin(ctx, blobs, "put")
	n, err := s.BlobStore.Put(ctx, key, r)
	o.end(err)
	return n, err
}

func (s *blobStore) Open(ctx context.Context, key string) (imaged.Blob, error) {
	ctx, o := s.t.begin(ctx, blobs, "open")
	b, err := s.BlobStore.Open(ctx, key)
	o.end(err)
	return b, err
}

func (s *blobStore) Stat(ctx context.Context, key string) (imaged.BlobInfo, error) {
	ctx, o := s.t.begin(ctx, blobs, "stat")
	i, err := s.BlobStore.Stat(ctx, key)
	o.end(err)
	return i, err
}

func (s *blobStore) Delete(ctx context.Context, key string) error {
	ctx, o := s.t.begin(ctx, blobs, "delete")
	err := s.BlobStore.Delete(ctx, key)
	o.end(err)
	return err
}

func (s *blobStore) Walk(ctx context.Context, after string, fn func(imaged.BlobInfo) error) error {
	ctx, o := s.t.begin(ctx, blobs, "walk")
	err := s.BlobStore.Walk(ctx, after, fn)
	o.end(err)
	return err
}

// Generator opens a span around each call of g when tracing is on (the
// generation metrics come from the generation service, which sees retries).
func (t *Telemetry) Generator(g imaged.Generator) imaged.Generator {
	if t == nil || t.tracer == nil {
		return g
	}
	if _, ok := g.(imaged.Editor); ok {
		return &editor{generator{g, t}}
	}
	return &generator{g, t}
}

// editor is the traced generator of a provider that also edits.
type editor struct{ generator }

func (g *editor) Edit(ctx context.Context, req imaged.EditRequest) ([]imaged.GeneratedImage, error) {
	ctx, span := g.t.tracer.Start(ctx, "provider.edit", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("imaged.provider", g.Name()), attribute.String("imaged.model", req.Model)))
	defer span.End()
	out, err := g.Generator.(imaged.Editor).Edit(ctx, req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, string(imaged.ErrCode(err)))
	}
	return out, err
}

type generator struct {
	imaged.Generator
	t *Telemetry
}

func (g *generator) Generate(ctx context.Context, req imaged.GenerateRequest) ([]imaged.GeneratedImage, error) {
	ctx, span := g.t.tracer.Start(ctx, "provider.generate", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("imaged.provider", g.Name()), attribute.String("imaged.model", req.Model)))
	defer span.End()
	out, err := g.Generator.Generate(ctx, req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, string(imaged.ErrCode(err)))
	}
	return out, err
}
