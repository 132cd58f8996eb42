package discovery

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParseOpenIDConfiguration: the reader never panics, accepts only a
// JSON object with an absolute issuer, and what it accepts survives a
// round trip through encoding/json unchanged.
func FuzzParseOpenIDConfiguration(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"https://as.example.org","authorization_endpoint":"https://as.example.org/a","token_endpoint":"https://as.example.org/t","jwks_uri":"https://as.example.org/k","scopes_supported":["openid","patient/*.rs"],"code_challenge_methods_supported":["S256","plain"],"grant_types_supported":["authorization_code"]}`,
		`{"issuer":"https://as"}`,
		`{"issuer":"/as"}`,
		`{"issuer":1}`,
		`{"issuer":"https://as","scopes_supported":"openid"}`,
		`{"issuer":"https://as","token_endpoint":null}`,
		`{"issuer":"https://as"}{}`,
		`[]`, `null`, ``, `{`, `{"issuer":"https://as","x":{"y":[1,2,{"z":null}]}}`,
		"{\"issuer\":\"https://as\\u0000\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		oc, err := parseOpenIDConfiguration(data)
		if err != nil {
			if oc != nil || !is(err, errOpenIDConfiguration) {
				t.Fatalf("error %v with result %v", err, oc)
			}
			return
		}
		if oc.Issuer == "" || !json.Valid(data) {
			t.Fatalf("accepted %q", data)
		}
		b, err := json.Marshal(oc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseOpenIDConfiguration(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if !reflect.DeepEqual(oc, again) {
			t.Fatalf("round trip changed %+v into %+v", oc, again)
		}
		// Importing it never panics and never advertises plain.
		d := fromOpenIDConfiguration(oc, &Document{Capabilities: []string{"sso-openid-connect"}})
		for _, m := range d.CodeChallengeMethodsSupported {
			if strings.EqualFold(m, "plain") {
				t.Fatal("plain imported")
			}
		}
	})
}

// FuzzValidate: for any JSON document, validation never panics; a document
// without errors gives a handler whose body reads back into a document
// without errors, that never lists plain, never a passthrough name, and
// whose endpoints are absolute.
func FuzzValidate(f *testing.F) {
	seed := func(d *Document) {
		b, _ := json.Marshal(d)
		f.Add(b)
	}
	seed(validDocument())
	seed(goldenDocument())
	for _, edit := range []func(d *Document){
		func(d *Document) { d.Issuer = "" },                                                                // W1
		func(d *Document) { d.Capabilities = remove(d.Capabilities, "sso-openid-connect") },                // W2
		func(d *Document) { d.CodeChallengeMethodsSupported = []string{"S256", "plain"} },                  // W3
		func(d *Document) { d.Capabilities = []string{"launch-standalone"}; d.AuthorizationEndpoint = "" }, // W4
		func(d *Document) { d.TokenEndpointAuthMethodsSupported = nil },                                    // W5
		func(d *Document) { d.TokenEndpoint = "/auth/token" },                                              // W6
		func(d *Document) { d.Capabilities = append(d.Capabilities, "context-passthrough-banner") },        // W7
		func(d *Document) { d.Capabilities = append(d.Capabilities, "my-feature") },                        // W8
	} {
		d := validDocument()
		edit(d)
		seed(d)
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "smart-configuration.golden.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"capabilities":"x"}`))
	f.Add([]byte(`{"token_endpoint":"https://a/t","extra":{"a":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Document
		if err := json.Unmarshal(data, &d); err != nil {
			return
		}
		ps := d.Validate()
		for _, p := range ps {
			if p.Severity != SeverityError && p.Severity != SeverityWarning || p.err == nil || p.Field == "" {
				t.Fatalf("malformed problem %+v", p)
			}
		}
		h, err := NewHandler(&d, HandlerConfig{})
		if (err == nil) != (ps.Err() == nil) {
			t.Fatalf("NewHandler %v but Validate %v", err, ps.Err())
		}
		if err != nil {
			return
		}
		var back Document
		if err := json.Unmarshal(h.body(), &back); err != nil {
			t.Fatalf("served body does not parse: %v", err)
		}
		if errs := back.Validate().Errors(); len(errs) != 0 {
			t.Fatalf("served body has errors: %v", errs)
		}
		for _, m := range back.CodeChallengeMethodsSupported {
			if strings.EqualFold(m, "plain") {
				t.Fatal("plain served")
			}
		}
		for _, c := range back.Capabilities {
			if capabilityAliases[c] != "" {
				t.Fatalf("passthrough name %q served", c)
			}
		}
		for _, u := range []string{back.TokenEndpoint, back.AuthorizationEndpoint} {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				t.Fatalf("endpoint %q served", u)
			}
		}
	})
}

// FuzzNoneMatch: the If-None-Match parser never panics, always matches the
// tag alone, quoted lists containing it, and "*".
func FuzzNoneMatch(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"abc"`, `*`, `"x", "abc"`, `W/`, `"`, `,,`, `"a" garbage "abc"`} {
		f.Add(s)
	}
	const etag = `"abc"`
	f.Fuzz(func(t *testing.T, s string) {
		_ = noneMatch([]string{s}, etag)
		if !noneMatch([]string{s, etag}, etag) {
			t.Fatal("tag on its own line not matched")
		}
		if !strings.Contains(s, `"`) && !strings.Contains(s, "*") && noneMatch([]string{s}, etag) {
			t.Fatalf("%q matched without a quoted tag or *", s)
		}
	})
}

// FuzzPatchCapabilityStatement: patching never panics; when it succeeds the
// output is JSON whose server rest entries carry the document's endpoints,
// and patching again changes nothing.
func FuzzPatchCapabilityStatement(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "capabilitystatement.json")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"resourceType":"CapabilityStatement"}`,
		`{"resourceType":"CapabilityStatement","rest":[{"mode":"client"},{}]}`,
		`{"resourceType":"CapabilityStatement","rest":[{"security":{"service":[{"coding":[{"system":"http://hl7.org/fhir/restful-security-service","code":"SMART-on-FHIR"}]}]}}]}`,
		`{"resourceType":"Patient"}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	doc := validDocument()
	sec := doc.restSecurity()
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := PatchCapabilityStatement(data, doc, false)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output not JSON: %s", out)
		}
		var cs struct {
			Rest []struct {
				Mode     string        `json:"mode"`
				Security *restSecurity `json:"security"`
			} `json:"rest"`
		}
		if err := json.Unmarshal(out, &cs); err != nil {
			return // odd member types elsewhere in rest entries
		}
		patched := 0
		for _, r := range cs.Rest {
			if r.Mode == "" || r.Mode == "server" {
				patched++
				if r.Security == nil || r.Security.oauthURI("token") != sec.oauthURI("token") {
					t.Fatalf("server rest not patched: %s", out)
				}
			}
		}
		if patched == 0 {
			t.Fatalf("no server rest: %s", out)
		}
		again, err := PatchCapabilityStatement(out, doc, false)
		if err != nil || string(again) != string(out) {
			t.Fatalf("second patch: %v\n%s\n%s", err, out, again)
		}
	})
}

// FuzzDerive: deriving a SMART configuration from any metadata (and any
// configured capabilities) never panics; what it serves has no errors,
// advertises only capabilities whose requirements the metadata meets, lists
// only the response type code, serves "none" with client-public, and strict
// mode accepts only what non-strict mode serves unchanged, with no finding.
func FuzzDerive(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "oidc-provider-defaults.json")); err == nil {
		f.Add(b, "")
		f.Add(b, strings.Join(demoCapabilities, ","))
		f.Add(b, "launch-ehr,context-passthrough-banner,client-public,sso-openid-connect,permission-offline,https://x.example/c,my-cap")
	}
	for _, s := range []string{
		`{"issuer":"https://as","authorization_endpoint":"https://as/a","token_endpoint":"https://as/t","code_challenge_methods_supported":["S256"]}`,
		`{"issuer":"https://as","token_endpoint":"https://as/t","authorization_endpoint":"https://as/a","code_challenge_methods_supported":["S256"],"scopes_supported":["launch","launch/patient","patient/Observation.rs?code=http://loinc.org|1","user/*.read","system/*.*","openid","fhirUser","online_access"],"grant_types_supported":["authorization_code","refresh_token","client_credentials"],"token_endpoint_auth_methods_supported":["none","private_key_jwt"],"token_endpoint_auth_signing_alg_values_supported":["ES384","none"],"jwks_uri":"https://as/k"}`,
		`{"issuer":"https://as","token_endpoint":"https://as/t","response_types_supported":[],"grant_types_supported":[]}`,
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "launch-standalone,client-confidential-asymmetric,permission-v1")
	}
	f.Fuzz(func(t *testing.T, data []byte, capList string) {
		oc, err := parseOpenIDConfiguration(data)
		if err != nil {
			return
		}
		var local *Document
		if capList != "" {
			local = &Document{Capabilities: strings.Split(capList, ",")}
		}
		d, warnings, err := Derive(oc, DeriveConfig{Local: local})
		strictDoc, _, strictErr := Derive(oc, DeriveConfig{Local: local, Strict: true})
		if err != nil {
			if d != nil || warnings != nil || strictErr == nil {
				t.Fatalf("failed with a result, or strict mode accepted: %v / %v", err, strictErr)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems.Errors()) == 0 {
				t.Fatalf("err %v", err)
			}
			return
		}
		if ps := d.Validate(); ps.Err() != nil {
			t.Fatalf("derived document has errors: %v", ps.Err())
		}
		if len(warnings.Errors()) != 0 {
			t.Fatalf("errors among warnings: %v", warnings)
		}
		if _, err := NewHandler(d, HandlerConfig{}); err != nil {
			t.Fatal(err)
		}
		if local != nil && !slices.Equal(d.Capabilities, local.Capabilities) {
			for _, c := range d.Capabilities {
				if !slices.Contains(local.Capabilities, c) {
					t.Fatalf("capability %q invented", c)
				}
			}
		}
		for _, r := range d.ResponseTypesSupported {
			if r != responseTypeCode {
				t.Fatalf("response type %q served", r)
			}
		}
		if d.advertises(capabilityClientConfidentialAsymmetric) && !slices.Contains(d.TokenEndpointAuthSigningAlgValuesSupported, "RS384") &&
			!slices.Contains(d.TokenEndpointAuthSigningAlgValuesSupported, "ES384") {
			t.Fatal("asymmetric clients without RS384 or ES384")
		}
		n := d.normalize()
		if n.advertises(capabilityClientPublic) && len(n.TokenEndpointAuthMethodsSupported) > 0 && !slices.Contains(n.TokenEndpointAuthMethodsSupported, authNone) {
			t.Fatal("client-public served without none")
		}
		if (d.advertises(capabilityLaunchEHR) || d.advertises(capabilityLaunchStandalone)) &&
			(!slices.Contains(d.CodeChallengeMethodsSupported, codeChallengeS256) || !slices.Contains(d.GrantTypesSupported, grantAuthorizationCode)) {
			t.Fatal("launch without PKCE S256 or authorization_code")
		}
		for _, s := range d.ScopesSupported {
			if _, ok, known := scopeNeeds(d, s); local == nil && (!ok || !known) {
				t.Fatalf("scope %q served without its capability", s)
			}
		}
		if strictErr == nil {
			if len(findingsOf(warnings)) != 0 {
				t.Fatalf("strict accepted findings %v", findingsOf(warnings))
			}
			a, _ := json.Marshal(d)
			b, _ := json.Marshal(strictDoc)
			if string(a) != string(b) {
				t.Fatalf("strict and lenient documents differ:\n%s\n%s", a, b)
			}
		} else if len(findingsOf(warnings)) == 0 {
			t.Fatalf("strict refused without a finding: %v", strictErr)
		}
	})
}
