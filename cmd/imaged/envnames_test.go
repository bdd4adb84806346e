package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestUnknownEnvWarnings(t *testing.T) {
	got := unknownEnvWarnings([]string{
		"IMAGED_QUOTA_IMAGE_PER_DAY=3", // a typo
		"IMAGED_ADDR=:8080",            // known
		"IMAGED_JWT_SECRET_FILE=/run/s",
		"IMAGED_TEST_DATABASE_URL=x", // the tests' own
		"IMAGED_COMPLETELY_DIFFERENT=1",
		"PATH=/bin",
	})
	if len(got) != 2 {
		t.Fatalf("warnings = %q, want two", got)
	}
	if !strings.Contains(got[1], "IMAGED_QUOTA_IMAGE_PER_DAY") || !strings.Contains(got[1], "did you mean IMAGED_QUOTA_IMAGES_PER_DAY?") {
		t.Errorf("typo warning = %q", got[1])
	}
	if !strings.Contains(got[0], "IMAGED_COMPLETELY_DIFFERENT") || strings.Contains(got[0], "did you mean") {
		t.Errorf("far name warning = %q", got[0])
	}
}

// envName is an IMAGED_ variable name as code and docs spell it. Names that
// end in "_" are prefixes built on (IMAGED_S3_ + ...), not variables.
var envName = regexp.MustCompile(`IMAGED_[A-Z0-9_]*[A-Z0-9]`)

// TestKnownEnv: every IMAGED_ name the README documents and every one in a
// string literal of the service's Go sources is a variable imaged knows,
// so that adding a setting without registering it fails here (and users
// do not get a warning for a documented variable).
func TestKnownEnv(t *testing.T) {
	known := knownEnv()
	check := func(where, name string) {
		if name == "IMAGED_QUOTA_IMAGE_PER_DAY" { // the README's example of a typo
			return
		}
		if isToolVar(name+"_") || known[name] || known[strings.TrimSuffix(name, "_FILE")] {
			return
		}
		t.Errorf("%s names %s, which knownEnv does not list (add it to settings or otherEnv)", where, name)
	}
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range envName.FindAllString(string(readme), -1) {
		check("README.md", name)
	}
	literal := regexp.MustCompile(`"(IMAGED_[A-Z0-9_]*[A-Z0-9])"`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "bench", "e2e", "tools", "node_modules", "testdata", ".git":
				return filepath.SkipDir // the tools' own variables
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			check(path, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
