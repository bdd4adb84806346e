package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/container"
	"github.com/imaged/imaged/fsblob"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/sqlite"
)

// validationFileSize is the size of the files measureValidation stores:
// the default upload limit, less a little.
const validationFileSize = 20<<20 - 64<<10

// measureValidation is the cost of checking an upload whole, in this
// process: a 20 MiB PNG and a 20 MiB JPEG (photo-like noise, the PNG
// zlib-compressed as encoders write it) stored through images.Service.Store
// (sniffing, container.Validate of every byte, SHA-256, the fsynced blob,
// the SQLite record) against the baseline of the same bytes io.Copy'd into
// the same blob store (fsblob.Put, fsync included), and container.Validate
// alone.
func measureValidation(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "imaged-bench-validation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return err
	}
	svc := images.New(db, blobs, images.Config{MaxFileSize: 21 << 20})

	progress("encoding a 20 MiB PNG and a 20 MiB JPEG")
	pngData, err := fileOfSize(func(m image.Image, b *bytes.Buffer) error { return png.Encode(b, m) })
	if err != nil {
		return err
	}
	jpegData, err := fileOfSize(func(m image.Image, b *bytes.Buffer) error {
		return jpeg.Encode(b, m, &jpeg.Options{Quality: 95})
	})
	if err != nil {
		return err
	}

	// each runs f at least 5 times and for 3 s, and returns its throughput
	// over size bytes a run: by the clock, and by the CPU time the process
	// used (which other processes on a shared machine do not inflate).
	each := func(size int, f func() error) (rate, error) {
		cpu0, err := cpuTime(os.Getpid())
		if err != nil {
			return rate{}, err
		}
		n, start := 0, time.Now()
		for n < 5 || time.Since(start) < 3*time.Second {
			if err := f(); err != nil {
				return rate{}, err
			}
			n++
		}
		wall := time.Since(start)
		cpu1, err := cpuTime(os.Getpid())
		if err != nil {
			return rate{}, err
		}
		mb := float64(size) * float64(n) / 1e6
		return rate{wall: mb / wall.Seconds(), cpu: mb / (cpu1 - cpu0).Seconds()}, nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "upload validation, in process: MB/s (10^6 bytes/s) by the clock, and per CPU-second")
	fmt.Fprintln(tw, "file\tio.Copy to the blob store (baseline)\tStore: validated, hashed, stored\tStore / baseline\tcontainer.Validate alone")
	for _, c := range []struct {
		name string
		data []byte
	}{{"PNG", pngData}, {"JPEG", jpegData}} {
		info, err := container.Validate(bytes.NewReader(c.data), container.Options{})
		if err != nil {
			return fmt.Errorf("the %s does not validate: %w", c.name, err)
		}
		copied, err := each(len(c.data), func() error {
			key := imaged.NewBlobKey("bin")
			if _, err := blobs.Put(ctx, key, bytes.NewReader(c.data)); err != nil {
				return err
			}
			return blobs.Delete(ctx, key)
		})
		if err != nil {
			return err
		}
		stored, err := each(len(c.data), func() error {
			img, err := svc.Store(ctx, images.NewImage{Owner: "bench", Source: imaged.SourceUpload}, bytes.NewReader(c.data))
			if err != nil {
				return err
			}
			return svc.Delete(ctx, "bench", img.ID)
		})
		if err != nil {
			return err
		}
		alone, err := each(len(c.data), func() error {
			_, err := container.Validate(bytes.NewReader(c.data), container.Options{})
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s %dx%d, %.1f MiB\t%s\t%s\t%.2f clock, %.2f CPU\t%s\n", c.name, info.Width, info.Height,
			float64(len(c.data))/(1<<20), copied, stored, stored.wall/copied.wall, stored.cpu/copied.cpu, alone)
	}
	return tw.Flush()
}

// rate is a throughput in MB/s, by the clock and per CPU-second.
type rate struct{ wall, cpu float64 }

func (r rate) String() string { return fmt.Sprintf("%.0f (%.0f per CPU-s)", r.wall, r.cpu) }

// fileOfSize encodes a photo-like picture with enc, sized so that the file
// is just under validationFileSize.
func fileOfSize(enc func(image.Image, *bytes.Buffer) error) ([]byte, error) {
	w, h := 1000, 750
	for range 6 {
		var b bytes.Buffer
		if err := enc(noisyPhoto(w, h), &b); err != nil {
			return nil, err
		}
		if b.Len() <= validationFileSize && b.Len() > validationFileSize*97/100 {
			return b.Bytes(), nil
		}
		// Scale the area by what is missing, aiming 1% under the size.
		f := float64(validationFileSize) * 0.99 / float64(b.Len())
		w, h = int(float64(w)*math.Sqrt(f)), int(float64(h)*math.Sqrt(f))
	}
	return nil, fmt.Errorf("no picture encodes to about %d bytes", validationFileSize)
}

// noisyPhoto is a picture with gradients and grain, which compresses about
// as badly as a photograph.
func noisyPhoto(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	rnd := rand.New(rand.NewPCG(7, 9))
	for i := 0; i < len(m.Pix); i += 4 {
		x, y := (i/4)%w, (i/4)/w
		m.Pix[i] = uint8(x/8) + uint8(rnd.UintN(24))
		m.Pix[i+1] = uint8(y/8) + uint8(rnd.UintN(24))
		m.Pix[i+2] = uint8((x+y)/16) + uint8(rnd.UintN(24))
		m.Pix[i+3] = 255
	}
	return m
}
