package container

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/image/webp"

	"github.com/imaged/imaged/testtool"
)

func embedSamples(t *testing.T) map[string][]byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range 40 {
		img.Set(i, i%30, color.NRGBA{uint8(i * 6), 90, 200, 255})
	}
	var pb, jb bytes.Buffer
	png.Encode(&pb, img)
	jpeg.Encode(&jb, img, nil)
	out := map[string][]byte{"png": pb.Bytes(), "jpeg": jb.Bytes()}
	cwebp := testtool.Need(t, "cwebp")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.png")
	os.WriteFile(src, pb.Bytes(), 0o644)
	for name, args := range map[string][]string{"webp-lossy": {"-q", "70"}, "webp-lossless": {"-lossless"}, "webp-alpha": {"-q", "70", "-alpha_q", "50", "-exact"}} {
		dst := filepath.Join(dir, name)
		if b, err := exec.Command(cwebp, append(args, "-quiet", src, "-o", dst)...).CombinedOutput(); err != nil {
			t.Fatalf("cwebp: %v: %s", err, b)
		}
		out[name], _ = os.ReadFile(dst)
	}
	return out
}

// wellFramed walks b to its end with a Reader: every length, CRC and
// padding checks out and nothing follows the image.
func wellFramed(t *testing.T, b []byte) {
	t.Helper()
	r := NewReader(bytes.NewReader(b))
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("rewritten file: %v", err)
		}
	}
	var err error
	if Sniff(b) == WebP {
		_, err = webp.Decode(bytes.NewReader(b))
	} else {
		_, _, err = image.Decode(bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("rewritten file does not decode: %v", err)
	}
}

// jumbf is a stand-in manifest store of n bytes: a jumb superbox whose
// description box is typed c2pa, as the JPEG embedding looks for.
func jumbf(n int, fill byte) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, uint32(n))
	copy(b[4:], "jumb")
	binary.BigEndian.PutUint32(b[8:], uint32(n-8))
	copy(b[12:], "jumd")
	copy(b[16:], "c2pa")
	for i := 20; i < n; i++ {
		b[i] = fill
	}
	return b
}

func TestEmbedMarksRoundTrip(t *testing.T) {
	xmp := []byte(`<x:xmpmeta xmlns:x="adobe:ns:meta/">mark</x:xmpmeta>`)
	for name, src := range embedSamples(t) {
		t.Run(name, func(t *testing.T) {
			withXMP, err := EmbedXMP(src, xmp)
			if err != nil {
				t.Fatal(err)
			}
			wellFramed(t, withXMP)
			// A store over one JPEG segment, to split it; then a smaller one
			// replacing it.
			for _, size := range []int{150_001, 2_000} {
				store := jumbf(size, byte(size))
				out, r, err := EmbedC2PA(withXMP, store)
				if err != nil {
					t.Fatal(err)
				}
				wellFramed(t, out)
				if len(out)-r.Length != len(withXMP)+len(store)%2*btoi(Sniff(out) == WebP) {
					t.Fatalf("the range is %d bytes, the file grew by %d", r.Length, len(out)-len(withXMP))
				}
				m, err := ReadMarks(out)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(m.XMP, xmp) || !bytes.Equal(m.C2PA, store) {
					t.Fatalf("read back XMP %q and a %d-byte store", m.XMP, len(m.C2PA))
				}
				// Outside the range are the bytes of withXMP (a WebP's RIFF
				// size aside), so the store can be swapped for one of the same
				// size without moving anything.
				rest := append(append([]byte{}, out[:r.Start]...), out[r.Start+r.Length:]...)
				if Sniff(out) == WebP {
					copy(rest[4:8], withXMP[4:8])
					rest = rest[:len(rest)-len(store)%2] // the pad byte
				}
				if !bytes.Equal(rest, withXMP) {
					t.Fatal("the bytes outside the range are not the source's")
				}
				withXMP2, err := EmbedXMP(out, xmp)
				if err != nil {
					t.Fatal(err)
				}
				if m2, _ := ReadMarks(withXMP2); !bytes.Equal(m2.C2PA, store) || bytes.Count(withXMP2, xmp) != 1 {
					t.Fatal("a second XMP packet was added, or the store lost")
				}
			}
			removed, err := RemoveC2PA(withXMP)
			if err != nil || !bytes.Equal(removed, withXMP) {
				t.Fatalf("removing an absent store changed the file: %v", err)
			}
		})
	}
}

func TestEmbedXMPMakesWebPExtended(t *testing.T) {
	for name, src := range embedSamples(t) {
		if Sniff(src) != WebP {
			continue
		}
		out, err := EmbedXMP(src, []byte("<x/>"))
		if err != nil {
			t.Fatal(err)
		}
		if string(out[12:16]) != "VP8X" || out[20]&webpXMPFlag == 0 {
			t.Fatalf("%s: first chunk %q, flags %08b", name, out[12:16], out[20])
		}
		if int(binary.LittleEndian.Uint32(out[4:])) != len(out)-8 {
			t.Fatalf("%s: RIFF size %d for %d bytes", name, binary.LittleEndian.Uint32(out[4:]), len(out))
		}
		if dwebp, err := exec.LookPath("dwebp"); err == nil {
			f := filepath.Join(t.TempDir(), "x.webp")
			os.WriteFile(f, out, 0o644)
			if b, err := exec.Command(dwebp, f, "-o", os.DevNull).CombinedOutput(); err != nil {
				t.Fatalf("%s: dwebp: %v: %s", name, err, b)
			}
		}
	}
}

func TestEmbedRefusesWhatItCannotMark(t *testing.T) {
	if _, err := EmbedXMP([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), []byte("<x/>")); err == nil {
		t.Fatal("a GIF was marked")
	}
	if _, _, err := EmbedC2PA([]byte("<html>"), jumbf(64, 1)); err == nil {
		t.Fatal("HTML was marked")
	}
	src := embedSamples(t)["png"]
	if _, err := EmbedXMP(src[:len(src)-20], []byte("<x/>")); err == nil {
		t.Fatal("a truncated PNG was marked")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
