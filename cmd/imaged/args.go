package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// helpOutput is where --help writes: run's stdout.
var helpOutput io.Writer = os.Stdout

// parseArgs parses args with fs, flags before or after the positional
// arguments (Go's flag package alone stops at the first positional one);
// "--" ends the flags. -h, -help and --help print the command's usage on
// stdout and return flag.ErrHelp (exit 0); a bad flag is a usageError
// (exit 2) with the usage on fs's output.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			out := fs.Output()
			fs.SetOutput(helpOutput)
			fs.Usage()
			fs.SetOutput(out)
			return nil, flag.ErrHelp
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// Parse stops at the first positional argument, or just after "--",
		// after which everything is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// newCommandFlags returns the flag set of the command name, whose usage
// text is the command's synopsis and summary, then its flags.
func newCommandFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("imaged "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	withUsage(fs, name)
	return fs
}

// withUsage gives fs the usage text of the command name.
func withUsage(fs *flag.FlagSet, name string) {
	fs.Usage = func() {
		out := fs.Output()
		synopsis, summary := "", ""
		if c := findCommand(name); c != nil {
			synopsis, summary = c.args, c.summary
		}
		fmt.Fprintf(out, "Usage: imaged %s %s\n\n%s.\n", name, synopsis, upperFirst(summary))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(out, "\nFlags (before or after the arguments):")
			fs.PrintDefaults()
		}
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// noArgs refuses positional arguments for commands that take none.
func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", name, args[0])
	}
	return nil
}
