package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli runs the imaged binary as a client, with its own configuration
// directory (where imaged login saves).
type cli struct {
	t         *testing.T
	env       []string
	configDir string
}

func newCLI(t *testing.T, extra ...string) *cli {
	home := t.TempDir()
	config := filepath.Join(home, "config")
	env := append(serverEnv(nil), "HOME="+home, "XDG_CONFIG_HOME="+config, "DISPLAY=", "WAYLAND_DISPLAY=")
	return &cli{t: t, env: append(env, extra...), configDir: config}
}

// result is what one run printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("imaged %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs a command that must exit 0 and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.t.Fatalf("imaged %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must exit with code and mention want on stderr.
func (c *cli) fails(code int, want string, args ...string) result {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		c.t.Errorf("imaged %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.code, r.stderr, code, want)
	}
	return r
}

func (c *cli) images(args ...string) []imageObject {
	c.t.Helper()
	var imgs []imageObject
	out := c.ok(append([]string{"ls", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &imgs); err != nil {
		c.t.Fatalf("imaged ls --json printed %q: %v", out, err)
	}
	return imgs
}

func TestCLI(t *testing.T) {
	s := startServer(t, serverOpts{})
	alice, _ := users(t)
	c := newCLI(t)

	// Without a login the client says how to get one (a usage mistake).
	c.fails(2, "imaged login", "ls", "--url", s.Base)

	// login reads the token from standard input, checks it and saves it 0600.
	if r := c.run("not-a-token\n", "login", "--url", s.Base); r.code != 1 || !strings.Contains(r.stderr, "UNAUTHORIZED") {
		t.Errorf("login with a bad token: exit %d, stderr %q; want 1 and UNAUTHORIZED", r.code, r.stderr)
	}
	r := c.run(s.Token(alice)+"\n", "login", "--url", s.Base)
	if r.code != 0 || !strings.Contains(r.stdout, "Signed in to "+s.Base) {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	saved := filepath.Join(c.configDir, "imaged", "login.json")
	if fi, err := os.Stat(saved); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("saved login %s: %v, mode %v; want 0600", saved, err, fi)
	}

	if imgs := c.images(); len(imgs) != 0 {
		t.Errorf("a new account lists %d images", len(imgs))
	}

	// upload: one image per file; a text file fails on its own with its errorCode.
	dir := t.TempDir()
	a, b, notes := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.jpg"), filepath.Join(dir, "notes.txt")
	pa := pngImage(t, 40, 30, 1)
	os.WriteFile(a, pa, 0o644)
	os.WriteFile(b, jpegImage(t, 32, 32, 2), 0o644)
	os.WriteFile(notes, []byte("not an image"), 0o644)
	r = c.run("", "upload", a, notes, b)
	if r.code != 1 || !strings.Contains(r.stderr, "UNSUPPORTED_MEDIA_TYPE") || !strings.Contains(r.stderr, "notes.txt") {
		t.Errorf("upload with a text file: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "a.png") || !strings.Contains(r.stdout, "b.jpg") || !strings.Contains(r.stdout, "40x30") {
		t.Errorf("upload printed %q, want both images", r.stdout)
	}
	imgs := c.images()
	if len(imgs) != 2 || imgs[0].OriginalFilename != "b.jpg" || imgs[1].OriginalFilename != "a.png" {
		t.Fatalf("after upload ls lists %+v", imgs)
	}
	idA := imgs[1].ID

	// ls: a table, filters, flags after the arguments.
	table := c.ok("ls")
	if !strings.HasPrefix(table, "ID ") || !strings.Contains(table, idA) || strings.Count(table, "\n") != 3 {
		t.Errorf("ls printed:\n%s", table)
	}
	if got := c.images("--search", "A.PN"); len(got) != 1 || got[0].ID != idA {
		t.Errorf("ls --search A.PN = %+v", got)
	}
	if got := c.ok("ls", "-n", "1"); strings.Count(got, "\n") != 2 {
		t.Errorf("ls -n 1 printed:\n%s", got)
	}

	// get: metadata, JSON, and the bytes with --output (flag after the id).
	if out := c.ok("get", idA); !strings.Contains(out, "a.png") || !strings.Contains(out, "40x30") || !strings.Contains(out, "image/png") {
		t.Errorf("get printed:\n%s", out)
	}
	saveTo := filepath.Join(dir, "copy.png")
	c.ok("get", idA, "--output", saveTo)
	if got, err := os.ReadFile(saveTo); err != nil || !bytes.Equal(got, pa) {
		t.Errorf("get --output wrote %d bytes (%v), want the uploaded %d", len(got), err, len(pa))
	}
	if out := c.ok("get", "-o", "-", idA); out != string(pa) {
		t.Errorf("get -o - printed %d bytes, want %d", len(out), len(pa))
	}

	// open prints the URL when there is no desktop to open it on.
	if out := c.ok("open", idA); !strings.HasPrefix(out, s.Base+"/cdn/") {
		t.Errorf("open printed %q", out)
	}

	// generate: an async job with progress on stderr, files written.
	outDir := filepath.Join(dir, "out")
	r = c.run("", "generate", "a lighthouse at dusk", "--aspect", "16:9", "-n", "2", "-o", outDir)
	if r.code != 0 || !strings.Contains(r.stderr, "succeeded") {
		t.Fatalf("generate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	files := strings.Fields(r.stdout)
	if len(files) != 2 {
		t.Fatalf("generate printed %q, want two files", r.stdout)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("generated file %s: %v, %d bytes", f, err, len(data))
		}
	}
	if got := c.images("--source", "generation"); len(got) != 2 || got[0].Prompt != "a lighthouse at dusk" || got[0].Width <= got[0].Height {
		t.Errorf("generated images = %+v", got)
	}
	c.fails(1, "INVALID_IMAGE_PROMPT", "generate", "x", "--aspect", "5:1")
	c.fails(2, "needs a prompt", "generate")
	if out := c.ok("generate", "--models"); !strings.Contains(out, "builtin (default)") {
		t.Errorf("generate --models printed:\n%s", out)
	}

	// rm: several ids; an unknown one fails on its own with its errorCode.
	r = c.run("", "rm", idA, "01a221fc-369e-7afb-a289-ab4bbc7bb71e")
	if r.code != 1 || !strings.Contains(r.stdout, "deleted "+idA) || !strings.Contains(r.stderr, "MEDIA_NOT_FOUND") {
		t.Errorf("rm: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	c.fails(1, "MEDIA_NOT_FOUND", "get", idA)

	// The environment wins over the saved login; a bad flag is a usage error.
	other := newCLI(t, "IMAGED_URL="+s.Base, "IMAGED_TOKEN="+s.Token(alice))
	if got := other.images(); len(got) != 3 {
		t.Errorf("with IMAGED_URL and IMAGED_TOKEN ls lists %d images, want 3", len(got))
	}
	other.fails(2, "flag provided but not defined", "ls", "--bogus")
	other.fails(2, "one image id", "get")

	// logout forgets the saved login.
	c.ok("logout")
	c.fails(2, "imaged login", "ls")
}

// TestCommandLine: help, version and unknown variables, over the binary.
func TestCommandLine(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out := c.ok(args...)
		for _, name := range []string{"serve", "token", "migrate", "gc", "login", "generate", "upload", "ls", "get", "rm", "open", "version"} {
			if !strings.Contains(out, "\n  "+name+" ") {
				t.Errorf("imaged %s does not list %s", args[0], name)
			}
		}
	}
	for _, name := range []string{"serve", "token", "ls", "generate", "upload", "get", "rm", "open", "login", "migrate-store", "healthcheck"} {
		if out := c.ok(name, "--help"); !strings.HasPrefix(out, "Usage: imaged "+name) {
			t.Errorf("imaged %s --help printed %q", name, out)
		}
	}
	if out := c.ok("version"); !strings.Contains(out, "module github.com/imaged/imaged") || !strings.Contains(out, "commit ") {
		t.Errorf("imaged version printed %q", out)
	}
	c.fails(2, "unknown command", "frobnicate")

	typo := newCLI(t, "IMAGED_QUOTA_IMAGE_PER_DAY=5")
	r := typo.run("", "version")
	if r.code != 0 || !strings.Contains(r.stderr, "IMAGED_QUOTA_IMAGE_PER_DAY") || !strings.Contains(r.stderr, "IMAGED_QUOTA_IMAGES_PER_DAY") {
		t.Errorf("an unknown variable: exit %d, stderr %q; want a warning naming it and the near name", r.code, r.stderr)
	}
	s := startServer(t, serverOpts{Env: map[string]string{"IMAGED_QUOTA_IMAGE_PER_DAY": "5"}})
	if out := s.waitOutput(t, "IMAGED_QUOTA_IMAGE_PER_DAY"); !strings.Contains(out, "level=WARN") {
		t.Errorf("serve did not warn about IMAGED_QUOTA_IMAGE_PER_DAY:\n%s", out)
	}
}
