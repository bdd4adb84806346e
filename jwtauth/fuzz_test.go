package jwtauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// fuzzAuthenticator accepts HS256 tokens of testSecret for testIssuer and
// testAudience at t0, without a cache, so that every call parses.
func fuzzAuthenticator(f *testing.F) *Authenticator {
	a, err := New(context.Background(), Config{HMACSecret: testSecret, Issuer: testIssuer, Audience: testAudience,
		Now: func() time.Time { return t0 }, CacheSize: -1, MaxTTL: 24 * time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	return a
}

// checkRefusal fails unless err is the 401 the API answers, without the
// token in it.
func checkRefusal(t *testing.T, tok string, err error) {
	t.Helper()
	var e *imaged.Error
	if !errors.As(err, &e) || e.Code != imaged.EUnauthorized {
		t.Fatalf("refusal is %v (%T), want an EUnauthorized *imaged.Error", err, err)
	}
	if len(tok) >= 8 && (strings.Contains(e.Message, tok) || strings.Contains(err.Error(), tok)) {
		t.Fatalf("the error repeats the token: %v", err)
	}
}

// FuzzAuthenticateToken feeds arbitrary text as a bearer token: it must
// never panic, and every refusal is a 401 that does not repeat the token.
// A forged signature is never accepted (the fuzzer cannot sign).
func FuzzAuthenticateToken(f *testing.F) {
	a := fuzzAuthenticator(f)
	valid := hsTokenFor(f, `{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","iss":"`+testIssuer+`","aud":"imaged","iat":1748779200,"exp":1748779500}`)
	for _, s := range []string{valid, valid + "=", strings.Replace(valid, ".", "..", 1), "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		strings.Repeat("A", MaxTokenLen+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		sub, err := a.Authenticate(context.Background(), tok)
		if err != nil {
			checkRefusal(t, tok, err)
			return
		}
		// Accepted: it must carry the secret's own signature over its first
		// two parts, spelled canonically.
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		want := base64.RawURLEncoding.EncodeToString(hs256(testSecret, parts[0]+"."+parts[1]))
		if parts[2] != want {
			t.Fatalf("accepted %q with a signature other than the secret's", tok)
		}
		checkAcceptedSubject(t, sub)
	})
}

// FuzzAuthenticateClaims signs arbitrary header and payload text with the
// secret, so that the fuzzer explores what is checked after the signature:
// a token is accepted only if an independent reading of it agrees (HS256,
// no "crit", numeric exp in the future, numeric nbf and iat not in the
// future, the issuer and audience, a plain subject), and then with that
// subject.
func FuzzAuthenticateClaims(f *testing.F) {
	a := fuzzAuthenticator(f)
	hdr := `{"alg":"HS256","typ":"JWT"}`
	good := `{"sub":"alice","iss":"` + testIssuer + `","aud":"imaged","iat":1748779200,"exp":1748779500}`
	f.Add(hdr, good)
	f.Add(`{"alg":"HS256","crit":["exp"]}`, good)
	f.Add(hdr, strings.Replace(good, `"exp":1748779500`, `"exp":"1748779500"`, 1))
	f.Add(hdr, strings.Replace(good, `"alice"`, `"\u0000alice"`, 1))
	f.Add(hdr, strings.Replace(good, `"alice"`, `"  "`, 1))
	f.Add(hdr, strings.Replace(good, `"aud":"imaged"`, `"aud":["other","imaged"]`, 1))
	f.Add(`{"alg":"none"}`, good)
	f.Fuzz(func(t *testing.T, header, payload string) {
		tok := hsTokenFor(t, header, payload)
		sub, err := a.Authenticate(context.Background(), tok)
		verdict, wantSub := readToken(header, payload)
		if err != nil {
			checkRefusal(t, tok, err)
			return
		}
		if verdict != "" {
			t.Fatalf("accepted header %s payload %s, which an independent reading refuses: %s", header, payload, verdict)
		}
		if sub != wantSub {
			t.Fatalf("subject %q, the payload says %q", sub, wantSub)
		}
		checkAcceptedSubject(t, sub)
	})
}

func hsTokenFor(t testing.TB, header, payload string) string {
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	return input + "." + b64(hs256(testSecret, input))
}

func checkAcceptedSubject(t *testing.T, sub string) {
	t.Helper()
	if strings.TrimFunc(sub, unicode.IsSpace) == "" || len(sub) > MaxSubjectLen || !utf8.ValidString(sub) ||
		strings.ContainsRune(sub, utf8.RuneError) || strings.IndexFunc(sub, unicode.IsControl) >= 0 {
		t.Fatalf("accepted the subject %q", sub)
	}
}

// readToken decides on a token's header and payload independently of the
// parser: "" if it must be acceptable, else why not; and its subject.
func readToken(header, payload string) (string, string) {
	var h map[string]any
	if err := strictJSON(header, &h); err != nil {
		return "header: " + err.Error(), ""
	}
	if h["alg"] != "HS256" {
		return "alg is not HS256", ""
	}
	if _, ok := h["crit"]; ok {
		return "crit", ""
	}
	var c map[string]any
	if err := strictJSON(payload, &c); err != nil {
		return "payload: " + err.Error(), ""
	}
	now := float64(t0.Unix())
	leeway := DefaultLeeway.Seconds()
	// value, present, numeric; whole seconds, as NumericDate keeps them
	num := func(k string) (float64, bool, bool) {
		v, ok := c[k]
		if !ok {
			return 0, false, true
		}
		n, isNum := v.(json.Number)
		if !isNum {
			return 0, true, false
		}
		x, err := n.Float64()
		return math.Floor(x), true, err == nil
	}
	exp, present, ok := num("exp")
	if !present || !ok || exp+leeway <= now {
		return "exp missing, not a number or past", ""
	}
	if nbf, present, ok := num("nbf"); present && (!ok || nbf-leeway > now) {
		return "nbf not a number or in the future", ""
	}
	iat, present, ok := num("iat")
	if present && (!ok || iat-leeway > now) {
		return "iat not a number or in the future", ""
	}
	from := now
	if present {
		from = iat
	}
	if exp-from > (24 * time.Hour).Seconds() {
		return "lives longer than the maximum", ""
	}
	if c["iss"] != testIssuer {
		return "issuer", ""
	}
	switch aud := c["aud"].(type) {
	case string:
		if aud != testAudience {
			return "audience", ""
		}
	case []any:
		found := false
		for _, v := range aud {
			found = found || v == testAudience
		}
		if !found {
			return "audience", ""
		}
	default:
		return "audience", ""
	}
	sub, ok := c["sub"].(string)
	if !ok {
		return "sub is not a string", ""
	}
	if err := checkSubject(sub); err != nil {
		return err.Error(), ""
	}
	return "", sub
}

// strictJSON decodes one JSON object, numbers kept as json.Number.
func strictJSON(s string, v any) error {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}
