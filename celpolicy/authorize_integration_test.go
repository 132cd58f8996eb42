package celpolicy_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/celpolicy"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/smarttest"
)

// TestPoliciesInAuthorize runs celpolicy inside a middleware.Guard: a
// request rule denies before the handler, a resource rule withholds a
// resource the scopes allow, and the decision records the rule.
func TestPoliciesInAuthorize(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pol, err := celpolicy.New(celpolicy.Config{Logger: quiet, Rules: []celpolicy.Rule{
		{Name: "no-deletes", Effect: celpolicy.Deny, When: "request.interaction == 'delete'", Message: "Deletes are disabled."},
		{Name: "restricted", Effect: celpolicy.Deny, On: celpolicy.OnResource,
			When: "resource.?meta.security.orValue([]).exists(s, s.?code.orValue('') == 'R')", Message: "Restricted."},
	}})
	if err != nil {
		t.Fatal(err)
	}
	as, err := smarttest.New(smarttest.Config{FHIRBase: "https://ehr.example.org/fhir", Issuer: "https://as.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{
			BaseURL: "https://ehr.example.org/fhir", Policies: []middleware.Policy{pol}, Logger: quiet,
			OnDecision: func(r *http.Request, d *middleware.Decision, refusal error) {
				if d != nil && d.Rule != "" {
					rules = append(rules, d.Rule)
				}
			},
		},
		Auth: middleware.AuthConfig{Issuers: []string{as.SMARTConfiguration().Issuer}, JWKS: as.JWKS(), Logger: quiet},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	called := 0
	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called++
		w.Header().Set("Content-Type", "application/fhir+json")
		switch r.URL.Path {
		case "/fhir/Observation/secret":
			io.WriteString(w, `{"resourceType":"Observation","id":"secret","meta":{"security":[{"code":"R"}]},"subject":{"reference":"Patient/123"}}`)
		case "/fhir/Observation":
			io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","total":2,"entry":[`+
				`{"resource":{"resourceType":"Observation","id":"secret","meta":{"security":[{"code":"R"}]},"subject":{"reference":"Patient/123"}},"search":{"mode":"match"}},`+
				`{"resource":{"resourceType":"Observation","id":"plain","subject":{"reference":"Patient/123"}},"search":{"mode":"match"}}]}`)
		default:
			io.WriteString(w, `{"resourceType":"Observation","id":"plain","subject":{"reference":"Patient/123"}}`)
		}
	})
	h := g.Handler(fhir)
	do := func(scopes, patient, method, path string) *httptest.ResponseRecorder {
		tok, err := as.MintToken(smarttest.TokenOptions{Scopes: scopes, Patient: patient})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(method, "https://ehr.example.org"+path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	if rec := do("system/*.cruds", "", "DELETE", "/fhir/Observation/plain"); rec.Code != 403 || !strings.Contains(rec.Body.String(), "Deletes are disabled.") || called != 0 {
		t.Fatalf("delete: %d %s (handler calls %d)", rec.Code, rec.Body, called)
	}
	if rec := do("system/*.cruds", "", "GET", "/fhir/Observation/plain"); rec.Code != 200 {
		t.Fatalf("plain read: %d", rec.Code)
	}
	// The resource rule runs even for an unrestricted system token.
	if rec := do("system/*.cruds", "", "GET", "/fhir/Observation/secret"); rec.Code != 404 {
		t.Fatalf("restricted read: %d %s", rec.Code, rec.Body)
	}
	rec := do("patient/Observation.rs", "123", "GET", "/fhir/Observation")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "secret") || !strings.Contains(rec.Body.String(), "plain") {
		t.Fatalf("search: %d %s", rec.Code, rec.Body)
	}
	if len(rules) == 0 || rules[0] != "no-deletes" {
		t.Fatalf("decision rules %v", rules)
	}
}
