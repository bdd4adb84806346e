package main

import (
	"encoding/hex"
	"log/slog"
	"path/filepath"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/jwtauth"
	"github.com/imaged/imaged/provenance"
	"github.com/imaged/imaged/render"
	"github.com/imaged/imaged/urlsign"
	"github.com/imaged/imaged/variants"
)

// signingKeyFile is where the embedded default keeps its generated key for
// transform URLs: 64 hex characters, which are the key (as text).
const signingKeyFile = "signing-key"

// newVariants returns the variants service: the presets of IMAGED_VARIANTS
// over the defaults, transform URLs signed with IMAGED_SIGNING_KEY or the
// data directory's key, renders on r, marked by mark (the provenance
// marker's MarkVariant: variants of AI-generated images say so again).
func newVariants(cfg *config, imgs *images.Service, blobs imaged.BlobStore, r *render.Pool, mark variants.MarkFunc, log *slog.Logger) (*variants.Service, error) {
	presets, err := variants.ParsePresets(cfg.Variants, cfg.RenderMaxSide)
	if err != nil {
		return nil, usageError{err}
	}
	key := []byte(cfg.SigningKey)
	if cfg.SigningKey == "" {
		secret, err := jwtauth.LoadOrCreateSecret(filepath.Join(cfg.DataDir, signingKeyFile))
		if err != nil {
			return nil, err
		}
		key = []byte(hex.EncodeToString(secret))
		if cfg.DatabaseURL != "" {
			log.Warn("IMAGED_SIGNING_KEY is not set: transform URLs are signed with this data directory's key, which other replicas do not share unless they share the directory")
		}
	}
	signer, err := urlsign.New(key)
	if err != nil {
		return nil, usagef("IMAGED_SIGNING_KEY must be at least %d bytes", urlsign.MinKeyLen)
	}
	return variants.New(imgs, blobs, variants.Config{
		Presets:  presets,
		Renderer: r,
		Signer:   signer,
		Limits: render.Limits{
			MaxSide:        cfg.RenderMaxSide,
			MaxPixels:      cfg.MaxPixels,
			MaxSourceBytes: max(cfg.MaxFileSize, render.DefaultMaxSourceBytes),
		},
		Mark:    mark,
		CanMark: provenance.CanMark,
		Logger:  log,
	}), nil
}
