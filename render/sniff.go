package render

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"

	"github.com/imaged/imaged"
)

// decodeConfigs read a format's header only.
var decodeConfigs = map[string]func(*bytes.Reader) (image.Config, error){
	"jpeg": func(r *bytes.Reader) (image.Config, error) { return jpeg.DecodeConfig(r) },
	"png":  func(r *bytes.Reader) (image.Config, error) { return png.DecodeConfig(r) },
	"gif":  func(r *bytes.Reader) (image.Config, error) { return gif.DecodeConfig(r) },
	"webp": func(r *bytes.Reader) (image.Config, error) { return webp.DecodeConfig(r) },
}

// sniff decides the source's format from its magic bytes (never from a
// name or a claim) and reads its declared size, refusing a size over the
// pixel limit before any pixel is decoded: a decompression bomb is a small
// file with a huge canvas.
func sniff(s *state) error {
	s.format = sniffFormat(s.src)
	if s.format == "" {
		return imaged.Errorf(imaged.EUnsupportedMedia, "The source is not a PNG, JPEG, GIF or WebP image")
	}
	cfg, err := decodeConfigs[s.format](bytes.NewReader(s.src))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return corrupt(err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > s.limits.MaxPixels {
		return imaged.Errorf(imaged.EUnsupportedMedia,
			"The source image declares %dx%d pixels, over the render limit of %d", cfg.Width, cfg.Height, s.limits.MaxPixels)
	}
	s.srcW, s.srcH = cfg.Width, cfg.Height
	return nil
}

// sniffFormat names the format whose signature b starts with, or "".
func sniffFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case len(b) >= 16 && string(b[0:4]) == "RIFF" && string(b[8:15]) == "WEBPVP8":
		return "webp"
	}
	return ""
}

// corrupt is the answer for a source whose bytes do not decode: truncated,
// or a valid header over garbage. The decoder's detail goes to the log.
func corrupt(err error) error {
	return &imaged.Error{Code: imaged.EUnsupportedMedia, Message: "The source image is truncated or corrupt", Err: err}
}
