package urlsign

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/imaged/imaged/testtool"
)

const testKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestSignAndVerify(t *testing.T) {
	s, err := New([]byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	msg := "abcd.png/width=640,format=webp"
	sig := s.Sign(msg)
	if len(sig) != SignatureLen || strings.ContainsAny(sig, "+/=") {
		t.Fatalf("signature %q: want %d base64url characters without padding", sig, SignatureLen)
	}
	if !s.Verify(msg, sig) {
		t.Fatal("a signature does not verify its own message")
	}
	other, _ := New([]byte(strings.ToUpper(testKey)))
	flipped := []byte(sig)
	flipped[3] ^= 1
	for name, tc := range map[string]struct{ msg, sig string }{
		"other_message":   {msg + "0", sig},
		"flipped_bit":     {msg, string(flipped)},
		"other_key":       {msg, other.Sign(msg)},
		"empty":           {msg, ""},
		"truncated":       {msg, sig[:len(sig)-1]},
		"padded":          {msg, sig + "="},
		"standard_base64": {msg, strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "x"},
	} {
		t.Run(name, func(t *testing.T) {
			if s.Verify(tc.msg, tc.sig) {
				t.Errorf("Verify(%q, %q) = true", tc.msg, tc.sig)
			}
		})
	}
}

func TestShortKeyRefused(t *testing.T) {
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

// The scheme the README documents for backends, computed by openssl.
func TestMatchesOpenSSL(t *testing.T) {
	testtool.Need(t, "openssl")
	s, _ := New([]byte(testKey))
	msg := "k3j4.png/width=256,height=256,fit=cover,format=webp,expires=1767225600"
	out, err := exec.Command("sh", "-c", `printf '%s' "$1" | openssl dgst -sha256 -hmac "$2" -binary | basenc --base64url | tr -d '='`, "sh", msg, testKey).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != s.Sign(msg) {
		t.Errorf("openssl signs %q, Sign %q", got, s.Sign(msg))
	}
}
