package provenance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDevelopmentCredentials(t *testing.T) {
	dir := t.TempDir()
	first, err := DevelopmentCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := DevelopmentCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Chain[0].Equal(again.Chain[0]) || !first.Key.Equal(again.Key) {
		t.Fatal("a second start made new credentials instead of reusing the data directory's")
	}
	if info, err := os.Stat(filepath.Join(dir, devKeyFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", info, err)
	}
	leaf, root := first.Chain[0], first.Chain[1]
	if !first.Development() || leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature ||
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) || len(leaf.AuthorityKeyId) == 0 ||
		leaf.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Fatalf("signing certificate: CA %v, key usage %v, EKU %v, AKI %x, %v", leaf.IsCA, leaf.KeyUsage, leaf.ExtKeyUsage, leaf.AuthorityKeyId, leaf.SignatureAlgorithm)
	}
	if err := leaf.CheckSignatureFrom(root); err != nil {
		t.Fatalf("the signing certificate is not issued by the development root: %v", err)
	}
}

func writePEM(t *testing.T, typ string, der ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range der {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	f := filepath.Join(t.TempDir(), "f.pem")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	if _, err := DevelopmentCredentials(dir); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, devCertFile), filepath.Join(dir, devKeyFile)
	if c, err := LoadCredentials(cert, key); err != nil || len(c.Chain) != 2 {
		t.Fatalf("the development files do not load: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalECPrivateKey(other)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"missing_certificate_file", filepath.Join(dir, "nope.pem"), key, "no such file"},
		{"no_certificate_in_the_file", key, key, "no CERTIFICATE"},
		{"key_of_another_certificate", cert, writePEM(t, "EC PRIVATE KEY", otherDER), "not the key of the first certificate"},
		{"p384_key", cert, writePEM(t, "PRIVATE KEY", p384DER), "P-256"},
		{"rsa_key", cert, writePEM(t, "PRIVATE KEY", rsaDER), "P-256"},
		{"not_pem", cert, cert + ".missing", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCredentials(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestXMPDigitalSourceType(t *testing.T) {
	for _, tc := range []struct{ name, packet, want string }{
		{"ours", string(xmpPacket(TrainedAlgorithmicMedia, Agent{Name: "imaged"}, testTime, "")), TrainedAlgorithmicMedia},
		{"element_form", `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"><Iptc4xmpExt:DigitalSourceType> ` + CompositeSynthetic + ` </Iptc4xmpExt:DigitalSourceType></rdf:Description></rdf:RDF></x:xmpmeta>`, CompositeSynthetic},
		{"other_prefix_same_namespace", `<r xmlns:e="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" e:DigitalSourceType="` + TrainedAlgorithmicMedia + `"/>`, TrainedAlgorithmicMedia},
		{"other_namespace", `<r xmlns:e="http://example.com/" e:DigitalSourceType="` + TrainedAlgorithmicMedia + `"/>`, ""},
		{"broken_xml", `<r xmlns:e="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := xmpDigitalSourceType([]byte(tc.packet)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestXMPEscapesValues(t *testing.T) {
	p := xmpPacket(TrainedAlgorithmicMedia, Agent{Name: "imaged", Provider: `a"b<c&`, Model: "m"}, testTime, "")
	if !strings.Contains(string(p), `Iptc4xmpExt:AISystemUsed="a&#34;b&lt;c&amp;"`) {
		t.Fatalf("provider not escaped: %s", p)
	}
	if got := xmpDigitalSourceType(p); got != TrainedAlgorithmicMedia {
		t.Fatalf("the packet does not parse back: %q", got)
	}
}
