package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imaged/imaged/client"
)

// defaultServiceURL is where client commands look when nothing says
// otherwise: the address `imaged serve` listens on by default.
const defaultServiceURL = "http://127.0.0.1:8080"

// savedLogin is what `imaged login` keeps, in loginPath (mode 0600).
type savedLogin struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// loginPath is os.UserConfigDir()/imaged/login.json
// ($XDG_CONFIG_HOME or ~/.config on Linux, ~/Library/Application Support on
// macOS, %AppData% on Windows).
func loginPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory for the saved login: %w", err)
	}
	return filepath.Join(dir, "imaged", "login.json"), nil
}

func readLogin() (*savedLogin, error) {
	p, err := loginPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &savedLogin{}, nil
	}
	if err != nil {
		return nil, err
	}
	var l savedLogin
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s is not a saved login (%v); run imaged login again", p, err)
	}
	return &l, nil
}

// writeLogin saves l readable by the user only, replacing any previous
// login at once (a temporary file renamed over it).
func writeLogin(l *savedLogin) (string, error) {
	p, err := loginPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".login-*.json")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return p, os.Rename(f.Name(), p)
}

// clientFlags are the flags every client command has.
type clientFlags struct {
	url, token *string
	timeout    *time.Duration
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		url:     fs.String("url", "", "base URL of the service (env IMAGED_URL, else the saved login, else "+defaultServiceURL+")"),
		token:   fs.String("token", "", "bearer token (env IMAGED_TOKEN, else the saved login); visible to other users in ps, prefer the variable"),
		timeout: fs.Duration("timeout", 0, "give up after this long (default: no limit; generation waits for its job)"),
	}
}

// connect returns a client configured from the flags, then the
// environment, then the saved login.
func (f clientFlags) connect(ctx context.Context, e *env) (context.Context, context.CancelFunc, *client.Client, error) {
	url, tok := *f.url, *f.token
	if url == "" {
		url = e.getenv("IMAGED_URL")
	}
	if tok == "" {
		tok = e.getenv("IMAGED_TOKEN")
	}
	if url == "" || tok == "" {
		saved, err := readLogin()
		if err != nil {
			return nil, nil, nil, err
		}
		// The saved token belongs to the saved URL only.
		if url == "" || strings.TrimRight(url, "/") == strings.TrimRight(saved.URL, "/") {
			if url == "" {
				url = saved.URL
			}
			if tok == "" {
				tok = saved.Token
			}
		}
	}
	if url == "" {
		url = defaultServiceURL
	}
	if tok == "" {
		return nil, nil, nil, usagef("no token: run imaged login, or set IMAGED_TOKEN (imaged token --sub NAME prints one on the server's machine)")
	}
	c, err := client.New(url, tok, nil)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	c.UserAgent = "imaged-cli/" + version
	cancel := context.CancelFunc(func() {})
	if *f.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, *f.timeout)
	}
	return ctx, cancel, c, nil
}

// login checks a token against the service and saves both.
func login(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("login", e.stderr)
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("login", rest); err != nil {
		return err
	}
	if *cf.token == "" && e.getenv("IMAGED_TOKEN") == "" {
		tok, err := readTokenLine(e)
		if err != nil {
			return err
		}
		*cf.token = tok
	}
	if *cf.url == "" && e.getenv("IMAGED_URL") == "" {
		*cf.url = defaultServiceURL
	}
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	page, err := c.ListImages(ctx, client.ListOptions{PageSize: 1})
	if err != nil {
		return fmt.Errorf("the token was not accepted by %s: %w", c.BaseURL(), err)
	}
	tok := *cf.token
	if tok == "" {
		tok = e.getenv("IMAGED_TOKEN")
	}
	p, err := writeLogin(&savedLogin{URL: c.BaseURL(), Token: tok})
	if err != nil {
		return fmt.Errorf("saving the login: %w", err)
	}
	fmt.Fprintf(e.stdout, "Signed in to %s (%d images). Saved in %s\n", c.BaseURL(), page.Pagination.TotalItems, p)
	return nil
}

// readTokenLine reads a token from standard input (pasted, or piped).
func readTokenLine(e *env) (string, error) {
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprint(e.stderr, "Token: ")
	}
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 64<<10)).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil && err != io.EOF {
			return "", err
		}
		return "", usagef("no token given: pass --token, set IMAGED_TOKEN or paste one on standard input")
	}
	return line, nil
}

func logout(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("logout", e.stderr)
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("logout", rest); err != nil {
		return err
	}
	p, err := loginPath()
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	fmt.Fprintln(e.stdout, "Signed out; removed", p)
	return nil
}
