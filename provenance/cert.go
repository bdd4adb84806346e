package provenance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Credentials are what signs manifests: a P-256 key and its certificate
// chain, the signing certificate first.
type Credentials struct {
	Key   *ecdsa.PrivateKey
	Chain []*x509.Certificate
}

// Development reports whether the chain is the self-made development one,
// which validators report as untrusted.
func (c *Credentials) Development() bool {
	return len(c.Chain) > 0 && len(c.Chain[len(c.Chain)-1].Subject.Organization) > 0 &&
		c.Chain[len(c.Chain)-1].Subject.Organization[0] == devOrganization
}

func (c *Credentials) der() [][]byte {
	out := make([][]byte, len(c.Chain))
	for i, cert := range c.Chain {
		out[i] = cert.Raw
	}
	return out
}

// LoadCredentials reads a PEM certificate chain (the signing certificate
// first, then intermediates; a root may be left out) and a PEM private key
// (PKCS #8 or SEC 1) that must be the signing certificate's P-256 key.
func LoadCredentials(certFile, keyFile string) (*Credentials, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("C2PA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("C2PA key: %w", err)
	}
	return parseCredentials(certPEM, keyPEM)
}

func parseCredentials(certPEM, keyPEM []byte) (*Credentials, error) {
	c := &Credentials{}
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("C2PA certificate: %w", err)
		}
		c.Chain = append(c.Chain, cert)
	}
	if len(c.Chain) == 0 {
		return nil, errors.New("C2PA certificate: no CERTIFICATE block in the file")
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("C2PA key: no PEM block in the file")
	}
	var key any
	var err error
	switch b.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("C2PA key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("C2PA key: ES256 signing needs an ECDSA P-256 key")
	}
	pub, ok := c.Chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&ec.PublicKey) {
		return nil, errors.New("C2PA key: it is not the key of the first certificate in the chain")
	}
	c.Key = ec
	return c, nil
}

const (
	devOrganization = "imaged development (untrusted)"
	devCertFile     = "c2pa-dev-cert.pem"
	devKeyFile      = "c2pa-dev-key.pem"
	devCAFile       = "c2pa-dev-ca.pem"
)

// DevelopmentCredentials returns the development chain kept in dir,
// creating it on first use: a root certificate of its own and a signing
// certificate issued by it with what C2PA validators require of a signer
// (v3, ECDSA P-256 with SHA-256, digitalSignature key usage, the
// emailProtection and documentSigning extended key usages, not a CA,
// authority and subject key identifiers). Nobody trusts that root:
// validators report such manifests as signed by an untrusted certificate.
// The root is in c2pa-dev-ca.pem, for a local trust list.
func DevelopmentCredentials(dir string) (*Credentials, error) {
	certPath, keyPath := filepath.Join(dir, devCertFile), filepath.Join(dir, devKeyFile)
	if c, err := LoadCredentials(certPath, keyPath); err == nil && time.Until(c.Chain[0].NotAfter) > 30*24*time.Hour {
		return c, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	certPEM, keyPEM, caPEM, err := newDevelopmentChain(time.Now())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The key first: a chain is only used once both files are there.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{keyPath, keyPEM, 0o600}, {filepath.Join(dir, devCAFile), caPEM, 0o644}, {certPath, certPEM, 0o644}} {
		if err := writeFileAtomic(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return parseCredentials(certPEM, keyPEM)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

var (
	oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}
)

// newDevelopmentChain makes the development root and signing certificate.
func newDevelopmentChain(now time.Time) (certPEM, keyPEM, caPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caSKI := keyID(&caKey.PublicKey)
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "imaged development root", Organization: []string{devOrganization}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          caSKI,
		AuthorityKeyId:        caSKI,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "imaged development signer", Organization: []string{devOrganization}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(2, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidDocumentSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), caPEM, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// keyID is the RFC 5280 method 1 key identifier: SHA-1 of the public key bits.
func keyID(pub *ecdsa.PublicKey) []byte {
	b, _ := x509.MarshalPKIXPublicKey(pub)
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	asn1.Unmarshal(b, &spki)
	h := sha1.Sum(spki.PublicKey.Bytes)
	return h[:]
}
