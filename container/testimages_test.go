package container

import (
	"github.com/imaged/imaged/testtool"

	"bytes"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The test corpus is built here, by the tests: nothing comes from elsewhere.

func testPicture(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.NRGBA{uint8(x * 7), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	return m
}

func pngFile(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, testPicture(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegFile(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testPicture(w, h), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gifFile(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := gif.Encode(&b, testPicture(w, h), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// animatedGIF has three frames, the later ones smaller than the canvas.
func animatedGIF(t testing.TB) []byte {
	var a gif.GIF
	for i := 0; i < 3; i++ {
		r := image.Rect(i*2, i, 20-i, 16)
		m := image.NewPaletted(r, palette.Plan9)
		for j := range m.Pix {
			m.Pix[j] = uint8(j*(i+1)) % 200
		}
		a.Image = append(a.Image, m)
		a.Delay = append(a.Delay, 10)
	}
	a.Config = image.Config{Width: 20, Height: 16}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &a); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webpFile encodes a picture with cwebp (lossless when lossless is set).
func webpFile(t testing.TB, w, h int, lossless bool, extra ...string) []byte {
	cwebp := testtool.Need(t, "cwebp")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.png")
	out := filepath.Join(dir, "out.webp")
	if err := os.WriteFile(in, pngFile(t, w, h), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-quiet"}, extra...)
	if lossless {
		args = append(args, "-lossless")
	}
	args = append(args, in, "-o", out)
	if b, err := exec.Command(cwebp, args...).CombinedOutput(); err != nil {
		t.Fatalf("cwebp: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// animatedWebP builds a three-frame animation with img2webp, mixing lossy
// and lossless frames.
func animatedWebP(t testing.TB) []byte {
	img2webp := testtool.Need(t, "img2webp")
	dir := t.TempDir()
	args := []string{"-loop", "0"}
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, "f"+string(rune('0'+i))+".png")
		m := testPicture(24, 18)
		for j := range m.Pix {
			m.Pix[j] += byte(i * 40)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			args = append(args, "-lossy")
		} else {
			args = append(args, "-lossless")
		}
		args = append(args, "-d", "80", p)
	}
	out := filepath.Join(dir, "anim.webp")
	args = append(args, "-o", out)
	if b, err := exec.Command(img2webp, args...).CombinedOutput(); err != nil {
		t.Fatalf("img2webp: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pngPaletted(t testing.TB, w, h int) []byte {
	m := image.NewPaletted(image.Rect(0, 0, w, h), palette.WebSafe)
	for i := range m.Pix {
		m.Pix[i] = uint8(i % len(palette.WebSafe))
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngGray16(t testing.TB, w, h int) []byte {
	m := image.NewGray16(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 3)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegGray(t testing.TB, w, h int) []byte {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 5)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegTool encodes a 70x50 picture with libjpeg-turbo's cjpeg and the
// given options (progressive, restart intervals...).
func jpegTool(t testing.TB, args ...string) []byte {
	cjpeg := testtool.Need(t, "cjpeg")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ppm")
	var ppm bytes.Buffer
	ppm.WriteString("P6\n70 50\n255\n")
	pic := testPicture(70, 50)
	for i := 0; i < len(pic.Pix); i += 4 {
		ppm.Write(pic.Pix[i : i+3])
	}
	if err := os.WriteFile(in, ppm.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cjpeg, append(args, in)...).Output()
	if err != nil {
		t.Fatalf("cjpeg %v: %v", args, err)
	}
	return out
}
