// Command imaged runs the images service, its administration commands and a
// command-line client of its API. `imaged help` lists the subcommands (the
// table in commands below); `imaged CMD --help` describes one.
//
// Server side: serve, token, migrate, migrate-store, gc, healthcheck.
// Client side: login, logout, generate, upload, ls, get, rm, open.
//
// Exit codes: 0 success (and --help), 1 a failure while running (an API
// error, whose errorCode is printed, or a network or file error), 2 a usage
// or configuration mistake. Server settings also come from IMAGED_*
// environment variables (flags win); an IMAGED_* variable imaged does not
// know is warned about.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// imaged's live heap is a few MiB (uploads and downloads stream), so Go's
// default of 100 collects every few MiB allocated, tens of times a second
// under load; 300 spends a few more MiB of memory to cut that CPU by about
// two thirds.
const defaultGCPercent = 300

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	getenv, err := withFileVars(os.Getenv, os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "imaged:", err)
		os.Exit(exitUsage)
	}
	err = run(ctx, os.Args[1:], getenv, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "imaged:", err)
	}
	os.Exit(exitCode(err))
}

// Exit codes, as the README documents them.
const (
	exitOK      = 0
	exitFailure = 1 // an API error (errorCode printed), a network or file error
	exitUsage   = 2 // a bad flag, argument or setting
)

// usageError is a mistake in the command line or the settings: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		return exitUsage
	}
	return exitFailure
}

// env is what a command gets from the process around it.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// command is one subcommand: its name, the arguments it takes, one line
// for `imaged help`, and what it runs.
type command struct {
	name, args, summary string
	client              bool // a client of a running service (listed apart)
	run                 func(ctx context.Context, e *env, args []string) error
}

// commands is every subcommand; `imaged help` is made from it.
var commands []command

func init() {
	commands = []command{
		{name: "serve", args: "[--addr HOST:PORT] [--data-dir DIR] ...", summary: "run the service (the default command)",
			run: func(ctx context.Context, e *env, a []string) error {
				return serve(ctx, a, e.getenv, e.stdout, e.stderr)
			}},
		{name: "token", args: "--sub SUBJECT [--ttl 24h]", summary: "print a bearer token the service accepts",
			run: func(ctx context.Context, e *env, a []string) error { return token(a, e.getenv, e.stdout, e.stderr) }},
		{name: "migrate", args: "[--data-dir DIR | --database-url URL]", summary: "apply database migrations and exit",
			run: func(ctx context.Context, e *env, a []string) error {
				return migrate(ctx, a, e.getenv, e.stdout, e.stderr)
			}},
		{name: "migrate-store", args: "--from fs:DIR --to s3:BUCKET [--verify]", summary: "copy blobs between stores, resumably",
			run: func(ctx context.Context, e *env, a []string) error {
				return migrateStore(ctx, a, e.getenv, e.stdout, e.stderr)
			}},
		{name: "gc", args: "[--grace 1h]", summary: "remove blobs no image references",
			run: func(ctx context.Context, e *env, a []string) error { return gc(ctx, a, e.getenv, e.stdout, e.stderr) }},
		{name: "healthcheck", args: "[--url URL]", summary: "exit 0 if the service is ready (for containers)",
			run: func(ctx context.Context, e *env, a []string) error { return healthcheck(ctx, a, e.stdout, e.stderr) }},
		{name: "render-worker", summary: "render variants for a parent imaged over stdin/stdout (serve starts it)",
			run: func(ctx context.Context, e *env, a []string) error { return renderWorker(a, e.stderr) }},
		{name: "version", summary: "print the module version and commit",
			run: func(ctx context.Context, e *env, a []string) error { return printVersion(e, a) }},
		{name: "help", args: "[COMMAND]", summary: "list the commands, or describe one",
			run: func(ctx context.Context, e *env, a []string) error { return help(e, a) }},

		{name: "login", args: "[--url URL] [--token TOKEN]", summary: "check a token and save it with the service URL", client: true, run: login},
		{name: "logout", summary: "forget the saved login", client: true, run: logout},
		{name: "generate", args: `"PROMPT" [--aspect 16:9] [-n 2] [-o DIR]`, summary: "generate images and write them to a directory", client: true, run: generateCmd},
		{name: "edit", args: `ID "PROMPT" [--mask ID|FILE] [--strength 0.6] [-o DIR]`, summary: "edit one of your images with a prompt and write the results to a directory", client: true, run: editCmd},
		{name: "upload", args: "FILE...", summary: "upload images, with progress for large files", client: true, run: uploadCmd},
		{name: "import", args: "URL [--name NAME] [--json]", summary: "have the service fetch an image from a URL and store it", client: true, run: importCmd},
		{name: "ls", args: "[--search TEXT] [--source upload|generation] [--json]", summary: "list your images, newest first", client: true, run: listCmd},
		{name: "get", args: "ID [--output FILE] [--json]", summary: "show an image's metadata, or save its bytes", client: true, run: getCmd},
		{name: "rm", args: "ID...", summary: "delete images", client: true, run: removeCmd},
		{name: "open", args: "ID [--print]", summary: "open an image's URL in the browser (or print it)", client: true, run: openCmd},
	}
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// usage is the text of `imaged help`.
func usage() string {
	var b strings.Builder
	b.WriteString("imaged: a self-hosted service for AI-generated images, and its client\n\nUsage: imaged COMMAND [flags] [arguments]\n")
	for _, client := range []bool{false, true} {
		if client {
			b.WriteString("\nClient commands (talk to a running service: --url/IMAGED_URL, --token/IMAGED_TOKEN, or imaged login):\n")
		} else {
			b.WriteString("\nService commands:\n")
		}
		for _, c := range commands {
			if c.client == client {
				fmt.Fprintf(&b, "  %-14s %s\n", c.name, c.summary)
			}
		}
	}
	b.WriteString("\nFlags may come before or after arguments; `imaged COMMAND --help` describes one command.\n" +
		"Exit codes: 0 success, 1 a failure (API errors print their errorCode), 2 a usage or configuration mistake.\n" +
		"Service settings also come from IMAGED_* environment variables: see the README.\n")
	return b.String()
}

func help(e *env, args []string) error {
	if len(args) > 0 {
		c := findCommand(args[0])
		if c == nil {
			fmt.Fprint(e.stderr, usage())
			return usagef("unknown command %q", args[0])
		}
		return c.run(context.Background(), e, []string{"--help"})
	}
	fmt.Fprint(e.stdout, usage())
	return nil
}

// run dispatches a subcommand; it is main without the process around it, so
// tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	helpOutput = stdout
	name := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			fmt.Fprint(stdout, usage())
			return nil
		case a == "-v" || a == "--version":
			name, args = "version", args[1:]
		case a != "" && a[0] != '-':
			name, args = a, args[1:]
		}
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprint(stderr, usage())
		return usagef("unknown command %q", name)
	}
	if name != "serve" && name != "render-worker" {
		// serve logs the warning through its logger (its workers say nothing).
		for _, w := range unknownEnvWarnings(environ()) {
			fmt.Fprintln(stderr, "imaged: warning:", w)
		}
	}
	return c.run(ctx, e, args)
}
