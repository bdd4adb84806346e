package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the imaged executable TestMain builds once for every test.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "imaged-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "imaged")
	cmd := exec.Command(goTool(), "build", "-o", binary, "./cmd/imaged")
	cmd.Dir = ".." // the module root; go test runs in the package directory
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building imaged: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// Backend selection. By default every server keeps its metadata in SQLite
// and its bytes in a directory, both under its data directory.
// IMAGED_E2E_DATABASE_URL and IMAGED_E2E_S3_* are handed to the server as
// IMAGED_DATABASE_URL and IMAGED_S3_*; tests then share that database and
// bucket, so each test uses its own token subjects (see users).
const e2ePrefix = "IMAGED_E2E_"

// sharedBackend reports whether the servers of different tests share a
// database.
func sharedBackend() bool { return os.Getenv(e2ePrefix+"DATABASE_URL") != "" }

// serverEnv is the environment of every imaged process: the test's own,
// minus any IMAGED_* and AWS_* variable (so that a developer's shell cannot
// change the backend by accident), plus the backend chosen by IMAGED_E2E_*
// (a missing S3 bucket is created unless IMAGED_E2E_S3_CREATE_BUCKET says
// otherwise), plus extra.
func serverEnv(extra map[string]string) []string {
	var env []string
	var backend []string
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, e2ePrefix):
			if value != "" {
				backend = append(backend, "IMAGED_"+strings.TrimPrefix(name, e2ePrefix)+"="+value)
			}
		case strings.HasPrefix(name, "IMAGED_"), strings.HasPrefix(name, "AWS_"):
		default:
			env = append(env, kv)
		}
	}
	env = append(env, backend...)
	if os.Getenv(e2ePrefix+"S3_BUCKET") != "" && os.Getenv(e2ePrefix+"S3_CREATE_BUCKET") == "" {
		// A test bucket is throwaway: create it when missing.
		env = append(env, "IMAGED_S3_CREATE_BUCKET=true")
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// serverOpts configures one imaged process.
type serverOpts struct {
	// DataDir is the --data-dir; empty means a fresh temporary directory.
	// Two servers given the same DataDir (and the same backend) are two
	// replicas of one service.
	DataDir string
	// Addr is the --addr to listen on; empty means a free loopback port.
	Addr string
	// Env adds IMAGED_* settings such as IMAGED_MAX_FILE_SIZE.
	Env map[string]string
}

// server is one running imaged process.
type server struct {
	t       *testing.T
	DataDir string
	Base    string // http://127.0.0.1:PORT
	env     []string

	cmd    *exec.Cmd
	output *syncBuffer // stdout and stderr, for failure reports
	exited chan struct{}
	err    error // the process's exit status, once exited is closed

	stopOnce sync.Once
}

// syncBuffer is a bytes.Buffer safe for the concurrent writers of a process.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `imaged serve` on a free loopback port and returns once
// /healthz answers 200. At cleanup the process gets SIGTERM and must exit 0.
func startServer(t *testing.T, opts serverOpts) *server {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	s := &server{
		t:       t,
		DataDir: opts.DataDir,
		env:     serverEnv(opts.Env),
		output:  &syncBuffer{},
		exited:  make(chan struct{}),
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s.cmd = exec.Command(binary, "serve", "--addr", opts.Addr, "--data-dir", opts.DataDir)
	s.cmd.Env = s.env
	s.cmd.Stderr = s.output
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting imaged: %v", err)
	}

	// The banner's first line says where it listens; the rest is kept.
	listening := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.output, line)
			if _, after, ok := strings.Cut(line, " listening on "); ok && !found {
				found = true
				listening <- strings.TrimSpace(after)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-copied // Wait must not close the pipe while it is read
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("imaged output (%s):\n%s", s.Base, s.output.String())
		}
	})

	select {
	case s.Base = <-listening:
	case <-s.exited:
		t.Fatalf("imaged exited before listening: %v\n%s", s.err, s.output.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("imaged did not print where it listens within 30s:\n%s", s.output.String())
	}
	if !strings.HasPrefix(s.Base, "http://127.0.0.1:") {
		t.Fatalf("imaged listens on %q, want a loopback http URL", s.Base)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := httpClient.Get(s.Base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz did not answer 200 within 30s (last error: %v)", err)
		}
		select {
		case <-s.exited:
			t.Fatalf("imaged exited while starting: %v", s.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for the process, failing the test unless it
// exits 0 (a graceful shutdown). Calling it again does nothing.
func (s *server) Stop() {
	s.t.Helper()
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			s.t.Errorf("imaged exited on its own: %v", s.err)
			return
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			s.t.Errorf("SIGTERM: %v", err)
		}
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			s.t.Errorf("imaged did not exit within 30s of SIGTERM")
			return
		}
		if s.err != nil {
			s.t.Errorf("imaged did not shut down cleanly after SIGTERM: %v", s.err)
		}
	})
}

// waitOutput waits (up to 10s) until the process has printed substr and
// returns all its output so far.
func (s *server) waitOutput(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := s.output.String()
		if strings.Contains(out, substr) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Token mints a bearer token for subject with `imaged token`, signed with
// the secret of the server's data directory.
func (s *server) Token(subject string) string {
	s.t.Helper()
	return mintToken(s.t, s.DataDir, s.env, subject)
}

func mintToken(t *testing.T, dataDir string, env []string, subject string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "token", "--sub", subject, "--data-dir", dataDir)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("imaged token --sub %s: %v\n%s", subject, err, stderr.String())
	}
	tok := strings.TrimSpace(string(out))
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("imaged token printed %q, want a JWT", tok)
	}
	return tok
}

// users returns the subjects alice and bob. When tests share a database,
// each test gets its own pair so that listings and quotas do not mix.
func users(t *testing.T) (alice, bob string) {
	if !sharedBackend() {
		return "alice", "bob"
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	suffix := "-" + hex.EncodeToString(b[:])
	return "alice" + suffix, "bob" + suffix
}
