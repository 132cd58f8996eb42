package discovery

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidDocumentHasNoProblems(t *testing.T) {
	if ps := validDocument().Validate(); len(ps) != 0 {
		t.Fatalf("problems in the reference document: %v", ps)
	}
}

// TestVectorsW1toW8 covers the discovery vectors W1–W8 of the spec notes
// (§9.3), each with variants, and with the legitimate counterpart that
// must stay clean. W9 (location under a base with a path) is in
// wellknown_test.go.
func TestVectorsW1toW8(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(d *Document)
		severity Severity
		field    string
		err      error
	}{
		// W1: sso-openid-connect without issuer (or jwks_uri).
		{"W1 sso without issuer", func(d *Document) { d.Issuer = "" }, SeverityError, "issuer", errMissing},
		{"W1 sso without jwks_uri", func(d *Document) { d.JWKSURI = "" }, SeverityError, "jwks_uri", errMissing},
		// W2: issuer without sso-openid-connect.
		{"W2 issuer without sso", func(d *Document) { d.Capabilities = remove(d.Capabilities, "sso-openid-connect") }, SeverityWarning, "issuer", errUnexpected},
		// W3: plain PKCE.
		{"W3 S256 and plain", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"S256", "plain"} }, SeverityError, "code_challenge_methods_supported[1]", errForbiddenValue},
		{"W3 plain first", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"plain", "S256"} }, SeverityError, "code_challenge_methods_supported[0]", errForbiddenValue},
		{"W3 plain other case", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"S256", "PLAIN"} }, SeverityError, "code_challenge_methods_supported[1]", errForbiddenValue},
		{"W3 plain only", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"plain"} }, SeverityError, "code_challenge_methods_supported", errMissingValue},
		{"W3 S256 missing", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"S512"} }, SeverityError, "code_challenge_methods_supported", errMissingValue},
		{"W3 s256 lower case is not S256", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"s256"} }, SeverityError, "code_challenge_methods_supported", errMissingValue},
		{"W3 no PKCE list", func(d *Document) { d.CodeChallengeMethodsSupported = nil }, SeverityError, "code_challenge_methods_supported", errMissing},
		// W4: launch capability without authorization_endpoint.
		{"W4 standalone without authorize", func(d *Document) {
			d.Capabilities = []string{"launch-standalone"}
			d.Issuer = ""
			d.AuthorizationEndpoint = ""
		}, SeverityError, "authorization_endpoint", errMissing},
		{"W4 ehr without authorize", func(d *Document) { d.AuthorizationEndpoint = "" }, SeverityError, "authorization_endpoint", errMissing},
		{"W4 Inferno requires it without launch", func(d *Document) {
			d.Capabilities = []string{"client-confidential-asymmetric", "permission-v2"}
			d.Issuer = ""
			d.AuthorizationEndpoint = ""
		}, SeverityError, "authorization_endpoint", errMissing},
		// W5: asymmetric client auth.
		{"W5 asymmetric without private_key_jwt", func(d *Document) { d.TokenEndpointAuthMethodsSupported = []string{"client_secret_basic"} }, SeverityError, "token_endpoint_auth_methods_supported", errMissingValue},
		{"W5 asymmetric without methods", func(d *Document) { d.TokenEndpointAuthMethodsSupported = nil }, SeverityError, "token_endpoint_auth_methods_supported", errMissingValue},
		{"W5 asymmetric without RS384/ES384", func(d *Document) { d.TokenEndpointAuthSigningAlgValuesSupported = []string{"RS256"} }, SeverityError, "token_endpoint_auth_signing_alg_values_supported", errMissingValue},
		{"W5 asymmetric without algs", func(d *Document) { d.TokenEndpointAuthSigningAlgValuesSupported = nil }, SeverityError, "token_endpoint_auth_signing_alg_values_supported", errMissingValue},
		{"W5 alg none", func(d *Document) { d.TokenEndpointAuthSigningAlgValuesSupported = []string{"RS384", "none"} }, SeverityError, "token_endpoint_auth_signing_alg_values_supported[1]", errForbiddenValue},
		// W6: relative and malformed endpoint URLs.
		{"W6 relative token endpoint", func(d *Document) { d.TokenEndpoint = "/auth/token" }, SeverityError, "token_endpoint", errRelativeURL},
		{"W6 relative without slash", func(d *Document) { d.AuthorizationEndpoint = "auth/authorize" }, SeverityError, "authorization_endpoint", errRelativeURL},
		{"W6 scheme-relative", func(d *Document) { d.IntrospectionEndpoint = "//auth.example.org/introspect" }, SeverityError, "introspection_endpoint", errRelativeURL},
		{"W6 relative jwks", func(d *Document) { d.JWKSURI = "jwks.json" }, SeverityError, "jwks_uri", errRelativeURL},
		{"W6 relative issuer", func(d *Document) { d.Issuer = "/" }, SeverityError, "issuer", errRelativeURL},
		{"W6 relative registration", func(d *Document) { d.RegistrationEndpoint = "../register" }, SeverityError, "registration_endpoint", errRelativeURL},
		{"W6 relative management", func(d *Document) { d.ManagementEndpoint = "manage" }, SeverityError, "management_endpoint", errRelativeURL},
		{"W6 relative revocation", func(d *Document) { d.RevocationEndpoint = "?revoke" }, SeverityError, "revocation_endpoint", errRelativeURL},
		{"W6 relative brand bundle", func(d *Document) { d.UserAccessBrandBundle = "brands.json" }, SeverityError, "user_access_brand_bundle", errRelativeURL},
		{"W6 relative associated endpoint", func(d *Document) {
			d.AssociatedEndpoints = []AssociatedEndpoint{{URL: "/state", Capabilities: []string{"smart-app-state"}}}
		}, SeverityError, "associated_endpoints[0].url", errRelativeURL},
		{"W6 scheme without host", func(d *Document) { d.TokenEndpoint = "https:/auth/token" }, SeverityError, "token_endpoint", errRelativeURL},
		{"W6 javascript scheme", func(d *Document) { d.TokenEndpoint = "javascript://x/%0aalert(1)" }, SeverityError, "token_endpoint", errInvalidURL},
		{"W6 ftp scheme", func(d *Document) { d.TokenEndpoint = "ftp://auth.example.org/token" }, SeverityError, "token_endpoint", errInvalidURL},
		{"W6 fragment", func(d *Document) { d.TokenEndpoint = "https://auth.example.org/token#x" }, SeverityError, "token_endpoint", errInvalidURL},
		{"W6 userinfo", func(d *Document) { d.TokenEndpoint = "https://user:pw@auth.example.org/token" }, SeverityError, "token_endpoint", errInvalidURL},
		{"W6 bad escape", func(d *Document) { d.TokenEndpoint = "https://auth.example.org/%zz" }, SeverityError, "token_endpoint", errInvalidURL},
		{"W6 space in host", func(d *Document) { d.TokenEndpoint = "https://auth example.org/token" }, SeverityError, "token_endpoint", errInvalidURL},
		{"http endpoint warns", func(d *Document) { d.TokenEndpoint = "http://localhost:8080/token" }, SeverityWarning, "token_endpoint", errInsecureURL},
		{"issuer with query", func(d *Document) { d.Issuer = "https://auth.example.org?tenant=1" }, SeverityError, "issuer", errInvalidURL},
		// W7: passthrough capability names.
		{"W7 passthrough banner", func(d *Document) { d.Capabilities = append(d.Capabilities, "context-passthrough-banner") }, SeverityWarning, "capabilities[14]", errCapabilityAlias},
		{"W7 passthrough style", func(d *Document) { d.Capabilities = append(d.Capabilities, "context-passthrough-style") }, SeverityWarning, "capabilities[14]", errCapabilityAlias},
		// W8: unknown simple capability names.
		{"W8 my-feature", func(d *Document) { d.Capabilities = append(d.Capabilities, "my-feature") }, SeverityWarning, "capabilities[14]", errUnknownCapability},
		{"W8 typo of a SMART capability", func(d *Document) { d.Capabilities = append(d.Capabilities, "launch_ehr") }, SeverityWarning, "capabilities[14]", errUnknownCapability},
		{"W8 case differs", func(d *Document) { d.Capabilities = append(d.Capabilities, "Launch-EHR") }, SeverityWarning, "capabilities[14]", errUnknownCapability},
		{"W8 in associated endpoint", func(d *Document) {
			d.AssociatedEndpoints = []AssociatedEndpoint{{URL: "https://state.example.org", Capabilities: []string{"app-state"}}}
		}, SeverityWarning, "associated_endpoints[0].capabilities[0]", errUnknownCapability},
		// Required members.
		{"no token endpoint", func(d *Document) { d.TokenEndpoint = "" }, SeverityError, "token_endpoint", errMissing},
		{"no capabilities", func(d *Document) { d.Capabilities = nil }, SeverityError, "capabilities", errMissing},
		{"no grant types", func(d *Document) { d.GrantTypesSupported = nil }, SeverityError, "grant_types_supported", errMissing},
		{"launch without authorization_code", func(d *Document) { d.GrantTypesSupported = []string{"client_credentials"} }, SeverityError, "grant_types_supported", errMissingValue},
		{"backend only without authorization_code", func(d *Document) {
			d.Capabilities = []string{"client-confidential-asymmetric", "permission-v2"}
			d.Issuer = ""
			d.GrantTypesSupported = []string{"client_credentials"}
		}, SeverityWarning, "grant_types_supported", errMissingValue},
		{"unknown grant type", func(d *Document) { d.GrantTypesSupported = append(d.GrantTypesSupported, "implicit") }, SeverityWarning, "grant_types_supported[2]", errUnknownValue},
		// Recommended members.
		{"no scopes", func(d *Document) { d.ScopesSupported = nil }, SeverityWarning, "scopes_supported", errMissing},
		{"no response types", func(d *Document) { d.ResponseTypesSupported = nil }, SeverityWarning, "response_types_supported", errMissing},
		{"no introspection", func(d *Document) { d.IntrospectionEndpoint = "" }, SeverityWarning, "introspection_endpoint", errMissing},
		{"no revocation", func(d *Document) { d.RevocationEndpoint = "" }, SeverityWarning, "revocation_endpoint", errMissing},
		{"no management", func(d *Document) { d.ManagementEndpoint = "" }, SeverityWarning, "management_endpoint", errMissing},
		{"launch without code response type", func(d *Document) { d.ResponseTypesSupported = []string{"token"} }, SeverityWarning, "response_types_supported", errMissingValue},
		// Values.
		{"empty capability", func(d *Document) { d.Capabilities = append(d.Capabilities, "") }, SeverityError, "capabilities[14]", errInvalidValue},
		{"capability with spaces", func(d *Document) { d.Capabilities = append(d.Capabilities, " launch-ehr") }, SeverityError, "capabilities[14]", errInvalidValue},
		{"duplicate capability", func(d *Document) { d.Capabilities = append(d.Capabilities, "launch-ehr") }, SeverityWarning, "capabilities[14]", errDuplicate},
		{"scope with space", func(d *Document) { d.ScopesSupported = append(d.ScopesSupported, "patient/*.rs openid") }, SeverityError, "scopes_supported[7]", errInvalidValue},
		{"symmetric without secret methods", func(d *Document) {
			d.Capabilities = remove(d.Capabilities, "client-confidential-asymmetric")
			d.TokenEndpointAuthMethodsSupported = []string{"private_key_jwt"}
		}, SeverityWarning, "token_endpoint_auth_methods_supported", errMissingValue},
		{"deprecated app state endpoint", func(d *Document) { d.SMARTAppStateEndpoint = "https://state.example.org" }, SeverityWarning, "smart_app_state_endpoint", errDeprecated},
		{"associated endpoint without url", func(d *Document) {
			d.AssociatedEndpoints = []AssociatedEndpoint{{Capabilities: []string{"smart-app-state"}}}
		}, SeverityError, "associated_endpoints[0].url", errMissing},
		{"associated endpoint without capabilities", func(d *Document) {
			d.AssociatedEndpoints = []AssociatedEndpoint{{URL: "https://state.example.org"}}
		}, SeverityError, "associated_endpoints[0].capabilities", errMissing},
		{"brand identifier without value", func(d *Document) { d.UserAccessBrandIdentifier = &Identifier{System: "urn:ietf:rfc:3986"} }, SeverityError, "user_access_brand_identifier", errInvalidValue},
		{"extension named like a standard member", func(d *Document) {
			d.Extensions = map[string]json.RawMessage{"token_endpoint": json.RawMessage(`"https://evil.example.org/token"`)}
		}, SeverityError, "token_endpoint", errReservedExtension},
		{"extension not JSON", func(d *Document) { d.Extensions = map[string]json.RawMessage{"x": json.RawMessage(`{`)} }, SeverityError, "x", errInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDocument()
			tt.edit(d)
			ps := d.Validate()
			if !hasProblem(ps, tt.severity, tt.field, tt.err) {
				t.Fatalf("want %v on %s (%v); got %v", tt.severity, tt.field, tt.err, ps)
			}
			err := ps.Err()
			if tt.severity == SeverityError {
				var ve *ValidationError
				if !errors.As(err, &ve) || !is(err, tt.err) {
					t.Fatalf("Err() = %v, want a *ValidationError matching %v", err, tt.err)
				}
				if _, err := NewHandler(d, HandlerConfig{}); !is(err, tt.err) {
					t.Fatalf("NewHandler accepted the document: %v", err)
				}
			} else if len(ps.Errors()) == 0 {
				if err != nil {
					t.Fatalf("warnings only, yet Err() = %v", err)
				}
				if _, err := NewHandler(d, HandlerConfig{}); err != nil {
					t.Fatalf("NewHandler refused a document with warnings only: %v", err)
				}
			}
		})
	}
}

// TestLegitimateVariantsAccepted is the other half of each rule: documents
// that are right must pass without errors.
func TestLegitimateVariantsAccepted(t *testing.T) {
	tests := []struct {
		name string
		edit func(d *Document)
	}{
		{"W1 issuer and jwks with sso", func(d *Document) {}},
		{"W2 no sso and no issuer", func(d *Document) {
			d.Capabilities = remove(d.Capabilities, "sso-openid-connect")
			d.Issuer = ""
			d.JWKSURI = ""
		}},
		{"W2 jwks_uri without sso is optional", func(d *Document) {
			d.Capabilities = remove(d.Capabilities, "sso-openid-connect")
			d.Issuer = ""
		}},
		{"W3 S256 only", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"S256"} }},
		{"W3 S256 and another", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"S256", "S512"} }},
		{"W4 standalone with authorize", func(d *Document) { d.Capabilities = []string{"launch-standalone", "client-public"}; d.Issuer = "" }},
		{"W5 asymmetric with ES384 only", func(d *Document) { d.TokenEndpointAuthSigningAlgValuesSupported = []string{"ES384"} }},
		{"W5 asymmetric with RS384 only", func(d *Document) { d.TokenEndpointAuthSigningAlgValuesSupported = []string{"RS384"} }},
		{"W5 no asymmetric, no alg list", func(d *Document) {
			d.Capabilities = remove(d.Capabilities, "client-confidential-asymmetric")
			d.TokenEndpointAuthSigningAlgValuesSupported = nil
			d.TokenEndpointAuthMethodsSupported = []string{"client_secret_basic"}
		}},
		{"W6 absolute with port and path", func(d *Document) { d.TokenEndpoint = "https://auth.example.org:8443/a/b/token?x=1" }},
		{"W6 IPv6 host", func(d *Document) { d.TokenEndpoint = "https://[2001:db8::1]/token" }},
		{"W6 http localhost (warning only)", func(d *Document) { d.TokenEndpoint = "http://localhost:8080/token" }},
		{"W7 normative banner and style", func(d *Document) { d.Capabilities = append(d.Capabilities, "context-banner", "context-style") }},
		{"W7 passthrough (warning only)", func(d *Document) { d.Capabilities = append(d.Capabilities, "context-passthrough-banner") }},
		{"W8 URI capability", func(d *Document) {
			d.Capabilities = append(d.Capabilities, "https://example.org/cap/x", "urn:example:cap")
		}},
		{"W8 unknown simple name (warning only)", func(d *Document) { d.Capabilities = append(d.Capabilities, "my-feature") }},
		{"every 2.2 capability", func(d *Document) {
			for c := range knownCapabilities {
				if !contains(d.Capabilities, c) {
					d.Capabilities = append(d.Capabilities, c)
				}
			}
		}},
		{"associated endpoint", func(d *Document) {
			d.AssociatedEndpoints = []AssociatedEndpoint{{URL: "https://state.example.org", Capabilities: []string{"smart-app-state"}}}
		}},
		{"vendor extension", func(d *Document) { d.Extensions = map[string]json.RawMessage{"x_vendor": json.RawMessage(`{"a":1}`)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDocument()
			tt.edit(d)
			if errs := d.Validate().Errors(); len(errs) != 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			if _, err := NewHandler(d, HandlerConfig{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	d := &Document{
		TokenEndpoint:                 "/token",
		Capabilities:                  []string{"sso-openid-connect", "my-feature", "context-passthrough-style"},
		CodeChallengeMethodsSupported: []string{"plain"},
	}
	ps := d.Validate()
	for _, want := range []struct {
		s     Severity
		field string
		err   error
	}{
		{SeverityError, "issuer", errMissing},
		{SeverityError, "jwks_uri", errMissing},
		{SeverityError, "authorization_endpoint", errMissing},
		{SeverityError, "grant_types_supported", errMissing},
		{SeverityError, "token_endpoint", errRelativeURL},
		{SeverityError, "code_challenge_methods_supported", errMissingValue},
		{SeverityError, "code_challenge_methods_supported[0]", errForbiddenValue},
		{SeverityWarning, "capabilities[1]", errUnknownCapability},
		{SeverityWarning, "capabilities[2]", errCapabilityAlias},
		{SeverityWarning, "scopes_supported", errMissing},
	} {
		if !hasProblem(ps, want.s, want.field, want.err) {
			t.Errorf("missing %v %s %v in %v", want.s, want.field, want.err, ps)
		}
	}
	err := ps.Err()
	msg := err.Error()
	for _, s := range []string{"issuer", "token_endpoint", "plain"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error message %q does not mention %s", msg, s)
		}
	}
	if strings.Contains(msg, "my-feature") {
		t.Errorf("warnings leak into the error message: %q", msg)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != len(ps) || ve.Problems.Errors()[0].Severity != SeverityError {
		t.Errorf("errors.As(*ValidationError) = %v, %+v", errors.As(err, &ve), ve)
	}
}

func TestValidateDoesNotModify(t *testing.T) {
	d := goldenDocument()
	before, _ := d.MarshalJSON()
	d.Validate()
	_ = d.normalize()
	after, _ := d.MarshalJSON()
	if string(before) != string(after) {
		t.Fatal("Validate or Normalize changed the document")
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"banner", []string{"launch-ehr", "context-passthrough-banner"}, []string{"launch-ehr", "context-banner"}},
		{"style", []string{"context-passthrough-style"}, []string{"context-style"}},
		{"alias and normative once", []string{"context-banner", "context-passthrough-banner"}, []string{"context-banner"}},
		{"duplicates", []string{"a:b", "launch-ehr", "a:b", "launch-ehr"}, []string{"a:b", "launch-ehr"}},
		{"unchanged", []string{"launch-ehr", "my-feature"}, []string{"launch-ehr", "my-feature"}},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Document{Capabilities: tt.in, AssociatedEndpoints: []AssociatedEndpoint{{Capabilities: tt.in}}}
			n := d.normalize()
			if strings.Join(n.Capabilities, " ") != strings.Join(tt.want, " ") || (tt.want == nil) != (n.Capabilities == nil) {
				t.Errorf("Capabilities = %q, want %q", n.Capabilities, tt.want)
			}
			if strings.Join(n.AssociatedEndpoints[0].Capabilities, " ") != strings.Join(tt.want, " ") {
				t.Errorf("associated capabilities = %q, want %q", n.AssociatedEndpoints[0].Capabilities, tt.want)
			}
		})
	}
}

// TestW7Emitted: a passthrough name configured is served as the
// normative name and never under its own.
func TestW7Emitted(t *testing.T) {
	for _, alias := range []string{"context-passthrough-banner", "context-passthrough-style"} {
		t.Run(alias, func(t *testing.T) {
			d := validDocument()
			d.Capabilities = append(d.Capabilities, alias)
			h := mustHandler(t, d, HandlerConfig{})
			body := string(h.body())
			if strings.Contains(body, "passthrough") {
				t.Fatalf("served a passthrough name: %s", body)
			}
			if !strings.Contains(body, `"`+capabilityAliases[alias]+`"`) {
				t.Fatalf("normative name missing: %s", body)
			}
			if !h.Document().advertises(capabilityAliases[alias]) || !d.advertises(capabilityAliases[alias]) {
				t.Fatal("HasCapability does not see the normative name")
			}
		})
	}
}

func TestSeverityString(t *testing.T) {
	for s, want := range map[Severity]string{SeverityWarning: "warning", SeverityError: "error", 9: "severity(9)"} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
	p := Problem{Severity: SeverityError, Field: "token_endpoint", err: errMissing}
	if got := p.Error(); got != "error: token_endpoint: member missing" {
		t.Errorf("Problem.Error() = %q", got)
	}
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func TestHasCapability(t *testing.T) {
	d := &Document{Capabilities: []string{"launch-ehr", "context-passthrough-style", "my-feature"}}
	for c, want := range map[string]bool{
		"launch-ehr": true, "context-style": true, "context-passthrough-style": true, "my-feature": true,
		"context-banner": false, "launch-standalone": false, "": false,
	} {
		if got := d.advertises(c); got != want {
			t.Errorf("HasCapability(%q) = %v, want %v", c, got, want)
		}
	}
}

func TestScopeConsistency(t *testing.T) {
	tests := []struct {
		name  string
		scope string
		drop  string // capability or grant type whose absence the scope reveals
	}{
		{"v2 scope without permission-v2", "patient/Observation.rs", "permission-v2"},
		{"granular v2 scope without permission-v2", "patient/Observation.rs?category=laboratory", "permission-v2"},
		{"v1 read without permission-v1", "patient/*.read", "permission-v1"},
		{"v1 star without permission-v1", "patient/Patient.*", "permission-v1"},
		{"user scope without permission-user", "user/*.rs", "permission-user"},
		{"patient scope without permission-patient", "patient/Observation.cruds", "permission-patient"},
		{"system scope without client_credentials", "system/*.rs", "client_credentials"},
		{"openid without sso", "openid", "sso-openid-connect"},
		{"fhirUser without sso", "fhirUser", "sso-openid-connect"},
		{"offline_access without permission-offline", "offline_access", "permission-offline"},
		{"online_access without permission-online", "online_access", "permission-online"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDocument()
			d.Capabilities = append(d.Capabilities, "permission-online")
			d.ScopesSupported = []string{"launch", tt.scope}
			if hasProblem(d.Validate(), SeverityWarning, "scopes_supported[1]", errMissingValue) {
				t.Fatalf("warning on a consistent document: %v", d.Validate())
			}
			d.Capabilities = remove(d.Capabilities, tt.drop)
			d.GrantTypesSupported = remove(d.GrantTypesSupported, tt.drop)
			if !hasProblem(d.Validate(), SeverityWarning, "scopes_supported[1]", errMissingValue) {
				t.Fatalf("no warning without %s: %v", tt.drop, d.Validate())
			}
		})
	}
}

func TestProblemsFilters(t *testing.T) {
	d := validDocument()
	d.TokenEndpoint = "/token"                                  // error
	d.Capabilities = append(d.Capabilities, "my-feature")       // warning
	d.CodeChallengeMethodsSupported = []string{"S256", "plain"} // error
	ps := d.Validate()
	if len(ps.Errors()) != 2 || len(ps.Warnings()) != 1 || len(ps) != 3 {
		t.Fatalf("errors %v, warnings %v, all %v", ps.Errors(), ps.Warnings(), ps)
	}
	for _, p := range ps.Warnings() {
		if p.Severity != SeverityWarning {
			t.Fatal(p)
		}
	}
	var ve *ValidationError
	if !errors.As(ps.Err(), &ve) || len(ve.Problems) != 3 || len(ve.Problems.Errors()) != 2 {
		t.Fatalf("%#v", ps.Err())
	}
	if is(ps.Err(), errUnknownCapability) {
		t.Fatal("a warning's sentinel matches the error")
	}
}

func TestDocumentJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
		check   func(t *testing.T, d *Document)
	}{
		{"extensions kept", `{"token_endpoint":"https://a/t","x_vendor":{"k":[1]},"y":null}`, false, func(t *testing.T, d *Document) {
			if d.TokenEndpoint != "https://a/t" || string(d.Extensions["x_vendor"]) != `{"k":[1]}` || string(d.Extensions["y"]) != "null" || len(d.Extensions) != 2 {
				t.Fatalf("%+v", d)
			}
		}},
		{"no extensions", `{"capabilities":["launch-ehr"]}`, false, func(t *testing.T, d *Document) {
			if d.Extensions != nil {
				t.Fatal(d.Extensions)
			}
		}},
		{"brand identifier object", `{"user_access_brand_identifier":{"system":"urn:ietf:rfc:3986","value":"https://x"}}`, false, func(t *testing.T, d *Document) {
			if d.UserAccessBrandIdentifier == nil || d.UserAccessBrandIdentifier.Value != "https://x" {
				t.Fatal(d.UserAccessBrandIdentifier)
			}
		}},
		{"capabilities not a list", `{"capabilities":"launch-ehr"}`, true, nil},
		{"not an object", `[]`, true, nil},
		{"broken", `{"a":`, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Document
			err := json.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err %v", err)
			}
			if tt.check != nil {
				tt.check(t, &d)
			}
		})
	}
	bad := &Document{Extensions: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}
	if _, err := json.Marshal(bad); err == nil {
		t.Fatal("invalid extension marshalled")
	}
	only := &Document{Extensions: map[string]json.RawMessage{"x": json.RawMessage(` [1, 2] `), "token_endpoint": json.RawMessage(`"https://evil"`)}}
	if b, err := json.Marshal(only); err != nil || string(b) != `{"x":[1,2]}` {
		t.Fatalf("%s %v", b, err)
	}
}

// TestClientPublicNone: a document advertising public clients lists the
// "none" method (or is served with it), and "none" alone, without the
// capability, is reported.
func TestClientPublicNone(t *testing.T) {
	d := validDocument()
	d.TokenEndpointAuthMethodsSupported = []string{"client_secret_basic", "private_key_jwt"}
	if !hasProblem(d.Validate(), SeverityWarning, "token_endpoint_auth_methods_supported", errMissingValue) {
		t.Fatalf("no warning: %v", d.Validate())
	}
	h := mustHandler(t, d, HandlerConfig{})
	if got := h.Document().TokenEndpointAuthMethodsSupported; !slices.Equal(got, []string{"client_secret_basic", "private_key_jwt", "none"}) {
		t.Fatalf("served %q", got)
	}
	if len(d.TokenEndpointAuthMethodsSupported) != 2 {
		t.Fatal("NewHandler modified the document")
	}
	// An absent list stays absent: "none" alone would deny the
	// confidential clients.
	d.TokenEndpointAuthMethodsSupported = nil
	d.Capabilities = remove(d.Capabilities, "client-confidential-asymmetric")
	if got := mustHandler(t, d, HandlerConfig{}).Document().TokenEndpointAuthMethodsSupported; got != nil {
		t.Fatalf("served %q", got)
	}
	// Without client-public "none" is neither added nor expected.
	d = validDocument()
	d.Capabilities = remove(d.Capabilities, "client-public")
	if !hasProblem(d.Validate(), SeverityWarning, "token_endpoint_auth_methods_supported", errUnexpected) {
		t.Fatalf("none without client-public: %v", d.Validate())
	}
	d.TokenEndpointAuthMethodsSupported = []string{"client_secret_basic"}
	if ps := d.Validate(); hasProblem(ps, SeverityWarning, "token_endpoint_auth_methods_supported", errMissingValue) ||
		slices.Contains(d.normalize().TokenEndpointAuthMethodsSupported, "none") {
		t.Fatalf("none expected without client-public: %v", ps)
	}
}

func TestLaunchScopeConsistency(t *testing.T) {
	tests := []struct {
		scope string
		drop  []string
	}{
		{"launch", []string{"launch-ehr"}},
		{"launch/patient", []string{"context-ehr-patient", "context-standalone-patient"}},
		{"launch/encounter", []string{"context-ehr-encounter", "context-standalone-encounter"}},
		{"launch/Questionnaire?role=https://example.org/role", []string{"launch-ehr", "launch-standalone"}},
		{"patient/Observation.rs?code=http://loinc.org|4548-4", []string{"permission-v2"}},
		{"user/Observation.read?x=a.b", []string{"permission-v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			d := validDocument()
			d.Capabilities = append(d.Capabilities, "context-ehr-encounter")
			d.ScopesSupported = []string{tt.scope}
			if hasProblem(d.Validate(), SeverityWarning, "scopes_supported[0]", errMissingValue) {
				t.Fatalf("warning on a consistent document: %v", d.Validate())
			}
			for _, c := range tt.drop {
				d.Capabilities = remove(d.Capabilities, c)
			}
			if !hasProblem(d.Validate(), SeverityWarning, "scopes_supported[0]", errMissingValue) {
				t.Fatalf("no warning without %v: %v", tt.drop, d.Validate())
			}
		})
	}
}

// TestValidateSuggests: a misspelt spec value is reported with the value
// it probably meant; an unrelated one gets no suggestion.
func TestValidateSuggests(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(d *Document)
		field string
		want  string // "" : no suggestion
	}{
		{"capability typo", func(d *Document) { d.Capabilities = append(d.Capabilities, "launch-standalon") }, "capabilities[14]", `did you mean "launch-standalone"?`},
		{"capability underscore", func(d *Document) { d.Capabilities = append(d.Capabilities, "context_ehr_patient") }, "capabilities[14]", `did you mean "context-ehr-patient"?`},
		{"capability case", func(d *Document) { d.Capabilities = append(d.Capabilities, "Permission-Offline") }, "capabilities[14]", `did you mean "permission-offline"?`},
		{"capability unrelated", func(d *Document) { d.Capabilities = append(d.Capabilities, "bulk-export") }, "capabilities[14]", ""},
		{"grant type typo", func(d *Document) { d.GrantTypesSupported = []string{"authorization_code", "client_credential"} }, "grant_types_supported[1]", `did you mean "client_credentials"?`},
		{"grant type unrelated", func(d *Document) { d.GrantTypesSupported = []string{"authorization_code", "refresh_token"} }, "grant_types_supported[1]", ""},
		{"lacking authorization_code", func(d *Document) { d.GrantTypesSupported = []string{"authorisation_code"} }, "grant_types_supported", `is "authorisation_code" a misspelling of it?`},
		{"lacking S256", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"s256"} }, "code_challenge_methods_supported", `is "s256" a misspelling of it?`},
		{"lacking S256, unrelated", func(d *Document) { d.CodeChallengeMethodsSupported = []string{"S512-long-name"} }, "code_challenge_methods_supported", ""},
		{"lacking private_key_jwt", func(d *Document) {
			d.TokenEndpointAuthMethodsSupported = []string{"client_secret_basic", "private-key-jwt", "none"}
		}, "token_endpoint_auth_methods_supported", `is "private-key-jwt" a misspelling of it?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDocument()
			tt.edit(d)
			var found *Problem
			ps := d.Validate()
			for i := range ps {
				if ps[i].Field == tt.field {
					found = &ps[i]
				}
			}
			if found == nil {
				t.Fatalf("no problem on %s: %v", tt.field, ps)
			}
			if tt.want == "" && (strings.Contains(found.Detail, "did you mean") || strings.Contains(found.Detail, "misspelling")) {
				t.Fatalf("suggestion for an unrelated value: %v", found)
			}
			if tt.want != "" && !strings.HasSuffix(found.Detail, tt.want) {
				t.Fatalf("%v, want a detail ending in %s", found, tt.want)
			}
		})
	}
	m := &ProtectedResourceMetadata{Resource: "https://h/fhir", AuthorizationServers: []string{"https://as"}, ScopesSupported: []string{"x"},
		BearerMethodsSupported: []string{"Header"}}
	if ps := m.Validate(); len(ps) != 1 || !strings.HasSuffix(ps[0].Detail, `did you mean "header"?`) {
		t.Fatalf("bearer method: %v", ps)
	}
}
