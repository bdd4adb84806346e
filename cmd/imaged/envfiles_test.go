package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithFileVars(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cr3t-value\n"), 0o600)
	env := map[string]string{"IMAGED_ADDR": ":9000"}
	getenv := func(k string) string { return env[k] }

	t.Run("value_comes_from_the_file", func(t *testing.T) {
		g, err := withFileVars(getenv, []string{"IMAGED_JWT_SECRET_FILE=" + secret, "IMAGED_ADDR=:9000"})
		if err != nil {
			t.Fatal(err)
		}
		if got := g("IMAGED_JWT_SECRET"); got != "s3cr3t-value" {
			t.Fatalf("IMAGED_JWT_SECRET = %q", got)
		}
		if got := g("IMAGED_ADDR"); got != ":9000" {
			t.Fatalf("other variables changed: %q", got)
		}
	})
	t.Run("aws_variables_too", func(t *testing.T) {
		g, err := withFileVars(getenv, []string{"AWS_SECRET_ACCESS_KEY_FILE=" + secret})
		if err != nil || g("AWS_SECRET_ACCESS_KEY") != "s3cr3t-value" {
			t.Fatalf("%v", err)
		}
	})
	t.Run("both_set_is_refused", func(t *testing.T) {
		_, err := withFileVars(getenv, []string{"IMAGED_ADDR_FILE=" + secret})
		if err == nil || !strings.Contains(err.Error(), "keep one") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing_file_is_an_error", func(t *testing.T) {
		if _, err := withFileVars(getenv, []string{"IMAGED_JWT_SECRET_FILE=" + filepath.Join(dir, "nope")}); err == nil {
			t.Fatal("no error for a missing file")
		}
	})
	t.Run("other_prefixes_are_ignored", func(t *testing.T) {
		g, err := withFileVars(getenv, []string{"HOME_FILE=" + secret})
		if err != nil || g("HOME") != "" {
			t.Fatalf("%q, %v", g("HOME"), err)
		}
	})
}
