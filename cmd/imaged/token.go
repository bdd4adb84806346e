package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/imaged/imaged/jwtauth"
)

// secretFile is where the embedded default keeps its generated HS256 secret.
const secretFile = "jwt-secret"

// hmacSecret returns the HS256 secret: IMAGED_JWT_SECRET when set, else the
// one kept (created once, mode 0600) in the data directory. generated tells
// which.
func hmacSecret(cfg *config) (secret []byte, generated bool, err error) {
	if cfg.JWTSecret != "" {
		if len(cfg.JWTSecret) < 32 {
			return nil, false, errors.New("IMAGED_JWT_SECRET must be at least 32 bytes")
		}
		return []byte(cfg.JWTSecret), false, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, false, fmt.Errorf("create data directory: %w", err)
	}
	s, err := jwtauth.LoadOrCreateSecret(filepath.Join(cfg.DataDir, secretFile))
	return s, true, err
}

// token prints a bearer token for a subject, signed with the secret the
// service uses.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, parse := newFlagSet("imaged token", getenv, stderr, "data-dir", "jwt-secret")
	sub := fs.String("sub", "", "subject (owner) of the token; required")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if *sub == "" {
		fs.Usage()
		return usagef("--sub is required")
	}
	if *ttl <= 0 {
		return usagef("--ttl must be positive")
	}
	secret, _, err := hmacSecret(cfg)
	if err != nil {
		return err
	}
	tok, err := jwtauth.Mint(secret, *sub, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// migrate applies the schema migrations (opening a store does) and exits.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	_, parse := newFlagSet("imaged migrate", getenv, stderr, "data-dir", "database-url")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	b, err := openBackends(ctx, cfg, getenv)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintln(stdout, "migrations applied:", b.where)
	return nil
}
