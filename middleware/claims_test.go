package middleware

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testRules(t testing.TB) *claimRules {
	sc, err := newScopeCache(16)
	if err != nil {
		t.Fatal(err)
	}
	return &claimRules{
		issuers: []string{testIssuer}, requireIssuer: true,
		audience: testAudience, requireAudience: true,
		leeway: 30 * time.Second, maxLifetime: time.Hour,
		names: ClaimNames{}.withDefaults(), scopes: sc,
	}
}

func mustDecode(t testing.TB, s string) map[string]any {
	t.Helper()
	m, err := decodeObject([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// TestTokenContext covers the token-context decoding vectors (SMART notes
// §9.4, T1–T8) and the claim-name mapping.
func TestTokenContext(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := `"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":1800000600,"iat":1799999990`
	cases := []struct {
		name   string
		claims string
		names  ClaimNames
		check  func(t *testing.T, tok *Token)
	}{
		{"T1 patient id", `{` + base + `,"patient":"123"}`, ClaimNames{}, func(t *testing.T, tok *Token) { eq(t, tok.Patient, "123") }},
		{"T2 patient reference", `{` + base + `,"patient":"Patient/456"}`, ClaimNames{}, func(t *testing.T, tok *Token) { eq(t, tok.Patient, "456") }},
		{"T3 fhirContext 2.0 strings", `{` + base + `,"fhirContext":["DiagnosticReport/123","Organization/789"]}`, ClaimNames{}, func(t *testing.T, tok *Token) {
			want := []ContextItem{{Reference: "DiagnosticReport/123"}, {Reference: "Organization/789"}}
			if !reflect.DeepEqual(tok.FHIRContext, want) {
				t.Fatalf("FHIRContext = %+v", tok.FHIRContext)
			}
		}},
		{"T4 fhirContext 2.1 object with role", `{` + base + `,"fhirContext":[{"reference":"List/123","role":"https://example.org/med-list-at-home"}]}`, ClaimNames{}, func(t *testing.T, tok *Token) {
			want := []ContextItem{{Reference: "List/123", Role: "https://example.org/med-list-at-home"}}
			if !reflect.DeepEqual(tok.FHIRContext, want) {
				t.Fatalf("FHIRContext = %+v", tok.FHIRContext)
			}
		}},
		{"T5 fhirContext 2.2 canonical", `{` + base + `,"fhirContext":[{"type":"Questionnaire","canonical":"https://example.org/Questionnaire/123/|v2023-05-03"}]}`, ClaimNames{}, func(t *testing.T, tok *Token) {
			want := []ContextItem{{Type: "Questionnaire", Canonical: "https://example.org/Questionnaire/123/|v2023-05-03"}}
			if !reflect.DeepEqual(tok.FHIRContext, want) {
				t.Fatalf("FHIRContext = %+v", tok.FHIRContext)
			}
		}},
		{"fhirContext 2.2 identifier", `{` + base + `,"fhirContext":[{"type":"Patient","identifier":{"system":"urn:x","value":"1"},"role":"https://example.org/r"}]}`, ClaimNames{}, func(t *testing.T, tok *Token) {
			if len(tok.FHIRContext) != 1 || tok.FHIRContext[0].Identifier["value"] != "1" {
				t.Fatalf("FHIRContext = %+v", tok.FHIRContext)
			}
		}},
		{"T7 fhirUser relative", `{` + base + `,"fhirUser":"Practitioner/123"}`, ClaimNames{}, func(t *testing.T, tok *Token) { eq(t, tok.FHIRUser, "Practitioner/123") }},
		{"T8 fhirUser absolute", `{` + base + `,"fhirUser":"https://ehr.example.org/fhir/PractitionerRole/7"}`, ClaimNames{}, func(t *testing.T, tok *Token) {
			eq(t, tok.FHIRUser, "https://ehr.example.org/fhir/PractitionerRole/7")
		}},
		{"all SMART context fields", `{` + base + `,"sub":"u","client_id":"c","encounter":"Encounter/e1","need_patient_banner":true,"smart_style_url":"https://ehr/s.json","tenant":"t1","scope":"patient/*.rs"}`, ClaimNames{}, func(t *testing.T, tok *Token) {
			eq(t, tok.Subject, "u")
			eq(t, tok.ClientID, "c")
			eq(t, tok.Encounter, "e1")
			eq(t, tok.SMARTStyleURL, "https://ehr/s.json")
			eq(t, tok.Tenant, "t1")
			if !tok.NeedPatientBanner || tok.Scopes.Set().Len() != 1 || tok.Issuer != testIssuer || tok.Expiry.Unix() != 1800000600 || tok.IssuedAt.Unix() != 1799999990 {
				t.Fatalf("token = %+v", tok)
			}
		}},
		{"patient_id and nested context", `{` + base + `,"context":{"patient_id":"p9","encounter":"e9"},"patient":"ignored-top-level"}`, ClaimNames{Context: "context", Patient: "patient_id"}, func(t *testing.T, tok *Token) {
			eq(t, tok.Patient, "p9")
			eq(t, tok.Encounter, "e9")
		}},
		{"nested context falls back to top level", `{` + base + `,"context":{},"patient":"p1"}`, ClaimNames{Context: "context"}, func(t *testing.T, tok *Token) { eq(t, tok.Patient, "p1") }},
		{"azp as client id", `{` + base + `,"azp":"app-9"}`, ClaimNames{ClientID: "azp"}, func(t *testing.T, tok *Token) { eq(t, tok.ClientID, "app-9") }},
		{"scp string", `{` + base + `,"scp":"patient/Patient.r"}`, ClaimNames{}, func(t *testing.T, tok *Token) { eq(t, tok.Scopes.Set().String(), "patient/Patient.r") }},
		{"scope wins over scp", `{` + base + `,"scope":"user/Patient.r","scp":["patient/Patient.r"]}`, ClaimNames{}, func(t *testing.T, tok *Token) { eq(t, tok.Scopes.Set().String(), "user/Patient.r") }},
		{"no scope", `{` + base + `}`, ClaimNames{}, func(t *testing.T, tok *Token) {
			if !tok.Scopes.Empty() {
				t.Fatal("scopes granted")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testRules(t)
			r.names = tc.names.withDefaults()
			tok, err := r.buildToken(mustDecode(t, tc.claims), now)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tok)
		})
	}
}

func eq(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestClaimRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := `"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":1800000600`
	cases := []struct {
		name   string
		claims string
		want   error
	}{
		{"T6 fhirContext item without reference", `{` + base + `,"fhirContext":[{"role":""}]}`, errClaims},
		{"fhirContext empty role", `{` + base + `,"fhirContext":[{"reference":"List/1","role":""}]}`, errClaims},
		{"fhirContext absolute reference string", `{` + base + `,"fhirContext":["https://x/List/1"]}`, errClaims},
		{"fhirContext number", `{` + base + `,"fhirContext":[1]}`, errClaims},
		{"fhirContext not an array", `{` + base + `,"fhirContext":"List/1"}`, errClaims},
		{"fhirContext bad type", `{` + base + `,"fhirContext":[{"canonical":"x","type":"lower"}]}`, errClaims},
		{"fhirContext identifier not object", `{` + base + `,"fhirContext":[{"identifier":"x"}]}`, errClaims},
		{"need_patient_banner string", `{` + base + `,"need_patient_banner":"true"}`, errClaims},
		{"tenant number", `{` + base + `,"tenant":1}`, errClaims},
		{"sub number", `{` + base + `,"sub":1}`, errClaims},
		{"client_id array", `{` + base + `,"client_id":["a"]}`, errClaims},
		{"scp with a space", `{` + base + `,"scp":["a b"]}`, errClaims},
		{"scp with a number", `{` + base + `,"scp":[1]}`, errClaims},
		{"context not an object", `{` + base + `,"context":"x"}`, nil},
		{"nbf string", `{` + base + `,"nbf":"1"}`, errClaims},
		{"iat negative", `{` + base + `,"iat":-1}`, errClaims},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testRules(t)
			if tc.name == "context not an object" {
				r.names.Context = "context"
				tc.want = errClaims
			}
			_, err := r.buildToken(mustDecode(t, tc.claims), now)
			if err == nil || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestUnreadableContextDropped: launch-context claims that cannot be read
// exactly leave the token without that context (never coerced), and
// UnreadableContext names them without their values.
func TestUnreadableContextDropped(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := `"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":1800000600`
	cases := []struct{ name, claim, value string }{
		{"patient too long", "patient", `"` + strings.Repeat("1", 65) + `"`},
		{"patient empty", "patient", `""`},
		{"patient with slash", "patient", `"a/b"`},
		{"patient percent", "patient", `"a%2Fb"`},
		{"patient number", "patient", `123`},
		{"encounter of another type", "encounter", `"Patient/1"`},
		{"encounter array", "encounter", `["e1"]`},
		{"fhirUser of another type", "fhirUser", `"Organization/1"`},
		{"fhirUser bad absolute", "fhirUser", `"ftp://x/Patient/1"`},
		{"fhirUser with query", "fhirUser", `"https://x/Patient/1?a=b"`},
		{"fhirUser bare id", "fhirUser", `"123"`},
		{"fhirUser object", "fhirUser", `{"reference":"Patient/1"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := testRules(t).buildToken(mustDecode(t, `{`+base+`,"`+tc.claim+`":`+tc.value+`}`), now)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Patient != "" || tok.Encounter != "" || tok.FHIRUser != "" {
				t.Fatalf("a context survived: %+v", tok)
			}
			u := tok.UnreadableContext()
			if len(u) != 1 || !strings.HasPrefix(u[0], tc.claim+": ") {
				t.Fatalf("UnreadableContext %q", u)
			}
			if len(tc.value) > 4 && strings.Contains(u[0], strings.Trim(tc.value, `"`)) {
				t.Fatalf("UnreadableContext echoes the value: %q", u)
			}
			if tok.badFHIRUser != (tc.claim == "fhirUser") || tok.badEncounter != (tc.claim == "encounter") {
				t.Fatalf("flags %v %v", tok.badFHIRUser, tok.badEncounter)
			}
		})
	}
	tok, err := testRules(t).buildToken(mustDecode(t, `{`+base+`,"patient":"123","fhirUser":"Patient/123","encounter":"e1"}`), now)
	if err != nil || tok.Patient != "123" || tok.FHIRUser != "Patient/123" || tok.Encounter != "e1" || len(tok.UnreadableContext()) != 0 {
		t.Fatalf("readable context: %+v %v", tok, err)
	}
}

func TestDecodeObject(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty object", `{}`, true},
		{"nested", `{"a":{"b":[1,2.5e3,-0.1,true,false,null,"x\n\u00e9"]}}`, true},
		{"white space", " \t\r\n{ \"a\" : 1 } \n", true},
		{"duplicate", `{"a":1,"a":2}`, false},
		{"duplicate escaped", `{"a":1,"\u0061":2}`, false},
		{"duplicate nested", `{"x":{"a":1,"a":2}}`, false},
		{"duplicate among many", `{"a0":0,"a1":1,"a2":2,"a3":3,"a4":4,"a5":5,"a6":6,"a7":7,"a8":8,"a9":9,"b0":0,"b1":1,"b2":2,"b3":3,"b4":4,"b5":5,"b6":6,"b7":7,"a3":3}`, false},
		{"case differs", `{"exp":1,"EXP":2}`, false},
		{"other case only", `{"EXP":2}`, true},
		{"array", `[]`, false},
		{"string", `"x"`, false},
		{"trailing", `{}x`, false},
		{"two objects", `{}{}`, false},
		{"unterminated", `{"a":1`, false},
		{"bad escape", `{"a":"\x"}`, false},
		{"control character", "{\"a\":\"\x01\"}", false},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", false},
		{"leading zero", `{"a":01}`, false},
		{"bare minus", `{"a":-}`, false},
		{"trailing comma", `{"a":1,}`, false},
		{"depth 32", `{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`, true},
		{"depth 33", `{"a":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`, false},
		{"single quotes", `{'a':1}`, false},
		{"NaN", `{"a":NaN}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeObject([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
