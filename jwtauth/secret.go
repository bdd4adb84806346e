package jwtauth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxSecretFileSize bounds what LoadOrCreateSecret reads.
const maxSecretFileSize = 4 << 10

// Mint returns an HS256 token for subject, signed with secret, issued at now
// and expiring ttl later, with a random "jti". It sets neither "iss" nor
// "aud", so an Authenticator that checks either will refuse it.
func Mint(secret []byte, subject string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("jwtauth: secret is %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if subject == "" || len(subject) > MaxSubjectLen {
		return "", fmt.Errorf("jwtauth: subject must be 1 to %d bytes", MaxSubjectLen)
	}
	if ttl <= 0 {
		return "", errors.New("jwtauth: token lifetime must be positive")
	}
	claims := jwt.RegisteredClaims{
		Subject:   subject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        rand.Text(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// LoadOrCreateSecret returns the HMAC secret kept hex-encoded in the file at
// path. If there is no such file it creates one holding 32 random bytes, with
// mode 0600; the file appears whole or not at all, and if another process
// creates it first, that process's secret is returned. An existing secret
// shorter than 32 bytes is refused; one that other users may read is accepted
// with a warning.
func LoadOrCreateSecret(path string) ([]byte, error) {
	secret, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}

	secret = make([]byte, MinSecretLen)
	rand.Read(secret)
	encoded := []byte(hex.EncodeToString(secret) + "\n")

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jwtauth: creating secret directory: %w", err)
	}
	err = createExclusive(path, encoded)
	if errors.Is(err, fs.ErrExist) {
		// Another process won the race; its file is complete.
		return readSecret(path)
	} else if err != nil {
		return nil, fmt.Errorf("jwtauth: creating secret file: %w", err)
	}
	return secret, nil
}

// createExclusive writes data to a temporary file next to path and links it
// into place, so that path never exists with partial content; it fails with
// fs.ErrExist if path exists. On file systems without hard links it falls
// back to creating path with O_EXCL.
func createExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	err = os.Link(tmp.Name(), path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// readSecret reads and decodes an existing secret file.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("jwtauth: reading secret file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		slog.Warn("jwtauth: secret file is readable by other users; chmod 600 it", "path", path, "mode", info.Mode().Perm().String())
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("jwtauth: reading secret file: %w", err)
	}
	if len(raw) > maxSecretFileSize {
		return nil, fmt.Errorf("jwtauth: secret file %s is larger than %d bytes", path, maxSecretFileSize)
	}
	secret, err := hex.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil {
		return nil, fmt.Errorf("jwtauth: secret file %s is not hex-encoded", path)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("jwtauth: secret in %s is %d bytes, want at least %d", path, len(secret), MinSecretLen)
	}
	return secret, nil
}
