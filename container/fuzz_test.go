package container

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzValidate feeds arbitrary bytes to Validate and Scrub: they must never
// panic nor hang, every refusal is a FormatError or ErrUnknownFormat, and a
// scrubbed accepted file is still accepted. Run it with
// go test -fuzz FuzzValidate ./container; testdata/fuzz holds seeds.
func FuzzValidate(f *testing.F) {
	f.Add(pngFile(f, 9, 7))
	f.Add(jpegFile(f, 9, 7))
	f.Add(gifFile(f, 9, 7))
	f.Add(animatedGIF(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Validate(bytes.NewReader(data), Options{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) && !errors.Is(err, ErrUnknownFormat) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			return
		}
		var out bytes.Buffer
		if _, err := Rewrite(&out, bytes.NewReader(data), info.Format, Scrub(info)); err != nil {
			t.Fatal(err)
		}
		if _, err := Validate(bytes.NewReader(out.Bytes()), Options{}); err != nil {
			t.Fatalf("scrubbed file refused: %v", err)
		}
	})
}
