package jwtauth

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// hsToken signs a hand-made header and payload with the test secret.
func hsToken(header, payload string) string {
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	return input + "." + b64(hs256(testSecret, input))
}

// payloadWith is the JSON of claims("alice") with key set to the raw JSON v.
func payloadWith(t *testing.T, key, rawValue string) string {
	t.Helper()
	c := claims("alice")
	delete(c, key)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return `{"` + key + `":` + rawValue + `,` + string(b[1:])
}

// renamed is the JSON of claims("alice") with the claim key written as
// name instead.
func renamed(t *testing.T, key, name string) string {
	t.Helper()
	c := claims("alice")
	v, ok := c[key]
	if !ok {
		t.Fatalf("claims have no %q", key)
	}
	delete(c, key)
	c[name] = v
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// respell returns the token with its signature's last base64url character
// changed so that only its unused trailing bits differ: the same signature
// bytes, spelled differently.
func respell(t *testing.T, tok string, flip byte) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[i^int(flip)])
}

func TestStrictTokens(t *testing.T) {
	a := newAuthenticator(t, Config{HMACSecret: testSecret, Issuer: testIssuer, Audience: testAudience})
	hdr := `{"alg":"HS256","typ":"JWT"}`
	valid := hsToken(hdr, payloadWith(t, "sub", `"alice"`))

	tests := []struct {
		name   string
		token  string
		accept bool
	}{
		{"hand_made_valid_token_accepted", valid, true},
		{"crit_naming_unknown_extension_refused", hsToken(`{"alg":"HS256","crit":["exp-ext"],"exp-ext":1}`, payloadWith(t, "sub", `"alice"`)), false},
		{"crit_naming_b64_refused", hsToken(`{"alg":"HS256","b64":false,"crit":["b64"]}`, payloadWith(t, "sub", `"alice"`)), false},
		{"empty_crit_refused", hsToken(`{"alg":"HS256","crit":[]}`, payloadWith(t, "sub", `"alice"`)), false},
		{"signature_with_trailing_bit_1_refused", respell(t, valid, 1), false},
		{"signature_with_trailing_bit_2_refused", respell(t, valid, 2), false},
		{"signature_with_both_trailing_bits_refused", respell(t, valid, 3), false},
		{"signature_with_padding_refused", valid + "=", false},
		{"exp_as_string_refused", hsToken(hdr, payloadWith(t, "exp", `"`+jsonInt(t0.Add(time.Hour).Unix())+`"`)), false},
		{"nbf_as_string_refused", hsToken(hdr, payloadWith(t, "nbf", `"`+jsonInt(t0.Add(-time.Hour).Unix())+`"`)), false},
		{"iat_as_string_refused", hsToken(hdr, payloadWith(t, "iat", `"`+jsonInt(t0.Unix())+`"`)), false},
		{"exp_as_bool_refused", hsToken(hdr, payloadWith(t, "exp", `true`)), false},
		{"exp_as_null_refused", hsToken(hdr, payloadWith(t, "exp", `null`)), false},
		{"exp_with_fraction_accepted", hsToken(hdr, payloadWith(t, "exp", jsonInt(t0.Add(time.Hour).Unix())+".5")), true},
		{"blank_sub_refused", hsToken(hdr, payloadWith(t, "sub", `"   "`)), false},
		{"tab_sub_refused", hsToken(hdr, payloadWith(t, "sub", `"\t"`)), false},
		{"sub_with_newline_refused", hsToken(hdr, payloadWith(t, "sub", `"alice\nadmin"`)), false},
		{"sub_with_NUL_refused", hsToken(hdr, payloadWith(t, "sub", `"alice\u0000"`)), false},
		{"sub_with_DEL_refused", hsToken(hdr, payloadWith(t, "sub", "\"alice\x7f\"")), false},
		{"sub_with_C1_control_refused", hsToken(hdr, payloadWith(t, "sub", `"alice\u0085"`)), false},
		{"sub_with_invalid_UTF8_refused", hsToken(hdr, payloadWith(t, "sub", "\"alice\xff\"")), false},
		{"sub_with_other_invalid_UTF8_refused", hsToken(hdr, payloadWith(t, "sub", "\"alice\xfe\"")), false},
		{"sub_with_lone_surrogate_escape_refused", hsToken(hdr, payloadWith(t, "sub", `"alice\udc00"`)), false},
		{"sub_with_replacement_character_refused", hsToken(hdr, payloadWith(t, "sub", `"alice\ufffd"`)), false},
		{"sub_as_number_refused", hsToken(hdr, payloadWith(t, "sub", `42`)), false},
		{"sub_with_non_ASCII_letters_accepted", hsToken(hdr, payloadWith(t, "sub", `"zoë-日本"`)), true},
		{"sub_with_inner_space_accepted", hsToken(hdr, payloadWith(t, "sub", `"alice smith"`)), true},
		// Claim names are case-sensitive (RFC 7519 section 4): encoding/json
		// alone would read these as "exp", "sub" and "aud".
		{"exp_spelled_eXp_refused", hsToken(hdr, renamed(t, "exp", "eXp")), false},
		{"sub_spelled_Sub_refused", hsToken(hdr, renamed(t, "sub", "Sub")), false},
		{"aud_spelled_AUD_refused", hsToken(hdr, renamed(t, "aud", "AUD")), false},
		{"iss_spelled_Iss_refused", hsToken(hdr, renamed(t, "iss", "Iss")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := a.Authenticate(context.Background(), tt.token)
			if tt.accept {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %q", sub)
			}
			wantUnauthorized(t, err, msgInvalid, tt.token)
		})
	}

	t.Run("invalid_UTF8_subjects_do_not_share_an_owner", func(t *testing.T) {
		for _, raw := range []string{"\"a\xff\"", "\"a\xfe\"", `"a\ufffd"`} {
			if sub, err := a.Authenticate(context.Background(), hsToken(hdr, payloadWith(t, "sub", raw))); err == nil {
				t.Errorf("sub %q accepted as %q", raw, sub)
			}
		}
	})
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestMaxTTL(t *testing.T) {
	a := newAuthenticator(t, Config{HMACSecret: testSecret, MaxTTL: time.Hour})
	tok := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }
	base := func(exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice", "iat": t0.Unix(), "exp": exp.Unix()}
	}
	tests := []struct {
		name   string
		token  string
		accept bool
	}{
		{"lifetime_equal_to_maximum_accepted", tok(base(t0.Add(time.Hour))), true},
		{"shorter_lifetime_accepted", tok(base(t0.Add(time.Minute))), true},
		{"lifetime_over_maximum_refused", tok(base(t0.Add(time.Hour + time.Second))), false},
		{"day_long_token_refused", tok(base(t0.Add(24 * time.Hour))), false},
		{"without_iat_remaining_time_within_maximum_accepted", tok(without(base(t0.Add(50*time.Minute)), "iat")), true},
		{"without_iat_remaining_time_over_maximum_refused", tok(without(base(t0.Add(2*time.Hour)), "iat")), false},
		{"old_iat_with_far_exp_refused", tok(jwt.MapClaims{"sub": "alice", "iat": t0.Add(-30 * time.Minute).Unix(), "exp": t0.Add(31 * time.Minute).Unix()}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), tt.token)
			if tt.accept && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.accept {
				if err == nil {
					t.Fatal("accepted")
				}
				wantUnauthorized(t, err, msgInvalid, tt.token)
			}
		})
	}
	t.Run("without_maximum_day_long_token_accepted", func(t *testing.T) {
		b := newAuthenticator(t, Config{HMACSecret: testSecret})
		if _, err := b.Authenticate(context.Background(), tok(base(t0.Add(24*time.Hour)))); err != nil {
			t.Fatal(err)
		}
	})
}
