// Package http serves the images API over HTTP: the JSON API under /api with
// its envelope, the image bytes under /cdn, health checks and the OpenAPI
// description. It depends on the domain and the services only, never on a
// storage driver.
package http

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/http/fastlane"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/telemetry"
	"github.com/imaged/imaged/variants"
	"github.com/imaged/imaged/webhooks"
)

// Check is one dependency that /readyz asks.
type Check struct {
	Name string // "database", "object storage"
	imaged.Pinger
}

// Config wires the server.
type Config struct {
	Images *images.Service
	Auth   imaged.Authenticator
	Logger *slog.Logger
	// BaseURL is the public base of this service ("https://img.example.com"),
	// used for image URLs; when empty it is taken from each request's Host.
	BaseURL string
	// CDNBaseURL, when set, is where the bytes are published: an image's url
	// is CDNBaseURL + "/" + its key (a CDN in front of /cdn, or a public bucket).
	CDNBaseURL string
	// MaxFiles bounds one upload-multiple request; 10 if 0.
	MaxFiles int
	// Ready lists the dependencies /readyz checks.
	Ready []Check
	// BodyIdleTimeout cuts off a request body that sends no byte for that
	// long, with 408 (DefaultBodyIdleTimeout if 0; negative disables).
	BodyIdleTimeout time.Duration
	// Telemetry, when set, records every request and serves GET /metrics
	// on this server unless MetricsElsewhere (a separate address serves it).
	Telemetry        *telemetry.Telemetry
	MetricsToken     string
	MetricsElsewhere bool
	// CursorKey signs the listing cursors given to clients (see cursor.go);
	// every replica needs the same one. A random key if nil.
	CursorKey []byte
	// Generation and Idempotency enable the generation endpoints.
	Generation  *generation.Service
	Idempotency imaged.IdempotencyStore
	// CORS lets pages of other origins call the API (nil: none may).
	CORS *CORS
	// Webhooks enables the webhook secret routes and a job's deliveries.
	Webhooks *webhooks.Service
	// Variants, when set, adds the variants of every image: the variants
	// field, /api/variants, /api/images/{id}/variant and the /cdn routes.
	Variants *variants.Service
	// LocalBlobs says the blob store keeps its blobs as local files
	// (fsblob): plain GETs of them are then answered in the fast lane
	// (see Listen). Over a bucket every byte URL is net/http's, so that no
	// blob is opened twice.
	LocalBlobs bool
}

// Server is the HTTP face of the service.
type Server struct {
	images     *images.Service
	auth       imaged.Authenticator
	log        *slog.Logger
	baseURL    string
	cdnBaseURL string
	maxFiles   int
	bodyIdle   time.Duration
	cursorKey  []byte
	tel        *telemetry.Telemetry
	ready      []Check
	gen        *generation.Service
	idem       imaged.IdempotencyStore
	hooks      *webhooks.Service
	// streams ends with CloseStreams: event streams outlive no shutdown.
	streams      context.Context
	closeStreams context.CancelFunc
	variants     *variants.Service
	localBlobs   bool
	fastAnswers  atomic.Uint64 // answers the fast lane gave (fastcdn.go, fastapi.go)
	lanesMu      sync.Mutex
	lanes        []*fastlane.Listener // the fast lanes Listen made, for Shutdown
	presetNames  []string             // sorted; the keys of every image's variants object
	mux          *http.ServeMux
	handler      http.Handler
}

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	s := &Server{
		images:      cfg.Images,
		auth:        cfg.Auth,
		log:         cfg.Logger,
		baseURL:     strings.TrimRight(cfg.BaseURL, "/"),
		localBlobs:  cfg.LocalBlobs,
		cdnBaseURL:  strings.TrimRight(cfg.CDNBaseURL, "/"),
		maxFiles:    cfg.MaxFiles,
		bodyIdle:    cfg.BodyIdleTimeout,
		cursorKey:   cfg.CursorKey,
		tel:         cfg.Telemetry,
		ready:       cfg.Ready,
		gen:         cfg.Generation,
		idem:        cfg.Idempotency,
		hooks:       cfg.Webhooks,
		variants:    cfg.Variants,
		presetNames: sortedPresetNames(cfg.Variants),
		mux:         http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	if s.maxFiles <= 0 {
		s.maxFiles = 10
	}
	if len(s.cursorKey) == 0 {
		s.cursorKey = newCursorKey()
	}
	if s.bodyIdle == 0 {
		s.bodyIdle = DefaultBodyIdleTimeout
	}
	s.routes()
	if cfg.Telemetry != nil && !cfg.MetricsElsewhere {
		s.mux.Handle("GET /metrics", cfg.Telemetry.Handler(cfg.MetricsToken))
	}
	s.handler = s.observe(cfg.CORS.wrap(s.mux))
	return s
}

// Handle registers a route behind the common middleware, and behind the
// bearer token check when auth is set.
func (s *Server) Handle(pattern string, h http.HandlerFunc, auth bool) {
	if auth {
		h = s.authenticated(h)
	}
	s.mux.HandleFunc(pattern, h)
}

// CloseStreams ends the event streams being served (their clients resume
// elsewhere with Last-Event-ID), so that a graceful shutdown need not wait
// for jobs to end: pass it to http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeStreams() }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) routes() {
	s.Handle("GET /healthz", s.handleHealth, false)
	s.Handle("GET /readyz", s.handleReady, false)
	s.Handle("GET /api/openapi.json", handleOpenAPI, false)

	s.Handle("GET /api/images", s.handleListImages, true)
	s.Handle("GET /api/images/{id}", s.handleGetImage, true)
	s.Handle("DELETE /api/images/{id}", s.handleDeleteImage, true)
	s.Handle("DELETE /api/media/{id}", s.handleDeleteImage, true)
	s.Handle("POST /api/media/upload", s.handleUpload, true)
	s.Handle("POST /api/media/upload-multiple", s.handleUploadMultiple, true)
	if s.idem != nil {
		s.Handle("POST /api/media/import", s.idempotent(false, s.handleImport), true)
	} else {
		s.Handle("POST /api/media/import", s.handleImport, true)
	}

	s.Handle("GET /cdn/{key}", s.handleBlob, false)

	if s.variants != nil {
		s.Handle("GET /api/variants", s.handleListPresets, true)
		// GET /api/images/{id}/variant, which a literal pattern cannot
		// name: it would conflict with GET /api/images/generations/{jobId}
		// (both match /api/images/generations/variant).
		s.Handle("GET /api/images/{id}/{resource}", s.handleImageResource, true)
		s.Handle("GET /cdn/{key}/{preset}", s.handlePresetVariant, false)
		s.Handle("GET /cdn/{key}/{transform}/{signature}", s.handleSignedVariant, false)
	}

	if s.gen != nil && s.idem != nil {
		s.Handle("GET /api/images/models", s.handleModels, true)
		s.Handle("POST /api/images/generate", s.idempotent(false, s.handleGenerate), true)
		s.Handle("POST /api/images/generate-with-idempotency", s.idempotent(true, s.handleGenerate), true)
		s.Handle("GET /api/images/generations", s.handleListJobs, true)
		s.Handle("GET /api/images/generations/{jobId}", s.handleGetJob, true)
		s.Handle("GET /api/images/generations/{jobId}/events", s.handleJobEvents, true)
		s.Handle("POST /api/images/{id}/edit", s.idempotentUpTo(false, s.editBodyLimit(), s.handleEdit), true)
	}
	if s.gen != nil && s.hooks != nil {
		s.Handle("GET /api/webhooks/secret", s.handleWebhookSecret, true)
		s.Handle("POST /api/webhooks/secret/rotate", s.handleRotateWebhookSecret, true)
		s.Handle("GET /api/images/generations/{jobId}/webhooks", s.handleJobDeliveries, true)
	}

	s.mux.HandleFunc("/", s.handleUnmatched)
}

// handleUnmatched answers 405 (with Allow) when the path exists for other
// methods, else 404, both in the envelope.
func (s *Server) handleUnmatched(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, r, imaged.Errorf(imaged.EMethodNotAllowed, "Method %s is not allowed here", r.Method))
		return
	}
	writeError(w, r, imaged.Errorf(imaged.ERouteNotFound, "No such route"))
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeData(w, http.StatusOK, "OK", map[string]string{"status": "ok"})
}

// handleReady pings each dependency with a bounded time.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	var failed error
	for _, c := range s.ready {
		if err := c.Ping(ctx); err != nil {
			checks[c.Name] = "unavailable"
			if failed == nil {
				failed = imaged.Unavailable(c.Name, err)
			}
			continue
		}
		checks[c.Name] = "ok"
	}
	if failed != nil {
		writeError(w, r, failed)
		return
	}
	writeData(w, http.StatusOK, "OK", map[string]any{"status": "ready", "checks": checks})
}
