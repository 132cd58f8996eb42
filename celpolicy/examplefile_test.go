package celpolicy

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

const exampleFile = "../examples/policies/example.yaml"

// TestExampleFile loads the example policy file the examples use and checks
// each of its rules both ways.
func TestExampleFile(t *testing.T) {
	berlinMorning := time.Date(2026, 3, 12, 9, 0, 0, 0, time.UTC) // 10:00 in Berlin
	berlinNight := time.Date(2026, 3, 12, 19, 0, 0, 0, time.UTC)  // 20:00 in Berlin
	cases := []struct {
		name     string
		now      time.Time
		mod      func(tok *middleware.Token, d *middleware.Decision)
		tenant   string
		wantRule string
	}{
		{name: "search with patient", tenant: "acme"},
		{name: "wrong tenant", tenant: "other", wantRule: "tenant-isolation"},
		{name: "missing tenant header", tenant: "", wantRule: "tenant-isolation"},
		{name: "token without tenant", tenant: "", mod: func(tok *middleware.Token, d *middleware.Decision) { tok.Tenant = "" }},
		{name: "delete in hours", tenant: "acme", now: berlinMorning, mod: func(tok *middleware.Token, d *middleware.Decision) {
			d.Interaction = fhirrest.Interaction{Kind: fhirrest.Delete, Method: "DELETE", ResourceType: "Observation", ID: "o1"}
			d.Context = scope.Patient
		}},
		{name: "delete at night", tenant: "acme", now: berlinNight, wantRule: "deletes-in-office-hours", mod: func(tok *middleware.Token, d *middleware.Decision) {
			d.Interaction = fhirrest.Interaction{Kind: fhirrest.Delete, Method: "DELETE", ResourceType: "Observation", ID: "o1"}
		}},
		{name: "practitioner writes", tenant: "acme", mod: func(tok *middleware.Token, d *middleware.Decision) {
			d.Interaction = fhirrest.Interaction{Kind: fhirrest.Create, Method: "POST", ResourceType: "Observation"}
			d.Context = scope.User
		}},
		{name: "related person writes", tenant: "acme", wantRule: "writes-by-practitioners", mod: func(tok *middleware.Token, d *middleware.Decision) {
			d.Interaction = fhirrest.Interaction{Kind: fhirrest.Create, Method: "POST", ResourceType: "Observation"}
			d.Context = scope.User
			tok.FHIRUser = "RelatedPerson/5"
		}},
		{name: "unbounded observation search", tenant: "acme", wantRule: "observation-search-names-patient", mod: func(tok *middleware.Token, d *middleware.Decision) {
			d.CompartmentType, d.CompartmentID = "", ""
			d.Context = scope.User
			d.Interaction.Query = url.Values{"code": {"x"}}
		}},
		{name: "observation search by subject", tenant: "acme", mod: func(tok *middleware.Token, d *middleware.Decision) {
			d.CompartmentType, d.CompartmentID = "", ""
			d.Interaction.Query = url.Values{"subject": {"Patient/1"}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = berlinMorning
			}
			p := newTestPolicy(t, Config{File: exampleFile, Now: func() time.Time { return now }})
			r, tok, d := testRequest(), testToken(), testDecision()
			r.Header.Del("X-Tenant")
			if tc.tenant != "" {
				r.Header.Set("X-Tenant", tc.tenant)
			}
			if tc.mod != nil {
				tc.mod(tok, d)
			}
			err := p.AuthorizeRequest(r, tok, d)
			if tc.wantRule == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			var pd *middleware.PolicyDenial
			if !errors.As(err, &pd) || pd.Rule != tc.wantRule {
				t.Fatalf("got %v, want denial by %s", err, tc.wantRule)
			}
		})
	}
	t.Run("restricted resource", func(t *testing.T) {
		p := newTestPolicy(t, Config{File: exampleFile})
		res := map[string]any{"resourceType": "Observation", "meta": map[string]any{"security": []any{map[string]any{"code": "R"}}}}
		tok := testToken()
		if err := p.AuthorizeResource(testRequest(), tok, testDecision(), middleware.ResourceRead, res); err != nil {
			t.Fatalf("break-glass token denied: %v", err)
		}
		delete(tok.Claims, "break_glass")
		var pd *middleware.PolicyDenial
		if err := p.AuthorizeResource(testRequest(), tok, testDecision(), middleware.ResourceRead, res); !errors.As(err, &pd) || pd.Rule != "restricted-needs-break-glass" {
			t.Fatalf("got %v, want restricted-needs-break-glass", err)
		}
	})
}
