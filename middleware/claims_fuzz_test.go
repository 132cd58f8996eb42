package middleware

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeObject: the strict decoder never panics, accepts only what
// encoding/json accepts as an object, and refuses duplicate names.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"exp":1,"EXP":2}`,
		`{"a":[1,{"b":null}]}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1e400}`, `{"a":` + strings.Repeat("[", 40) + `}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeObject(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var again map[string]any
		if err := json.Unmarshal(b, &again); err != nil || len(again) != len(m) {
			t.Fatalf("accepted %q that encoding/json reads differently", b)
		}
	})
}

// FuzzParseJWS (the header parser): never panics; an accepted token has
// the three-segment shape, an alg, and a kid within the limit.
func FuzzParseJWS(f *testing.F) {
	testKeys(f)
	for _, s := range []string{
		keyRS.token(validClaims(), nil),
		keyES.token(validClaims(), func(h map[string]any) { h["crit"] = []string{"x"} }),
		b64enc([]byte(`{"alg":"none"}`)) + "." + b64enc([]byte(`{}`)) + ".",
		b64enc([]byte(`{"alg":"RS256","alg":"none"}`)) + ".e30.AA",
		b64enc([]byte(`{"alg":"RS256","kid":1}`)) + ".e30.AA",
		"a.b.c", "..", "a.b.c.d.e", "eyJ.eyJ.eyJ==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseJWS(s)
		if err != nil {
			return
		}
		if strings.Count(s, ".") != 2 || len(tok.kid) > maxKidLen || tok.signingInput != s[:strings.LastIndexByte(s, '.')] {
			t.Fatalf("accepted malformed %q: %+v", s, tok)
		}
		_ = looksLikeJWT(s)
	})
}

// FuzzClaims (the claims parser): decoding plus the claim checks never
// panic, and an accepted token satisfies the rules.
func FuzzClaims(f *testing.F) {
	base := `"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":1800000600,"iat":1799999990`
	for _, s := range []string{
		`{` + base + `}`,
		`{` + base + `,"patient":"Patient/1","fhirContext":["List/1",{"reference":"A/1","role":"x"}],"scp":["a","b"]}`,
		`{` + base + `,"fhirUser":"https://x/fhir/Practitioner/1","need_patient_banner":true}`,
		`{"iss":1,"aud":[1],"exp":"x"}`,
		`{` + base + `,"cnf":{}}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeObject(b)
		if err != nil {
			return
		}
		r := testRules(t)
		r.names.Context = "context"
		tok, err := r.buildToken(m, now)
		if err != nil {
			return
		}
		if tok.Issuer != testIssuer || !inList(tok.Audience, testAudience) || !tok.Expiry.After(now.Add(-r.leeway)) || tok.Scopes == nil {
			t.Fatalf("accepted %s as %+v", b, tok)
		}
		if tok.Patient != "" && !isFHIRID(tok.Patient) {
			t.Fatalf("patient %q is not a FHIR id", tok.Patient)
		}
	})
}
