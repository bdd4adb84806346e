package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/imaged/imaged/client"
)

// The client commands: each parses its flags (anywhere among the
// arguments), connects with clientFlags and prints for people on stdout
// (or JSON with --json), progress and warnings on stderr.

func generateCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("generate", e.stderr)
	cf := addClientFlags(fs)
	var req client.GenerateRequest
	fs.StringVar(&req.AspectRatio, "aspect", "", "aspect ratio: 1:1, 16:9, 9:16, 4:3, 3:4, 3:2 or 2:3 (default: 1:1)")
	fs.IntVar(&req.N, "n", 1, "number of images, 1-4")
	out := fs.String("o", ".", "directory to write the images to (created if missing)")
	fs.StringVar(&req.Provider, "provider", "", "provider (default: the service's default; see imaged generate --models)")
	fs.StringVar(&req.Model, "model", "", "model of the provider (default: its first)")
	fs.Func("seed", "seed, where the model supports one (default: random)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("must be a whole number")
		}
		req.Seed = &n
		return nil
	})
	fs.StringVar(&req.NegativePrompt, "negative", "", "negative prompt, where the model supports one")
	fs.StringVar(&req.ArtStyle, "style", "", "art style, folded into the prompt")
	fs.StringVar(&req.ThemeStyle, "theme", "", "theme style, folded into the prompt")
	models := fs.Bool("models", false, "list the providers and models instead, and exit")
	asJSON := fs.Bool("json", false, "print the finished job as JSON instead of the file names")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *models {
		return listModels(ctx, e, cf)
	}
	if len(rest) == 0 {
		return usagef(`generate needs a prompt: imaged generate "a lighthouse at dusk"`)
	}
	req.Prompt = strings.Join(rest, " ")
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	job, err := c.Submit(ctx, req, "")
	if err != nil {
		return err
	}
	return follow(ctx, e, c, job, *out, *asJSON)
}

// follow waits for a job, reporting its states on stderr, then writes its
// images to dir and prints their file names (or the job as JSON).
func follow(ctx context.Context, e *env, c *client.Client, job *client.Job, dir string, asJSON bool) error {
	started := time.Now()
	last := ""
	job, err := c.Wait(ctx, job.ID, func(j *client.Job) {
		if j.Status != last {
			last = j.Status
			fmt.Fprintf(e.stderr, "job %s: %s (%s)\n", j.ID, j.Status, time.Since(started).Round(100*time.Millisecond))
		}
	})
	if err != nil {
		return err
	}
	if job.Status == client.JobFailed {
		if job.Error != nil {
			return &client.Error{ErrorCode: job.Error.ErrorCode, Message: job.Error.Message}
		}
		return errors.New("the job failed")
	}
	var written []string
	for _, img := range job.Images {
		p := filepath.Join(dir, img.ID+extension(img.MediaType))
		if err := download(ctx, c, img.URL, p); err != nil {
			return err
		}
		written = append(written, p)
	}
	if asJSON {
		return printJSON(e.stdout, job)
	}
	for _, p := range written {
		fmt.Fprintln(e.stdout, p)
	}
	return nil
}

// editCmd edits one of the caller's images as a prompt says, through a job
// like generate.
func editCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("edit", e.stderr)
	cf := addClientFlags(fs)
	var req client.EditRequest
	fs.StringVar(&req.AspectRatio, "aspect", "", "aspect ratio (default: the model's nearest to the image's)")
	fs.IntVar(&req.N, "n", 1, "number of images, 1-4")
	out := fs.String("o", ".", "directory to write the images to (created if missing)")
	fs.StringVar(&req.Provider, "provider", "", "provider (default: the service's default; see imaged generate --models)")
	fs.StringVar(&req.Model, "model", "", "model of the provider (default: its first)")
	mask := fs.String("mask", "", "where the image may change (white: change, black: keep): an image id, or a file to upload first")
	fs.Func("strength", "how far the result may move from the image, 0 to 1, where the model takes one", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("must be a number from 0 to 1")
		}
		req.Strength = &f
		return nil
	})
	fs.Func("seed", "seed, where the model supports one (default: random)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("must be a whole number")
		}
		req.Seed = &n
		return nil
	})
	asJSON := fs.Bool("json", false, "print the finished job as JSON instead of the file names")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) < 2 {
		return usagef(`edit needs an image id and a prompt: imaged edit ID "make the sky stormy"`)
	}
	id := rest[0]
	req.Prompt = strings.Join(rest[1:], " ")
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if *mask != "" {
		req.Mask = *mask
		if f, err := os.Open(*mask); err == nil {
			img, err := c.Upload(ctx, client.File{Name: filepath.Base(*mask), Body: f})
			f.Close()
			if err != nil {
				return fmt.Errorf("uploading the mask: %w", err)
			}
			req.Mask = img.ID
		}
	}
	job, err := c.SubmitEdit(ctx, id, req, "")
	if err != nil {
		return err
	}
	return follow(ctx, e, c, job, *out, *asJSON)
}

func listModels(ctx context.Context, e *env, cf clientFlags) error {
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	ps, err := c.Models(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tMODEL\tASPECT RATIOS\tMAX N\tSEED\tNEGATIVE PROMPT\tEDIT")
	for _, p := range ps {
		name := p.Name
		if p.Default {
			name += " (default)"
		}
		for _, m := range p.Models {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", name, m.ID, strings.Join(m.AspectRatios, " "), m.MaxImages, yesNo(m.SupportsSeed), yesNo(m.SupportsNegativePrompt), editSupport(m))
		}
	}
	return tw.Flush()
}

// editSupport says what an edit with model m may carry.
func editSupport(m client.Model) string {
	switch {
	case !m.SupportsEdit:
		return "no"
	case m.SupportsMask && m.SupportsStrength:
		return "mask, strength"
	case m.SupportsMask:
		return "mask"
	case m.SupportsStrength:
		return "strength"
	}
	return "yes"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// extension is the file extension for a media type the service stores.
func extension(mediaType string) string {
	switch mediaType {
	case "image/png":
		return ".png"
	case "image/jpeg":
		return ".jpg"
	case "image/webp":
		return ".webp"
	case "image/gif":
		return ".gif"
	}
	return ".img"
}

// download writes an image's bytes to path, whole or not at all.
func download(ctx context.Context, c *client.Client, url, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".imaged-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := c.Download(ctx, url, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// progressMin is the size from which uploads show a progress bar.
const progressMin = 1 << 20

func uploadCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("upload", e.stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the image objects as JSON")
	quiet := fs.Bool("q", false, "no progress bars")
	paths, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("upload needs at least one file: imaged upload a.png b.jpg")
	}
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	showBars := !*quiet && isTerminal(e.stderr)
	var done []client.Image
	failed := 0
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, p := range paths {
		img, err := uploadOne(ctx, c, p, e.stderr, showBars)
		if err != nil {
			failed++
			fmt.Fprintf(e.stderr, "imaged: %s: %v\n", p, err)
			var apiErr *client.Error
			if ctx.Err() != nil || (errors.As(err, &apiErr) && apiErr.ErrorCode == "UNAUTHORIZED") {
				break // every other file would fail the same way
			}
			continue
		}
		done = append(done, *img)
		if !*asJSON {
			fmt.Fprintf(tw, "%s\t%s\t%dx%d\t%s\n", img.ID, printable(img.OriginalFilename), img.Width, img.Height, humanBytes(img.FileSize))
		}
	}
	if *asJSON {
		if err := printJSON(e.stdout, done); err != nil {
			return err
		}
	} else {
		tw.Flush()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files were not uploaded", failed, len(paths))
	}
	return nil
}

func uploadOne(ctx context.Context, c *client.Client, path string, stderr io.Writer, showBars bool) (*client.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, errors.New("is a directory")
	}
	file := client.File{Name: filepath.Base(path), Body: f}
	var bar *progressBar
	if showBars && info.Size() >= progressMin {
		bar = newProgressBar(stderr, filepath.Base(path), info.Size())
		file.Progress = bar.set
	}
	img, err := c.Upload(ctx, file)
	if bar != nil {
		bar.finish(err == nil)
	}
	return img, err
}

func listCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("ls", e.stderr)
	cf := addClientFlags(fs)
	var o client.ListOptions
	fs.StringVar(&o.Search, "search", "", "only images whose filename or prompt contains this (any case)")
	fs.StringVar(&o.Source, "source", "", "only upload or generation")
	fs.StringVar(&o.Sort, "sort", "desc", "desc (newest first) or asc")
	limit := fs.Int("n", 20, "show at most this many")
	all := fs.Bool("all", false, "show every image (pages through the whole listing)")
	asJSON := fs.Bool("json", false, "print the image objects as a JSON array")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("ls", rest); err != nil {
		return err
	}
	if *limit < 1 && !*all {
		return usagef("-n must be at least 1")
	}
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	var imgs []client.Image
	var total int64
	for {
		o.PageSize = 100
		if !*all {
			o.PageSize = min(100, *limit-len(imgs))
		}
		page, err := c.ListImages(ctx, o)
		if err != nil {
			return err
		}
		imgs = append(imgs, page.Images...)
		total = page.Pagination.TotalItems
		if page.Pagination.NextCursor == nil || (!*all && len(imgs) >= *limit) {
			break
		}
		o.Cursor = *page.Pagination.NextCursor
	}
	if *asJSON {
		if imgs == nil {
			imgs = []client.Image{}
		}
		return printJSON(e.stdout, imgs)
	}
	if len(imgs) == 0 {
		fmt.Fprintln(e.stderr, "No images yet: imaged upload FILE or imaged generate \"PROMPT\" adds some.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tSOURCE\tSIZE\tDIMENSIONS\tNAME")
	for _, img := range imgs {
		name := img.OriginalFilename
		if img.Prompt != "" {
			name += " (" + truncate(img.Prompt, 40) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dx%d\t%s\n", img.ID, img.CreatedAt.Local().Format("2006-01-02 15:04"),
			img.Source, humanBytes(img.FileSize), img.Width, img.Height, printable(name))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if int64(len(imgs)) < total {
		fmt.Fprintf(e.stderr, "%d of %d images; -n N or --all for more\n", len(imgs), total)
	}
	return nil
}

func getCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("get", e.stderr)
	cf := addClientFlags(fs)
	output := fs.String("output", "", "write the image's bytes to this file (- for standard output) instead of the metadata")
	fs.StringVar(output, "o", "", "short for --output")
	asJSON := fs.Bool("json", false, "print the image object as JSON")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("get takes one image id: imaged get ID")
	}
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	img, err := c.GetImage(ctx, rest[0])
	if err != nil {
		return err
	}
	switch {
	case *output == "-":
		_, err := c.Download(ctx, img.URL, e.stdout)
		return err
	case *output != "":
		if err := download(ctx, c, img.URL, *output); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %s (%s, %s)\n", *output, humanBytes(img.FileSize), img.MediaType)
		return nil
	case *asJSON:
		return printJSON(e.stdout, img)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, printable(v))
		}
	}
	row("id", img.ID)
	row("filename", img.OriginalFilename)
	row("url", img.URL)
	row("type", img.MediaType)
	row("size", fmt.Sprintf("%s (%d bytes)", humanBytes(img.FileSize), img.FileSize))
	row("dimensions", fmt.Sprintf("%dx%d", img.Width, img.Height))
	row("created", img.CreatedAt.Format(time.RFC3339))
	row("source", img.Source)
	row("sha256", img.SHA256)
	row("prompt", img.Prompt)
	row("negative prompt", img.NegativePrompt)
	row("revised prompt", img.RevisedPrompt)
	row("provider", img.Provider)
	row("model", img.Model)
	row("aspect ratio", img.AspectRatio)
	if img.Seed != nil {
		row("seed", fmt.Sprint(*img.Seed))
	}
	for _, name := range slices.Sorted(maps.Keys(img.Variants)) {
		row("variant "+name, img.Variants[name].URL)
	}
	if len(img.Provenance) > 0 && string(img.Provenance) != "null" {
		row("provenance", string(img.Provenance))
	}
	return tw.Flush()
}

func importCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("import", e.stderr)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "display name (default: the URL's last path segment)")
	asJSON := fs.Bool("json", false, "print the image object as JSON")
	urls, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(urls) != 1 {
		return usagef("import needs one URL: imaged import https://example.com/a.png")
	}
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	img, err := c.Import(ctx, urls[0], *name)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, img)
	}
	fmt.Fprintf(e.stdout, "%s\t%s\t%dx%d\t%s\n", img.ID, printable(img.OriginalFilename), img.Width, img.Height, humanBytes(img.FileSize))
	return nil
}

func removeCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("rm", e.stderr)
	cf := addClientFlags(fs)
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usagef("rm needs at least one image id: imaged rm ID...")
	}
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	failed := 0
	for _, id := range ids {
		if err := c.DeleteImage(ctx, id); err != nil {
			failed++
			fmt.Fprintf(e.stderr, "imaged: %s: %v\n", id, err)
			continue
		}
		fmt.Fprintln(e.stdout, "deleted", id)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images were not deleted", failed, len(ids))
	}
	return nil
}

func openCmd(ctx context.Context, e *env, args []string) error {
	fs := newCommandFlags("open", e.stderr)
	cf := addClientFlags(fs)
	printOnly := fs.Bool("print", false, "only print the URL, do not start a browser")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("open takes one image id: imaged open ID")
	}
	ctx, cancel, c, err := cf.connect(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	img, err := c.GetImage(ctx, rest[0])
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, img.URL)
	if *printOnly {
		return nil
	}
	if cmd := browserCommand(e.getenv, img.URL); cmd != nil {
		if err := cmd.Start(); err == nil {
			go cmd.Wait()
		}
	}
	return nil
}

// browserCommand is the system's way of opening a URL, or nil where there
// is no desktop to open it on (an SSH session, a container).
func browserCommand(getenv func(string) string, url string) *exec.Cmd {
	switch runtime.GOOS {
	case "darwin":
		return exec.Command("open", url)
	case "windows":
		return exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	}
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return nil
	}
	if _, err := exec.LookPath("xdg-open"); err != nil {
		return nil
	}
	return exec.Command("xdg-open", url)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printable replaces control characters, so that a filename cannot move
// the terminal's cursor or change its colours.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
