package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// commitID is set at build time with -ldflags "-X main.commitID=..." where
// the toolchain cannot stamp VCS information itself (-buildvcs=false, a
// source tree without .git).
var commitID = ""

// buildVersion describes this binary from its build information: the
// module version (a tag, or a pseudo-version made from the commit), the
// commit and its time, and whether the tree had local changes. The
// version variable, when set with -ldflags, wins.
func buildVersion() (module, ver, commit string) {
	ver = version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "github.com/imaged/imaged", ver, ""
	}
	module = info.Main.Path
	if ver == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		ver = info.Main.Version
	}
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", with local changes"
			}
		}
	}
	if rev == "" {
		rev = commitID
	}
	if rev != "" {
		commit = rev
		if at != "" {
			commit += " (" + at + modified + ")"
		}
	}
	return module, ver, commit
}

func printVersion(e *env, args []string) error {
	fs := newCommandFlags("version", e.stderr)
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs.Name(), rest); err != nil {
		return err
	}
	module, ver, commit := buildVersion()
	fmt.Fprintf(e.stdout, "imaged %s\nmodule %s\n", ver, module)
	if commit == "" {
		commit = "unknown (built without VCS information; make build stamps it)"
	}
	fmt.Fprintf(e.stdout, "commit %s\n", commit)
	fmt.Fprintf(e.stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
