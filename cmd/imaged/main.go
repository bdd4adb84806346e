// Command imaged runs the images service and its administration commands.
//
//	imaged serve   [--addr HOST:PORT] [--data-dir DIR]   run the service
//	imaged token   --sub SUBJECT [--ttl 24h] [--data-dir DIR]   print a bearer token
//	imaged migrate [--data-dir DIR]                      apply schema migrations and exit
//	imaged migrate-store --from fs:DIR --to s3:BUCKET [--verify]
//	imaged gc [--grace 1h]
//	imaged healthcheck [--url URL]
//	imaged version
//
// Every flag can also come from an IMAGED_* environment variable; flags win.
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
		os.Exit(2)
	}
	if err := run(ctx, os.Args[1:], getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "imaged:", err)
		}
		os.Exit(2)
	}
}

const usage = `imaged: a self-hosted service for AI-generated images

Usage:
  imaged serve   [--addr HOST:PORT] [--data-dir DIR]    run the service (default command)
  imaged token   --sub SUBJECT [--ttl 24h] [--data-dir DIR]
                                                        print a bearer token the service accepts
  imaged migrate [--data-dir DIR]                       apply database migrations and exit
  imaged migrate-store --from fs:DIR --to s3:BUCKET [--verify] [--after KEY]
                                                        copy blobs between stores, resumably
  imaged gc [--grace 1h]                                remove blobs no image references
  imaged healthcheck [--url URL]                        exit 0 if the service is ready (for containers)
  imaged version                                        print the version

Configuration also comes from IMAGED_* environment variables: see the README.
`

// run dispatches a subcommand; it is main without the process around it, so
// tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "token":
		return token(args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout, stderr)
	case "gc":
		return gc(ctx, args, getenv, stdout, stderr)
	case "migrate-store":
		return migrateStore(ctx, args, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "imaged", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
