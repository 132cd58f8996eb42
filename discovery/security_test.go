package discovery

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSecurityFromDocument(t *testing.T) {
	d := validDocument()
	sec := d.restSecurity()
	for sub, want := range map[string]string{
		"authorize": d.AuthorizationEndpoint, "token": d.TokenEndpoint, "register": d.RegistrationEndpoint,
		"manage": d.ManagementEndpoint, "introspect": d.IntrospectionEndpoint, "revoke": d.RevocationEndpoint,
		"userinfo": "",
	} {
		if got := sec.oauthURI(sub); got != want {
			t.Errorf("%s = %q, want %q", sub, got, want)
		}
	}
	if sec.CORS || len(sec.Service) != 1 || !isSMARTService(sec.Service[0]) {
		t.Fatalf("security %+v", sec)
	}

	// Endpoints not set are left out.
	d.RegistrationEndpoint, d.ManagementEndpoint = "", ""
	b, _ := json.Marshal(d.restSecurity())
	for _, absent := range []string{`"register"`, `"manage"`} {
		if strings.Contains(string(b), absent) {
			t.Errorf("%s present: %s", absent, b)
		}
	}
}

func TestPatchCapabilityStatement(t *testing.T) {
	doc := validDocument()
	sec := doc.restSecurity()
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, out map[string]any, raw string)
		wantErr error
	}{
		{"adds a server rest when none", `{"resourceType":"CapabilityStatement","status":"active"}`, func(t *testing.T, out map[string]any, raw string) {
			rest := out["rest"].([]any)
			if len(rest) != 1 || rest[0].(map[string]any)["mode"] != "server" {
				t.Fatalf("rest %v", rest)
			}
			if out["status"] != "active" {
				t.Fatal("status lost")
			}
		}, nil},
		{"adds a server rest next to a client one", `{"resourceType":"CapabilityStatement","rest":[{"mode":"client"}]}`, func(t *testing.T, out map[string]any, raw string) {
			rest := out["rest"].([]any)
			if len(rest) != 2 || rest[0].(map[string]any)["security"] != nil {
				t.Fatalf("rest %v", rest)
			}
		}, nil},
		{"rest without mode is patched", `{"resourceType":"CapabilityStatement","rest":[{}]}`, func(t *testing.T, out map[string]any, raw string) {
			if out["rest"].([]any)[0].(map[string]any)["security"] == nil {
				t.Fatal("not patched")
			}
		}, nil},
		{"every server rest", `{"resourceType":"CapabilityStatement","rest":[{"mode":"server"},{"mode":"server"}]}`, func(t *testing.T, out map[string]any, raw string) {
			for i, r := range out["rest"].([]any) {
				if r.(map[string]any)["security"] == nil {
					t.Fatalf("rest[%d] not patched", i)
				}
			}
		}, nil},
		{"stale SMART replaced, others kept, order kept", `{"resourceType":"CapabilityStatement","id":"x","rest":[{"mode":"server","security":{"description":"d","service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR"}]},{"text":"other"}],"extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris","extension":[{"url":"token","valueUri":"https://old/token"}]},{"url":"u","valueBoolean":true}]},"resource":[]}],"z":1e400}`,
			func(t *testing.T, out map[string]any, raw string) {
				if strings.Contains(raw, "https://old/token") {
					t.Fatal("stale token URL kept")
				}
				if strings.Count(raw, "SMART-on-FHIR") != 2 { // code and display of one coding
					t.Fatalf("SMART coding count: %s", raw)
				}
				for _, keep := range []string{`"text":"other"`, `"url":"u"`, `"description":"d"`, `"z":1e400`, `"resource":[]`} {
					if !strings.Contains(raw, keep) {
						t.Fatalf("%s lost: %s", keep, raw)
					}
				}
				if !strings.HasPrefix(raw, `{"resourceType":"CapabilityStatement","id":"x","rest":`) {
					t.Fatalf("member order changed: %s", raw)
				}
			}, nil},
		{"not JSON", `{`, nil, errNotCapabilityStatement},
		{"array", `[]`, nil, errNotCapabilityStatement},
		{"other resource", `{"resourceType":"Patient"}`, nil, errNotCapabilityStatement},
		{"no resourceType", `{"rest":[]}`, nil, errNotCapabilityStatement},
		{"rest not an array", `{"resourceType":"CapabilityStatement","rest":{}}`, nil, errNotCapabilityStatement},
		{"rest entry not an object", `{"resourceType":"CapabilityStatement","rest":[1]}`, nil, errNotCapabilityStatement},
		{"security not an object", `{"resourceType":"CapabilityStatement","rest":[{"security":[]}]}`, nil, errNotCapabilityStatement},
		{"service not an array", `{"resourceType":"CapabilityStatement","rest":[{"security":{"service":{}}}]}`, nil, errNotCapabilityStatement},
		{"extension not an array", `{"resourceType":"CapabilityStatement","rest":[{"security":{"extension":1}}]}`, nil, errNotCapabilityStatement},
		{"duplicate member", `{"resourceType":"CapabilityStatement","rest":[{"mode":"client","mode":"server"}]}`, nil, errNotCapabilityStatement},
		{"duplicate top-level member", `{"resourceType":"CapabilityStatement","resourceType":"Patient"}`, nil, errNotCapabilityStatement},
		{"trailing data", `{"resourceType":"CapabilityStatement"} {}`, nil, errNotCapabilityStatement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := PatchCapabilityStatement([]byte(tt.in), doc, false)
			if tt.wantErr != nil {
				if !is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("output not JSON: %v: %s", err, out)
			}
			// Every server rest agrees with the document.
			var cs struct {
				Rest []struct {
					Mode     string        `json:"mode"`
					Security *restSecurity `json:"security"`
				} `json:"rest"`
			}
			_ = json.Unmarshal(out, &cs)
			for _, r := range cs.Rest {
				if r.Mode == "client" {
					continue
				}
				if r.Security == nil || r.Security.oauthURI("token") != sec.oauthURI("token") || r.Security.CORS != sec.CORS {
					t.Fatalf("rest security %+v", r.Security)
				}
			}
			tt.check(t, m, string(out))
		})
	}
	if _, err := PatchCapabilityStatement([]byte(`{"resourceType":"CapabilityStatement"}`), nil, false); err == nil {
		t.Fatal("nil document accepted")
	}
}

// TestPatchIdempotent: patching twice gives the same statement.
func TestPatchIdempotent(t *testing.T) {
	doc := goldenDocument()
	in := `{"resourceType":"CapabilityStatement","rest":[{"mode":"server","security":{"service":[{"text":"x"}]}}]}`
	once, err := PatchCapabilityStatement([]byte(in), doc, true)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := PatchCapabilityStatement(once, doc, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(once) != string(twice) {
		t.Fatalf("not idempotent:\n%s\n%s", once, twice)
	}
}

// TestPatchCORS: security.cors says what the cors argument says, whatever the
// statement claimed before; a server whose API answers no cross-origin
// request must not claim CORS (the discovery documents always allow any
// origin, but they are not the API).
func TestPatchCORS(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		cors bool
	}{
		{"claimed, not configured", `{"resourceType":"CapabilityStatement","rest":[{"mode":"server","security":{"cors":true}}]}`, false},
		{"not claimed, configured", `{"resourceType":"CapabilityStatement","rest":[{"mode":"server","security":{"cors":false}}]}`, true},
		{"no rest, configured", `{"resourceType":"CapabilityStatement"}`, true},
		{"no rest, not configured", `{"resourceType":"CapabilityStatement"}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := validDocument()
			out, err := PatchCapabilityStatement([]byte(tt.in), doc, tt.cors)
			if err != nil {
				t.Fatal(err)
			}
			var cs struct {
				Rest []struct {
					Security map[string]any `json:"security"`
				} `json:"rest"`
			}
			if err := json.Unmarshal(out, &cs); err != nil || len(cs.Rest) != 1 {
				t.Fatalf("%v: %s", err, out)
			}
			if got, ok := cs.Rest[0].Security["cors"].(bool); !ok || got != tt.cors {
				t.Fatalf("cors = %v, want %v: %s", cs.Rest[0].Security["cors"], tt.cors, out)
			}
			again, err := PatchCapabilityStatement(out, doc, tt.cors)
			if err != nil || string(again) != string(out) {
				t.Fatalf("not idempotent: %v\n%s\n%s", err, out, again)
			}
		})
	}
}
