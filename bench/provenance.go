package main

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/provenance"
	"github.com/imaged/imaged/provider/builtin"
)

// measureProvenance is the cost of marking a generated image, per image,
// in this process: the XMP mark alone, and the XMP mark with a signed C2PA
// manifest, on the builtin renderer's 1024x1024 PNG and on the same image
// as a JPEG; the baseline is copying the bytes once (what storing them
// costs anyway) and rendering the image, which marking adds to.
func measureProvenance(ctx context.Context, w io.Writer) error {
	gen, err := builtin.New().Generate(ctx, imaged.GenerateRequest{Prompt: genPrompt, Model: builtin.ModelID, AspectRatio: "1:1", N: 1})
	if err != nil {
		return err
	}
	pngData := gen[0].Data
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return err
	}
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, img, &jpeg.Options{Quality: 90}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "imaged-bench-c2pa-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	creds, err := provenance.DevelopmentCredentials(dir)
	if err != nil {
		return err
	}
	xmp := provenance.New(provenance.Config{Version: "bench"})
	signed := provenance.New(provenance.Config{Version: "bench", Credentials: creds})

	per := func(f func() error) (time.Duration, error) {
		const min = 2 * time.Second
		n, start := 0, time.Now()
		for time.Since(start) < min || n < 20 {
			if err := f(); err != nil {
				return 0, err
			}
			n++
		}
		return time.Since(start) / time.Duration(n), nil
	}
	render, err := per(func() error {
		_, err := builtin.New().Generate(ctx, imaged.GenerateRequest{Prompt: genPrompt, Model: builtin.ModelID, AspectRatio: "1:1", N: 1})
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "marking a generated image, per image (builtin render: %s)\n", ms(render))
	fmt.Fprintln(tw, "image\tcopy (baseline)\tXMP\tXMP + C2PA (ES256)\tC2PA / render")
	for _, c := range []struct {
		name string
		data []byte
	}{{fmt.Sprintf("PNG 1024x1024, %d KiB", len(pngData)>>10), pngData}, {fmt.Sprintf("JPEG 1024x1024, %d KiB", jb.Len()>>10), jb.Bytes()}} {
		cp, err := per(func() error { _ = bytes.Clone(c.data); return nil })
		if err != nil {
			return err
		}
		x, err := per(func() error { _, _, err := xmp.MarkGenerated(c.data, "builtin", builtin.ModelID); return err })
		if err != nil {
			return err
		}
		s, err := per(func() error { _, _, err := signed.MarkGenerated(c.data, "builtin", builtin.ModelID); return err })
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\n", c.name, ms(cp), ms(x), ms(s), float64(s)/float64(render))
	}
	return tw.Flush()
}
