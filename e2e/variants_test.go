package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/testtool"
)

// withVariants is an image object's id, url and variants.
type withVariants struct {
	ID       string            `json:"id"`
	URL      string            `json:"url"`
	Variants map[string]string `json:"variants"`
}

type signedVariant struct {
	URL       string `json:"url"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	MediaType string `json:"mediaType"`
}

func (s *server) imageVariants(t *testing.T, token, id string) withVariants {
	t.Helper()
	var v withVariants
	if err := json.Unmarshal(wantOK(t, s.get(t, "/api/images/"+id, token), http.StatusOK).Data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (s *server) signVariant(t *testing.T, token, id, query string) signedVariant {
	t.Helper()
	var v signedVariant
	e := wantOK(t, s.get(t, "/api/images/"+id+"/variant?"+query, token), http.StatusOK)
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// independentSize decodes b with programs that share no code with imaged:
// vipsheader (libvips) for every format, and the format's own reference
// decoder (dwebp, avifdec, djpeg). It returns the size both agree on.
func independentSize(t *testing.T, b []byte, mediaType string) (int, int) {
	t.Helper()
	vipsheader := testtool.Need(t, "vipsheader")
	dir := t.TempDir()
	f := filepath.Join(dir, "variant")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(vipsheader, f).CombinedOutput()
	if err != nil {
		t.Fatalf("vipsheader: %v: %s", err, out)
	}
	m := regexp.MustCompile(`: (\d+)x(\d+) .*, (\w+)load`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("vipsheader said %q", out)
	}
	w, _ := strconv.Atoi(m[1])
	h, _ := strconv.Atoi(m[2])
	loaders := map[string]string{"image/webp": "webp", "image/avif": "heif", "image/jpeg": "jpeg", "image/png": "png"}
	if m[3] != loaders[mediaType] {
		t.Errorf("libvips reads the %s variant with %sload", mediaType, m[3])
	}
	var ref *regexp.Regexp
	var cmd *exec.Cmd
	switch mediaType {
	case "image/webp":
		cmd, ref = exec.Command(testtool.Need(t, "dwebp"), f, "-o", os.DevNull), regexp.MustCompile(`Dimensions: (\d+) x (\d+)`)
	case "image/avif":
		cmd, ref = exec.Command(testtool.Need(t, "avifdec"), "--info", f), regexp.MustCompile(`Resolution\s*: (\d+)x(\d+)`)
	case "image/jpeg":
		cmd, ref = exec.Command(testtool.Need(t, "djpeg"), f), regexp.MustCompile(`^P[56]\s+(\d+)\s+(\d+)`)
	default:
		return w, h
	}
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %.300s", cmd.Path, err, out)
	}
	if r := ref.FindSubmatch(out); r == nil || string(r[1]) != m[1] || string(r[2]) != m[2] {
		t.Errorf("%s reads %q, vipsheader %sx%s", filepath.Base(cmd.Path), firstLine(out), m[1], m[2])
	}
	return w, h
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// checkServed checks a variant URL's answer the ways a browser or CDN
// asks: GET, HEAD, a range and a conditional request.
func checkServed(t *testing.T, s *server, u, mediaType string) []byte {
	t.Helper()
	r := s.get(t, u, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != mediaType {
		t.Errorf("Content-Type = %q, want %q", ct, mediaType)
	}
	if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(r.Body)) {
		t.Errorf("Content-Length = %q for %d bytes", cl, len(r.Body))
	}
	etag := r.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
		t.Errorf("ETag = %q, want a strong entity tag", etag)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if v := r.Header.Get("Vary"); v != "" {
		t.Errorf("Vary = %q for a fixed format", v)
	}
	head := s.send(t, request{Method: http.MethodHead, Target: u})
	if head.Status != 200 || len(head.Body) != 0 || head.Header.Get("ETag") != etag {
		t.Errorf("HEAD: %d, %d bytes, ETag %q", head.Status, len(head.Body), head.Header.Get("ETag"))
	}
	part := s.send(t, request{Method: http.MethodGet, Target: u, Header: map[string]string{"Range": "bytes=2-5"}})
	if part.Status != http.StatusPartialContent || string(part.Body) != string(r.Body[2:6]) {
		t.Errorf("Range bytes=2-5: %d %x", part.Status, part.Body)
	}
	cond := s.send(t, request{Method: http.MethodGet, Target: u, Header: map[string]string{"If-None-Match": etag}})
	if cond.Status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", cond.Status)
	}
	return r.Body
}

func TestVariants(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Env: map[string]string{
		"IMAGED_VARIANTS": "card=300x200,fit=cover,format=jpeg,quality=85; any=100,format=auto",
	}})
	aliceName, bobName := users(t)
	alice, bob := s.Token(aliceName), s.Token(bobName)
	up := s.upload(t, alice, file{"wide.png", "image/png", pngImage(t, 1000, 700, 21)})
	img := s.imageVariants(t, alice, up.ID)

	t.Run("presets_are_listed_and_in_the_image_object", func(t *testing.T) {
		var presets []struct {
			Name string `json:"name"`
		}
		json.Unmarshal(wantOK(t, s.get(t, "/api/variants", alice), 200).Data, &presets)
		if len(presets) != 6 || len(img.Variants) != 6 {
			t.Fatalf("presets %v, variants %v: want the 4 defaults, card and any", presets, img.Variants)
		}
		for _, p := range presets {
			if img.Variants[p.Name] != img.URL+"/"+p.Name {
				t.Errorf("variants[%s] = %q, want %s/%s", p.Name, img.Variants[p.Name], img.URL, p.Name)
			}
		}
	})

	// 1000x700: never upscaled past it.
	for name, want := range map[string]struct {
		mediaType string
		w, h      int
	}{
		"thumb":  {"image/webp", 256, 256},
		"small":  {"image/webp", 640, 448},
		"medium": {"image/webp", 1000, 700},
		"large":  {"image/webp", 1000, 700},
		"card":   {"image/jpeg", 300, 200},
	} {
		t.Run("preset_"+name+"_has_the_promised_size_and_format", func(t *testing.T) {
			body := checkServed(t, s, img.Variants[name], want.mediaType)
			if w, h := independentSize(t, body, want.mediaType); w != want.w || h != want.h {
				t.Errorf("%s is %dx%d, want %dx%d", name, w, h, want.w, want.h)
			}
		})
	}

	t.Run("auto_negotiates_by_Accept", func(t *testing.T) {
		for accept, want := range map[string]string{"image/avif,image/webp,*/*": "image/avif", "image/webp,*/*": "image/webp", "*/*": "image/png"} {
			r := s.send(t, request{Method: http.MethodGet, Target: img.Variants["any"], Header: map[string]string{"Accept": accept}})
			if r.Status != 200 || r.Header.Get("Content-Type") != want || r.Header.Get("Vary") != "Accept" {
				t.Errorf("Accept %q: %d %s Vary %q, want %s and Vary: Accept", accept, r.Status, r.Header.Get("Content-Type"), r.Header.Get("Vary"), want)
				continue
			}
			if w, h := independentSize(t, r.Body, want); w != 100 || h != 70 {
				t.Errorf("Accept %q: %dx%d, want 100x70", accept, w, h)
			}
		}
	})

	for _, q := range []string{
		"width=333&height=222&fit=contain&format=avif&quality=50",
		"width=200&height=200&fit=cover&format=jpeg",
		"width=250&height=100&fit=fill&format=webp",
		"width=400&height=400&fit=inside&format=png",
	} {
		t.Run("signed_transform_renders_what_it_promises/"+q, func(t *testing.T) {
			sv := s.signVariant(t, alice, up.ID, q)
			body := checkServed(t, s, sv.URL, sv.MediaType)
			if w, h := independentSize(t, body, sv.MediaType); w != sv.Width || h != sv.Height {
				t.Errorf("rendered %dx%d, promised %dx%d", w, h, sv.Width, sv.Height)
			}
		})
	}

	t.Run("rotated_jpeg_promises_and_renders_its_displayed_size", func(t *testing.T) {
		rot := s.upload(t, alice, file{"rotated.jpg", "image/jpeg", exifOriented(jpegImage(t, 300, 200, 22), 6)})
		sv := s.signVariant(t, alice, rot.ID, "width=100&format=jpeg")
		if sv.Width != 100 || sv.Height != 150 {
			t.Errorf("promised %dx%d, want 100x150 (the file displays 200x300)", sv.Width, sv.Height)
		}
		if w, h := independentSize(t, checkServed(t, s, sv.URL, "image/jpeg"), "image/jpeg"); w != sv.Width || h != sv.Height {
			t.Errorf("rendered %dx%d, promised %dx%d", w, h, sv.Width, sv.Height)
		}
	})

	t.Run("signatures", func(t *testing.T) {
		sv := s.signVariant(t, alice, up.ID, "width=120&format=webp")
		base, sig := sv.URL[:strings.LastIndex(sv.URL, "/")], sv.URL[strings.LastIndex(sv.URL, "/")+1:]
		other := s.upload(t, alice, file{"other.png", "image/png", pngImage(t, 40, 40, 23)})
		transform := base[strings.LastIndex(base, "/")+1:]
		flipped := []byte(sig)
		flipped[5] ^= 1
		for name, u := range map[string]string{
			"tampered_width":     strings.Replace(sv.URL, "width=120", "width=121", 1),
			"tampered_signature": base + "/" + string(flipped),
			"other_image":        other.URL + "/" + transform + "/" + sig,
			"no_signature":       base,
		} {
			t.Run(name, func(t *testing.T) {
				wantError(t, s.get(t, u, ""), http.StatusForbidden, "INVALID_SIGNATURE")
			})
		}
		short := s.signVariant(t, alice, up.ID, "width=120&format=webp&expiresIn=1")
		if r := s.get(t, short.URL, ""); r.Status != 200 {
			t.Errorf("an unexpired URL: %d %s", r.Status, r.Body)
		}
		time.Sleep(2100 * time.Millisecond)
		wantError(t, s.get(t, short.URL, ""), http.StatusForbidden, "INVALID_SIGNATURE")
	})

	t.Run("other_owner_gets_404", func(t *testing.T) {
		wantError(t, s.get(t, "/api/images/"+up.ID+"/variant?width=100", bob), http.StatusNotFound, "MEDIA_NOT_FOUND")
	})
	t.Run("out_of_range_is_400", func(t *testing.T) {
		e := wantError(t, s.get(t, "/api/images/"+up.ID+"/variant?width=99999", alice), http.StatusBadRequest, "VALIDATION_ERROR")
		if msg, _ := e["message"].(string); !strings.Contains(msg, "width") {
			t.Errorf("message %q does not name width", msg)
		}
	})

	t.Run("deletion_removes_the_variants", func(t *testing.T) {
		doomed := s.upload(t, alice, file{"doomed.png", "image/png", pngImage(t, 300, 300, 24)})
		dv := s.imageVariants(t, alice, doomed.ID)
		signed := s.signVariant(t, alice, doomed.ID, "width=50&format=png")
		urls := []string{dv.Variants["thumb"], dv.Variants["small"], signed.URL}
		for _, u := range urls {
			if r := s.get(t, u, ""); r.Status != 200 {
				t.Fatalf("%s: %d", u, r.Status)
			}
		}
		wantOK(t, s.delete(t, "/api/images/"+doomed.ID, alice), http.StatusOK)
		for _, u := range urls {
			wantError(t, s.get(t, u, ""), http.StatusNotFound, "MEDIA_NOT_FOUND")
		}
		if !sharedBackend() {
			key := doomed.URL[strings.LastIndex(doomed.URL, "/")+1:]
			if left := filesWithPrefix(t, filepath.Join(s.DataDir, "blobs"), key); len(left) > 0 {
				t.Errorf("blobs left after deletion: %v", left)
			}
		}
	})
}

// filesWithPrefix lists the files under dir whose name starts with prefix.
func filesWithPrefix(t *testing.T, dir, prefix string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasPrefix(info.Name(), prefix) {
			out = append(out, info.Name())
		}
		return nil
	})
	return out
}

// exifOriented inserts an EXIF APP1 segment saying orientation o after a
// JPEG's start-of-image marker.
func exifOriented(j []byte, o int) []byte {
	tiff := []byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00")
	tiff = append(tiff, byte(o), 0, 0, 0, 0, 0, 0)
	data := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1, byte((len(data) + 2) >> 8), byte(len(data) + 2)}
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	out = append(out, data...)
	return append(out, j[2:]...)
}

// A variant rendered by one replica is served by the other from the blob
// store, without rendering again: replica b logs no "variant rendered".
func TestVariantsAcrossReplicas(t *testing.T) {
	t.Parallel()
	be := requireBackends(t)
	be["IMAGED_DATABASE_URL"] = privateSchema(t, be["IMAGED_DATABASE_URL"])
	var secret, key [32]byte
	rand.Read(secret[:])
	rand.Read(key[:])
	env := map[string]string{"IMAGED_JWT_SECRET": hex.EncodeToString(secret[:]), "IMAGED_SIGNING_KEY": hex.EncodeToString(key[:])}
	for k, v := range be {
		env[k] = v
	}
	a := startServer(t, serverOpts{Env: env})
	b := startServer(t, serverOpts{Env: env})
	alice, _ := users(t)
	token := a.Token(alice)
	up := a.upload(t, token, file{"replicated.png", "image/png", pngImage(t, 800, 600, 25)})
	va := a.imageVariants(t, token, up.ID)
	signed := a.signVariant(t, token, up.ID, "width=321&format=jpeg")
	onB := func(u string) string { return strings.Replace(u, a.Base, b.Base, 1) }

	for _, u := range []string{va.Variants["thumb"], signed.URL} {
		fromA := a.get(t, u, "")
		if fromA.Status != 200 {
			t.Fatalf("a: %s: %d %s", u, fromA.Status, fromA.Body)
		}
		fromB := b.get(t, onB(u), "")
		if fromB.Status != 200 || string(fromB.Body) != string(fromA.Body) || fromB.Header.Get("ETag") != fromA.Header.Get("ETag") {
			t.Errorf("b: %d, %d bytes (a: %d), ETag %q (a: %q)", fromB.Status, len(fromB.Body), len(fromA.Body), fromB.Header.Get("ETag"), fromA.Header.Get("ETag"))
		}
	}
	// Logs are written out every 100 ms.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(a.output.String(), "variant rendered") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(a.output.String(), "variant rendered"); n != 2 {
		t.Errorf("a rendered %d variants, want 2", n)
	}
	if strings.Contains(b.output.String(), "variant rendered") {
		t.Errorf("b rendered a variant a had stored:\n%s", b.output.String())
	}
	// And a deletion through b stops a's variant URLs at once.
	wantOK(t, b.delete(t, "/api/images/"+up.ID, token), http.StatusOK)
	for _, u := range []string{va.Variants["thumb"], signed.URL} {
		r := a.get(t, u, "")
		if r.Status != http.StatusNotFound {
			t.Errorf("a after b deleted: %s: %d, want 404", u, r.Status)
		}
	}
}

// imaged gc after a crash between deleting an image's record and its
// variants: the variants left behind go, those of existing images stay.
func TestGCRemovesOrphanedVariants(t *testing.T) {
	t.Parallel()
	if sharedBackend() {
		t.Skip("gc with no grace period on a database and bucket other tests share would remove their uploads in flight")
	}
	s := startServer(t, serverOpts{})
	aliceName, _ := users(t)
	token := s.Token(aliceName)
	keep := s.upload(t, token, file{"keep.png", "image/png", pngImage(t, 400, 300, 31)})
	doomed := s.upload(t, token, file{"doomed.png", "image/png", pngImage(t, 400, 300, 32)})
	for _, img := range []imageObject{keep, doomed} {
		for _, preset := range []string{"thumb", "small"} {
			if r := s.get(t, img.URL+"/"+preset, ""); r.Status != 200 {
				t.Fatalf("%s/%s: %d", img.URL, preset, r.Status)
			}
		}
	}
	blobs := filepath.Join(s.DataDir, "blobs")
	keyOf := func(img imageObject) string { return img.URL[strings.LastIndex(img.URL, "/")+1:] }
	saved := map[string][]byte{}
	filepath.Walk(blobs, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasPrefix(info.Name(), keyOf(doomed)+".v-") {
			b, _ := os.ReadFile(p)
			saved[p] = b
		}
		return nil
	})
	if len(saved) != 2 {
		t.Fatalf("%d variant files of the doomed image, want 2", len(saved))
	}
	wantOK(t, s.delete(t, "/api/images/"+doomed.ID, token), http.StatusOK)
	// The crash: the variants come back as if their deletion never ran.
	for p, b := range saved {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s survived the deletion", p)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gc := exec.Command(binary, "gc", "--data-dir", s.DataDir, "--grace", "1ns")
	gc.Env = s.env
	out, err := gc.CombinedOutput()
	if err != nil {
		t.Fatalf("imaged gc: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "removed 2 unreferenced") {
		t.Errorf("imaged gc said %q, want 2 removed", out)
	}
	for p := range saved {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("gc left the orphaned variant %s", filepath.Base(p))
		}
	}
	if left := filesWithPrefix(t, blobs, keyOf(keep)); len(left) != 3 {
		t.Errorf("the kept image has %v, want its bytes and 2 variants", left)
	}
	if r := s.get(t, keep.URL+"/thumb", ""); r.Status != 200 {
		t.Errorf("the kept image's thumb after gc: %d", r.Status)
	}
}
