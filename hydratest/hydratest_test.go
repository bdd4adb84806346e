package hydratest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// kidOf returns the kid of a JWT's header.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Kid == "" {
		t.Fatalf("JWT header without kid: %s", b)
	}
	return h.Kid
}

func publishedKids(t *testing.T, s *Server) map[string]bool {
	t.Helper()
	resp, err := http.Get(s.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for _, k := range set.Keys {
		kids[k.Kid] = true
	}
	return kids
}

func TestTokensAndRotation(t *testing.T) {
	s := Start(t, Options{})
	c := s.CreateMachineClient(t, "imaged")
	first := s.Token(t, c, "imaged")
	kid1 := kidOf(t, first)
	if !publishedKids(t, s)[kid1] {
		t.Fatalf("the token's kid %s is not in the JWKS", kid1)
	}
	kid2 := s.RotateKey(t)
	second := s.Token(t, c, "imaged")
	if got := kidOf(t, second); got != kid2 || got == kid1 {
		t.Fatalf("after rotation tokens carry kid %s; want the new key %s (old %s)", got, kid2, kid1)
	}
	if kids := publishedKids(t, s); !kids[kid1] || !kids[kid2] {
		t.Fatalf("JWKS after rotation lacks a key: %v (want %s and %s)", kids, kid1, kid2)
	}
}
