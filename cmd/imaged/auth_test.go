package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/jwtauth"
)

func TestJWKSAndSecret(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, _ := key.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","use":"sig","kid":"k1","crv":"P-256","x":%q,"y":%q}]}`, b64(point[1:33]), b64(point[33:]))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, jwks) }))
	defer srv.Close()
	log := slog.New(slog.DiscardHandler)

	tests := []struct {
		name        string
		cfg         config
		wantErr     string
		acceptsHMAC bool
	}{
		{"without_JWKS_the_data_directory_secret_is_accepted", config{}, "", true},
		{"with_JWKS_the_data_directory_secret_is_refused", config{JWKSURL: srv.URL}, "", false},
		{"with_JWKS_and_the_setting_both_are_accepted", config{JWKSURL: srv.URL, SecretWithJWKS: true}, "", true},
		{"with_JWKS_an_explicit_secret_needs_the_setting", config{JWKSURL: srv.URL, JWTSecret: strings.Repeat("s", 32)}, "IMAGED_JWT_SECRET_WITH_JWKS", false},
		{"with_JWKS_an_explicit_secret_and_the_setting_is_accepted", config{JWKSURL: srv.URL, JWTSecret: strings.Repeat("s", 32), SecretWithJWKS: true}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.DataDir = t.TempDir()
			auth, secret, _, err := newAuthenticator(context.Background(), &cfg, log)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (secret != nil) != tt.acceptsHMAC {
				t.Fatalf("secret returned = %v, want %v", secret != nil, tt.acceptsHMAC)
			}
			// The data directory's secret exists whatever the setting
			// (imaged token makes it); it must verify only when accepted.
			s, _, err := hmacSecret(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwtauth.Mint(s, "alice", time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, err = auth.Authenticate(context.Background(), tok)
			if tt.acceptsHMAC && err != nil {
				t.Errorf("HS256 token refused: %v", err)
			}
			if !tt.acceptsHMAC && err == nil {
				t.Error("HS256 token accepted beside the JWKS without the setting")
			}
		})
	}
}
