package container

import (
	"github.com/imaged/imaged/testtool"

	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// exiftoolArgs write what a phone or a photographer's tools put in a file:
// a GPS position, serial numbers, an owner, a city, contact details, and
// things to keep (orientation, make, a creator, a digital source type).
var exiftoolArgs = []string{
	"-GPSLatitude=48.8584", "-GPSLatitudeRef=N", "-GPSLongitude=2.2945", "-GPSLongitudeRef=E",
	"-Orientation#=6", "-EXIF:Make=Camera Co", "-EXIF:SerialNumber=BODY-123", "-EXIF:LensSerialNumber=LENS-456",
	"-EXIF:OwnerName=Alice Example", "-EXIF:Artist=Alice Example",
	"-XMP-photoshop:City=Paris", "-XMP-iptcCore:CreatorWorkEmail=alice@example.com",
	"-XMP-exif:GPSLatitude=48.8584", "-XMP-dc:Creator=Alice Example",
	"-XMP-iptcExt:DigitalSourceType=http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
}

// withExiftool writes metadata into data with exiftool and returns the file.
func withExiftool(t *testing.T, data []byte, ext string, args ...string) []byte {
	exiftool := testtool.Need(t, "exiftool")
	p := filepath.Join(t.TempDir(), "in."+ext)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exiftool, append(append([]string{"-q", "-q", "-overwrite_original"}, args...), p)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exiftool: %v\n%s", err, b)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exiftoolTags reads every tag exiftool finds, by group:name.
func exiftoolTags(t *testing.T, data []byte, ext string) map[string]any {
	exiftool := testtool.Need(t, "exiftool")
	p := filepath.Join(t.TempDir(), "out."+ext)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exiftool, "-j", "-G1", "-a", "-n", p).Output()
	if err != nil {
		t.Fatalf("exiftool: %v", err)
	}
	var tags []map[string]any
	if err := json.Unmarshal(out, &tags); err != nil {
		t.Fatal(err)
	}
	return tags[0]
}

// scrubbed validates data, applies Scrub, and validates the result.
func scrubbed(t *testing.T, data []byte) []byte {
	t.Helper()
	info, err := Validate(bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := Rewrite(&out, bytes.NewReader(data), info.Format, Scrub(info)); err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(bytes.NewReader(out.Bytes()), Options{}); err != nil {
		t.Fatalf("the scrubbed file is not valid: %v", err)
	}
	return out.Bytes()
}

func TestScrub_removes_private_metadata_written_by_exiftool(t *testing.T) {
	for _, tt := range []struct {
		name, ext string
		data      func(t testing.TB) []byte
		extra     []string
	}{
		{"jpeg", "jpg", func(t testing.TB) []byte { return jpegFile(t, 40, 30) }, []string{"-IPTC:City=Paris", "-IPTC:By-line=Alice Example", "-IPTC:Country-PrimaryLocationName=France"}},
		{"png", "png", func(t testing.TB) []byte { return pngFile(t, 40, 30) }, nil},
		{"webp", "webp", func(t testing.TB) []byte { return webpFile(t, 40, 30, false) }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := withExiftool(t, tt.data(t), tt.ext, append(exiftoolArgs, tt.extra...)...)
			before := exiftoolTags(t, src, tt.ext)
			if before["GPS:GPSLatitude"] == nil || before["ExifIFD:SerialNumber"] == nil {
				t.Fatalf("exiftool did not write the test's metadata: %v", before)
			}
			out := scrubbed(t, src)
			after := exiftoolTags(t, out, tt.ext)
			for k, v := range after {
				lk := strings.ToLower(k)
				if strings.Contains(lk, "gps") || strings.Contains(lk, "serial") || strings.Contains(lk, "owner") ||
					strings.Contains(lk, "city") || strings.Contains(lk, "country") || strings.Contains(lk, "email") {
					t.Errorf("%s = %v is still there", k, v)
				}
			}
			for _, k := range []string{"IFD0:Orientation", "IFD0:Make", "IFD0:Artist", "XMP-dc:Creator", "XMP-iptcExt:DigitalSourceType"} {
				if after[k] == nil || after[k] != before[k] {
					t.Errorf("%s = %v, want %v kept", k, after[k], before[k])
				}
			}
			if tt.ext == "jpg" && after["IPTC:By-line"] != "Alice Example" {
				t.Errorf("IPTC By-line = %v, want it kept", after["IPTC:By-line"])
			}
			if w := after["Warning"]; w != nil {
				t.Errorf("exiftool warns about the scrubbed file: %v", w)
			}
			if len(out) >= len(src) {
				t.Errorf("scrubbed file of %d bytes, the original %d", len(out), len(src))
			}
		})
	}
}

func TestScrub_leaves_a_clean_file_alone(t *testing.T) {
	for _, data := range [][]byte{pngFile(t, 8, 8), jpegFile(t, 8, 8), gifFile(t, 8, 8)} {
		info, err := Validate(bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if e := Scrub(info); len(e) != 0 {
			t.Fatalf("%v: %d edits of a file without metadata", info.Format, len(e))
		}
	}
}

func TestScrubXMP_keeps_everything_else_as_written(t *testing.T) {
	in := `<?xpacket begin="` + "\ufeff" + `" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:ph="http://ns.adobe.com/photoshop/1.0/"
   xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" ph:City="Paris" exif:GPSLatitude="48,51.5N"
   Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">
  <exif:GPSLongitude>2,17.7E</exif:GPSLongitude>
  <ph:Headline>A &amp; B &lt;tower&gt;</ph:Headline>
 </rdf:Description>
</rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>`
	out, changed, err := scrubXMP([]byte(in))
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	s := string(out)
	for _, gone := range []string{"Paris", "GPSLatitude", "GPSLongitude", "2,17.7E"} {
		if strings.Contains(s, gone) {
			t.Errorf("%q is still there:\n%s", gone, s)
		}
	}
	for _, kept := range []string{`<?xpacket begin="` + "\ufeff", `Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"`,
		`<ph:Headline>A &amp; B &lt;tower&gt;</ph:Headline>`, `<?xpacket end="w"?>`, `xmlns:ph="http://ns.adobe.com/photoshop/1.0/"`} {
		if !strings.Contains(s, kept) {
			t.Errorf("%q is gone:\n%s", kept, s)
		}
	}
}
