package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		positional []string
		n          int
		json       bool
	}{
		{"flags first", []string{"-n", "2", "--json", "a", "b"}, []string{"a", "b"}, 2, true},
		{"flags after", []string{"a", "b", "-n", "3", "--json"}, []string{"a", "b"}, 3, true},
		{"flags between", []string{"a", "-n=4", "b"}, []string{"a", "b"}, 4, false},
		{"double dash ends flags", []string{"-n", "5", "--", "-x", "--json"}, []string{"-x", "--json"}, 5, false},
		{"positional then double dash", []string{"a", "--", "-n"}, []string{"a", "-n"}, 1, false},
		{"none", nil, nil, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			n := fs.Int("n", 1, "")
			j := fs.Bool("json", false, "")
			got, err := parseArgs(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.positional) || *n != tc.n || *j != tc.json {
				t.Errorf("got %q n=%d json=%v, want %q n=%d json=%v", got, *n, *j, tc.positional, tc.n, tc.json)
			}
		})
	}
	t.Run("unknown flag is a usage error", func(t *testing.T) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := parseArgs(fs, []string{"a", "--nope"})
		if exitCode(err) != exitUsage {
			t.Errorf("err = %v, exit %d; want exit %d", err, exitCode(err), exitUsage)
		}
	})
}

// TestHelp: imaged --help, -h and help list every subcommand and exit 0, and
// every subcommand's --help exits 0 with its usage on stdout.
func TestHelp(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, getenv, &out, &errOut)
		if exitCode(err) != exitOK {
			t.Errorf("imaged %s: exit %d (%v)", args[0], exitCode(err), err)
		}
		for _, c := range commands {
			if !strings.Contains(out.String(), "\n  "+c.name+" ") {
				t.Errorf("imaged %s does not list %s:\n%s", args[0], c.name, out.String())
			}
		}
	}
	for _, c := range commands {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{c.name, "--help"}, getenv, &out, &errOut)
		if c.name == "help" {
			continue
		}
		if exitCode(err) != exitOK || !errors.Is(err, flag.ErrHelp) {
			t.Errorf("imaged %s --help: exit %d (%v)", c.name, exitCode(err), err)
		}
		if !strings.HasPrefix(out.String(), "Usage: imaged "+c.name) {
			t.Errorf("imaged %s --help printed %q on stdout", c.name, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, getenv, &out, &errOut); exitCode(err) != exitUsage {
		t.Errorf("an unknown command: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"imaged ", "module github.com/imaged/imaged", "commit ", "go1."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("imaged version printed %q, want it to contain %q", out.String(), want)
		}
	}
}
