package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
	imhttp "github.com/imaged/imaged/http"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/jwtauth"
	"github.com/imaged/imaged/telemetry"
	"github.com/imaged/imaged/web"
)

// serve runs the service until ctx is cancelled (SIGINT, SIGTERM), then
// drains in-flight requests within the shutdown timeout.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	_, parse := newFlagSet("imaged serve", getenv, stderr)
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	out := newLogOutput(stderr, logFlushInterval)
	defer out.Close()
	log, err := newLogger(cfg, out)
	if err != nil {
		return err
	}

	for _, w := range unknownEnvWarnings(environ()) {
		log.Warn(w)
	}

	b, err := openBackends(ctx, cfg, getenv)
	if err != nil {
		return err
	}
	defer b.Close()

	auth, secret, generated, err := newAuthenticator(ctx, cfg, log)
	if err != nil {
		return err
	}

	cors, err := imhttp.ParseCORSOrigins(cfg.CORSOrigins)
	if err != nil {
		return usageError{err}
	}

	tel := telemetry.New()
	if telemetry.TracingConfigured(getenv) {
		stop, err := tel.StartTracing(ctx, version)
		if err != nil {
			return fmt.Errorf("tracing: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stop(sctx)
		}()
		log.Info("exporting traces over OTLP/HTTP")
	}
	marker, err := newMarker(cfg, log)
	if err != nil {
		return err
	}
	blobs := tel.BlobStore(b.blobs)
	imgs := images.New(tel.ImageStore(b.db), blobs, images.Config{
		MaxFileSize:   cfg.MaxFileSize,
		MaxPixels:     cfg.MaxPixels,
		KeepMetadata:  cfg.KeepMetadata,
		CacheSize:     cacheSize(cfg.ImageCache),
		ImportAllow:   cfg.OutboundAllow,
		ImportTimeout: cfg.ImportTimeout,
		Marker:        marker,
		Logger:        log,
	})
	provs, err := providers(getenv, log)
	if err != nil {
		return err
	}
	if provs, err = applyModelsFile(cfg.ModelsFile, provs, log); err != nil {
		return err
	}
	for _, w := range maxPixelsWarnings(provs, cfg.MaxPixels) {
		log.Warn(w)
	}
	for i := range provs {
		provs[i] = tel.Generator(provs[i])
	}
	hooks, payload, err := newWebhooks(cfg, b.db, log)
	if err != nil {
		return err
	}
	gen, err := generation.New(imgs, tel.QuotaStore(b.db), tel.JobStore(b.db), generation.Config{
		CheckWebhookURL: hooks.CheckURL,
		JobChanged:      func(string) { hooks.Wake() },
		Providers:       provs,
		DefaultProvider: cfg.DefaultProvider,
		Quota:           imaged.QuotaLimits{ImagesPerDay: cfg.QuotaPerDay, Concurrent: cfg.QuotaConcurrent},
		Timeout:         cfg.GenerationTimeout,
		Workers:         cfg.Workers,
		JobLease:        cfg.JobLease,
		Marker:          marker,
		Observer:        tel,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	if q, ok := b.db.(telemetry.QueueStats); ok {
		tel.WatchQueue(q)
	}
	workers := gen.StartWorkers(ctx)
	defer workers.Stop(cfg.ShutdownTimeout)
	senders := hooks.Start(ctx)
	defer senders.Stop()

	renderer, err := newRenderer(cfg, log, tel.RenderDone)
	if err != nil {
		return err
	}
	defer renderer.Close()
	tel.WatchRenders(telemetry.RenderLoadFunc(func() (int, int, uint64) {
		st := renderer.Stats()
		return st.Busy, st.Queued, st.Rejected
	}))
	vars, err := newVariants(cfg, imgs, blobs, renderer, marker.MarkVariant, log)
	if err != nil {
		return err
	}

	cursorSecret := secret
	if cursorSecret == nil {
		// JWKS only: the data directory's secret signs nothing but cursors.
		if cursorSecret, err = jwtauth.LoadOrCreateSecret(filepath.Join(cfg.DataDir, secretFile)); err != nil {
			return err
		}
	}
	srv := imhttp.New(imhttp.Config{
		CursorKey:        imhttp.CursorKeyFrom(cursorSecret),
		BodyIdleTimeout:  cfg.BodyIdleTimeout,
		Images:           imgs,
		Auth:             auth,
		Logger:           log,
		BaseURL:          cfg.BaseURL,
		CDNBaseURL:       cfg.PublicURL,
		MaxFiles:         cfg.MaxFiles,
		Ready:            b.ready,
		Generation:       gen,
		Idempotency:      tel.IdempotencyStore(b.db),
		CORS:             cors,
		Telemetry:        tel,
		MetricsToken:     cfg.MetricsToken,
		MetricsElsewhere: cfg.MetricsAddr != "",
		Webhooks:         hooks,
		Variants:         vars,
		LocalBlobs:       b.local,
	})
	payload.srv.Store(srv)
	if err := mountPage(srv, cfg, secret, generated, log); err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics address: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", tel.Handler(cfg.MetricsToken))
		ms := imhttp.NewHTTPServer(mux)
		go ms.Serve(mln)
		defer ms.Close()
		log.Info("serving metrics", "addr", "http://"+mln.Addr().String()+"/metrics")
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := imhttp.NewHTTPServer(srv)
	hs.RegisterOnShutdown(srv.CloseStreams)
	hs.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	hs.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	base := "http://" + ln.Addr().String()
	payload.base.Store(&base)
	_, ver, _ := buildVersion()
	log.Info("imaged listening", "addr", base, "storage", b.where, "version", ver)
	printBanner(stdout, cfg, base, secret, generated)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(srv.Listen(ln)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// newAuthenticator builds the token check from the settings. With a JWKS
// URL, HS256 tokens (the secret's) are accepted only when the operator asks
// for both; secret is nil when they are not accepted.
func newAuthenticator(ctx context.Context, cfg *config, log *slog.Logger) (auth *jwtauth.Authenticator, secret []byte, generated bool, err error) {
	if cfg.JWKSURL == "" || cfg.SecretWithJWKS {
		secret, generated, err = hmacSecret(cfg)
		if err != nil {
			return nil, nil, false, err
		}
	} else if cfg.JWTSecret != "" {
		return nil, nil, false, errors.New("IMAGED_JWT_SECRET is set beside IMAGED_JWKS_URL: set IMAGED_JWT_SECRET_WITH_JWKS=true to accept tokens from both, or drop the secret")
	}
	if cfg.JWKSURL != "" {
		if secret != nil {
			log.Info("accepting tokens from the JWKS and from the HS256 secret", "jwks", cfg.JWKSURL)
		} else {
			log.Info("accepting tokens from the JWKS only", "jwks", cfg.JWKSURL)
		}
	}
	auth, err = jwtauth.New(ctx, jwtauth.Config{
		HMACSecret: secret,
		JWKSURL:    cfg.JWKSURL,
		Issuer:     cfg.JWTIssuer,
		Audience:   cfg.JWTAudience,
		MaxTTL:     cfg.JWTMaxTTL,
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("authentication: %w", err)
	}
	return auth, secret, generated, nil
}

// printBanner tells a person where the service listens and, on the embedded
// default, gives a token and a curl line to start with.
func printBanner(w io.Writer, cfg *config, base string, secret []byte, generated bool) {
	_, ver, _ := buildVersion()
	fmt.Fprintf(w, "imaged %s listening on %s\n", ver, base)
	if !devTokenShown(cfg, secret, generated) {
		return
	}
	tok, err := mintDevToken(secret)
	if err != nil {
		return
	}
	fmt.Fprintf(w, "\nA token for the subject \"local-user\", valid 24h (more with: imaged token --sub NAME):\n\n  export TOKEN=%s\n\n", tok)
	fmt.Fprintf(w, "Try:\n  curl -s -H \"Authorization: Bearer $TOKEN\" -F file=@picture.png %s/api/media/upload\n", base)
	fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $TOKEN\" %s/api/images\n\n", base)
}

// newLogger returns the service's logger, writing to out.
func newLogger(cfg *config, out *logOutput) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level must be debug, info, warn or error, got %q", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(cfg.LogFormat) {
	case "json":
		h = slog.NewJSONHandler(out, opts)
	case "text", "":
		h = slog.NewTextHandler(out, opts)
	default:
		return nil, fmt.Errorf("log format must be text or json, got %q", cfg.LogFormat)
	}
	return slog.New(flushingHandler{h, out}), nil
}

// devTokenShown tells whether the service offers a development token: on
// the embedded default (its own generated secret, still accepted), or
// when IMAGED_DEV_TOKEN=true.
func devTokenShown(cfg *config, secret []byte, generated bool) bool {
	show := cfg.DevToken == "true" || (cfg.DevToken == "auto" && generated)
	return show && secret != nil
}

// mintDevToken is the development token: the subject local-user, 24 hours.
func mintDevToken(secret []byte) (string, error) {
	return jwtauth.Mint(secret, "local-user", 24*time.Hour, time.Now())
}

// mountPage adds the gallery page's routes to the server.
func mountPage(srv *imhttp.Server, cfg *config, secret []byte, generated bool, log *slog.Logger) error {
	wc := web.Config{OIDCIssuer: cfg.OIDCIssuer, OIDCClientID: cfg.OIDCClientID, OIDCScopes: strings.Fields(cfg.OIDCScopes),
		OIDCAudience: cfg.OIDCAudience, MaxFileSize: cfg.MaxFileSize}
	if cfg.PublicURL != "" {
		wc.ImageOrigins = []string{cfg.PublicURL}
	}
	if devTokenShown(cfg, secret, generated) {
		wc.DevToken = func() (string, error) { return mintDevToken(secret) }
	}
	if cfg.OIDCIssuer != "" && cfg.JWKSURL == "" {
		log.Warn("IMAGED_OIDC_ISSUER is set without IMAGED_JWKS_URL: the service will refuse the provider's tokens")
	}
	page, err := web.New(wc)
	if err != nil {
		return usageError{err}
	}
	for _, r := range page.Routes() {
		srv.Handle(r.Pattern, r.Handler, false)
	}
	return nil
}

// cacheSize is images.Config.CacheSize for the image-cache setting, where 0
// means off.
func cacheSize(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
