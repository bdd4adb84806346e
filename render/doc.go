// Package render produces variants of stored images: a source in any accepted
// format (PNG, JPEG, GIF, WebP) becomes an image of the asked size, fit and
// format (WebP, AVIF, JPEG, PNG).
//
// A render is a pipeline of small named steps (pipeline.go lists them, one
// file each): decode with the pixel limit checked first, shrink on load,
// orient (EXIF), convert to sRGB (ICC), resize with the crop of the fit, pad,
// flatten (JPEG), encode. Outputs carry no metadata: every encoder writes
// pixels only.
//
// Renders run on a Pool: a bounded number of workers and a bounded queue (a
// full queue is refused at once with EUnavailable), a time limit per render.
// The workers are either goroutines (NewInProcess) or supervised child
// processes (NewIsolated, `imaged render-worker`), so that a crash in native
// or WASM code costs one render, never the service.
package render
