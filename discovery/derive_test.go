package discovery

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// oidcProviderMetadata returns the OpenID configuration of an npm
// oidc-provider 9.x with default settings (testdata), edited by edit.
func oidcProviderMetadata(t testing.TB, edit func(m map[string]any)) *OpenIDConfiguration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "oidc-provider-defaults.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		if b, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	oc, err := parseOpenIDConfiguration(b)
	if err != nil {
		t.Fatal(err)
	}
	return oc
}

// smartConfigured is oidc-provider set up for SMART: SMART scopes, client
// credentials, and RS384/ES384 for client assertions.
func smartConfigured(m map[string]any) {
	m["scopes_supported"] = []string{"openid", "offline_access", "fhirUser", "launch", "launch/patient",
		"patient/*.rs", "user/*.rs", "patient/*.read", "system/*.rs", "email"}
	m["grant_types_supported"] = []string{"implicit", "authorization_code", "refresh_token", "client_credentials"}
	m["token_endpoint_auth_signing_alg_values_supported"] = []string{"HS256", "RS256", "RS384", "ES256", "ES384"}
}

// demoCapabilities is the fixed list the demo used to claim for any
// external authorization server.
var demoCapabilities = []string{
	"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
	"client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient",
	"permission-patient", "permission-user", "permission-v1", "permission-v2",
}

func findingsOf(ps Problems) Problems {
	var out Problems
	for _, p := range ps {
		if is(p, errUnsupported) || is(p, errForbiddenValue) {
			out = append(out, p)
		}
	}
	return out
}

// TestDeriveOIDCProviderDefaults: against oidc-provider's default metadata
// the configuration starts, with warnings naming what is imperfect, and
// advertises only what the server supports, consistently.
func TestDeriveOIDCProviderDefaults(t *testing.T) {
	oc := oidcProviderMetadata(t, nil)
	d, warnings, err := Derive(oc, DeriveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	wantCaps := []string{"launch-standalone", "client-public", "client-confidential-symmetric", "permission-offline"}
	if !slices.Equal(d.Capabilities, wantCaps) {
		t.Errorf("capabilities %q, want %q", d.Capabilities, wantCaps)
	}
	for field, want := range map[string][]string{
		"response_types_supported":                         {"code"},
		"token_endpoint_auth_methods_supported":            {"client_secret_basic", "client_secret_post", "none"},
		"token_endpoint_auth_signing_alg_values_supported": nil,
		"scopes_supported":                                 {"offline_access"},
		"grant_types_supported":                            {"authorization_code"},
		"code_challenge_methods_supported":                 {"S256"},
	} {
		if got := listMember(d, field); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	if d.Issuer != "" || d.TokenEndpoint != oc.TokenEndpoint || d.AuthorizationEndpoint != oc.AuthorizationEndpoint {
		t.Errorf("endpoints: %+v", d)
	}
	// What is imperfect is said, each under the member that decides it.
	for _, field := range []string{"token_endpoint_auth_signing_alg_values_supported", "scopes_supported"} {
		if !hasProblem(warnings, SeverityWarning, field, errUnsupported) {
			t.Errorf("no warning on %s: %v", field, warnings)
		}
	}
	text := strings.Join(problemStrings(warnings), "\n")
	for _, needle := range []string{"RS384", "HS256, RS256, PS256, ES256, Ed25519, EdDSA", "fhirUser", "no permission capability"} {
		if !strings.Contains(text, needle) {
			t.Errorf("warnings do not mention %q:\n%s", needle, text)
		}
	}
	if errs := warnings.Errors(); len(errs) != 0 {
		t.Fatalf("errors among the warnings: %v", errs)
	}
	// The document is consistent: no warning of its own about scopes,
	// auth methods or response types, and it is served as derived.
	ps := d.Validate()
	for _, p := range ps {
		if strings.HasPrefix(p.Field, "scopes_supported") || strings.HasPrefix(p.Field, "token_endpoint_auth") || strings.HasPrefix(p.Field, "response_types") {
			t.Errorf("derived document inconsistent: %v", p)
		}
	}
	h := mustHandler(t, d, HandlerConfig{})
	if !slices.Equal(h.Document().TokenEndpointAuthMethodsSupported, d.TokenEndpointAuthMethodsSupported) {
		t.Errorf("served auth methods %q", h.Document().TokenEndpointAuthMethodsSupported)
	}
	w := serve(h, "GET", "/", nil)
	if f, _ := infernoWellKnown(w.Code, w.Header(), w.Body.Bytes(), "https://app.example.org"); len(f) != 0 {
		t.Errorf("Inferno: %v", f)
	}

	t.Run("strict refuses", func(t *testing.T) {
		d, ws, err := Derive(oc, DeriveConfig{Strict: true})
		var ve *ValidationError
		if d != nil || ws != nil || !errors.As(err, &ve) || !is(err, errUnsupported) {
			t.Fatalf("doc %v, warnings %v, err %v", d, ws, err)
		}
		if !strings.Contains(err.Error(), "RS384") {
			t.Errorf("error does not say why: %v", err)
		}
		if len(findingsOf(ve.Problems.Errors())) != len(findingsOf(warnings)) {
			t.Errorf("strict errors %v, findings %v", ve.Problems.Errors(), findingsOf(warnings))
		}
	})
}

// TestDeriveDemoCapabilities: the fixed list the demo claimed made it
// refuse to start against oidc-provider ("capability
// client-confidential-asymmetric needs RS384 or ES384"). Given explicitly,
// the list is served without what the server cannot do, with a warning;
// strict mode refuses with the reason.
func TestDeriveDemoCapabilities(t *testing.T) {
	oc := oidcProviderMetadata(t, nil)
	d, warnings, err := Derive(oc, DeriveConfig{Local: &Document{Capabilities: demoCapabilities}})
	if err != nil {
		t.Fatal(err)
	}
	want := remove(slices.Clone(demoCapabilities), "client-confidential-asymmetric")
	if !slices.Equal(d.Capabilities, want) {
		t.Errorf("capabilities %q, want %q", d.Capabilities, want)
	}
	if !hasProblem(warnings, SeverityWarning, "token_endpoint_auth_signing_alg_values_supported", errUnsupported) {
		t.Errorf("no warning for the dropped capability: %v", warnings)
	}
	if got := d.TokenEndpointAuthMethodsSupported; !slices.Equal(got, []string{"client_secret_basic", "client_secret_post", "none"}) {
		t.Errorf("auth methods %q", got)
	}
	if d.TokenEndpointAuthSigningAlgValuesSupported != nil {
		t.Errorf("signing algorithms served without client-confidential-asymmetric: %q", d.TokenEndpointAuthSigningAlgValuesSupported)
	}
	// The server lists no resource scope: the explicit permission
	// capabilities stay (the resource server enforces them), the scopes
	// listed are only those the capabilities use.
	if !slices.Equal(d.ScopesSupported, []string(nil)) {
		t.Errorf("scopes %q", d.ScopesSupported)
	}
	if _, _, err := Derive(oc, DeriveConfig{Local: &Document{Capabilities: demoCapabilities}, Strict: true}); err == nil ||
		!is(err, errUnsupported) || !strings.Contains(err.Error(), "client-confidential-asymmetric") {
		t.Fatalf("strict: %v", err)
	}
}

// TestDeriveSMARTConfiguredServer: an oidc-provider set up for SMART gives
// the full capability list and no finding, so strict mode accepts it.
func TestDeriveSMARTConfiguredServer(t *testing.T) {
	oc := oidcProviderMetadata(t, smartConfigured)
	d, warnings, err := Derive(oc, DeriveConfig{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
		"client-confidential-asymmetric", "sso-openid-connect", "context-ehr-patient", "context-standalone-patient",
		"permission-offline", "permission-patient", "permission-user", "permission-v1", "permission-v2"}
	if !slices.Equal(d.Capabilities, want) {
		t.Errorf("capabilities %q, want %q", d.Capabilities, want)
	}
	if f := findingsOf(warnings); len(f) != 0 {
		t.Errorf("findings %v", f)
	}
	for field, want := range map[string][]string{
		"scopes_supported": {"openid", "offline_access", "fhirUser", "launch", "launch/patient",
			"patient/*.rs", "user/*.rs", "patient/*.read", "system/*.rs"},
		"token_endpoint_auth_methods_supported":            {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"token_endpoint_auth_signing_alg_values_supported": {"HS256", "RS256", "RS384", "ES256", "ES384"},
		"grant_types_supported":                            {"authorization_code", "client_credentials"},
		"response_types_supported":                         {"code"},
	} {
		if got := listMember(d, field); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	if d.Issuer != oc.Issuer || d.JWKSURI != oc.JWKSURI {
		t.Errorf("issuer %q, jwks %q", d.Issuer, d.JWKSURI)
	}
}

// TestDeriveRules: each capability is advertised only when the metadata
// supports it; a configured one the metadata does not support is left out
// with a warning (refused in strict mode), a supported one is kept.
func TestDeriveRules(t *testing.T) {
	tests := []struct {
		name  string
		cap   string
		edit  func(m map[string]any) // makes the capability unsupported
		field string                 // of the finding
	}{
		{"launch-standalone without S256", "launch-standalone", func(m map[string]any) {
			m["code_challenge_methods_supported"] = []string{"plain", "S256-typo"}
		}, "capabilities"},
		{"launch-standalone without authorization_code", "launch-standalone", func(m map[string]any) {
			m["grant_types_supported"] = []string{"client_credentials", "refresh_token"}
		}, "capabilities"},
		{"launch-ehr without response type code", "launch-ehr", func(m map[string]any) {
			m["response_types_supported"] = []string{"id_token", "code id_token"}
		}, "capabilities"},
		{"launch-ehr without authorization endpoint", "launch-ehr", func(m map[string]any) {
			delete(m, "authorization_endpoint")
		}, "capabilities"},
		{"asymmetric without private_key_jwt", "client-confidential-asymmetric", func(m map[string]any) {
			m["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "none"}
		}, "token_endpoint_auth_signing_alg_values_supported"},
		{"asymmetric with RS256 only", "client-confidential-asymmetric", func(m map[string]any) {
			m["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "rs384"}
		}, "token_endpoint_auth_signing_alg_values_supported"},
		{"symmetric with private_key_jwt only", "client-confidential-symmetric", func(m map[string]any) {
			m["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt", "client_secret_jwt", "none"}
		}, "token_endpoint_auth_methods_supported"},
		{"symmetric without any launch", "client-confidential-symmetric", func(m map[string]any) {
			m["code_challenge_methods_supported"] = []string{}
		}, "token_endpoint_auth_methods_supported"},
		{"sso without jwks_uri", "sso-openid-connect", func(m map[string]any) { delete(m, "jwks_uri") }, "jwks_uri"},
		{"offline without refresh_token", "permission-offline", func(m map[string]any) {
			m["grant_types_supported"] = []string{"authorization_code", "client_credentials"}
		}, "grant_types_supported"},
		{"online without refresh_token", "permission-online", func(m map[string]any) {
			delete(m, "grant_types_supported") // default: authorization_code, implicit
		}, "grant_types_supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := func() *Document {
				return &Document{
					Capabilities: []string{"launch-ehr", "launch-standalone", tt.cap, "client-public", "permission-patient", "permission-v2"},
					// SMART requires S256 listed; the server's own list
					// decides the launch capabilities.
				}
			}
			// Legitimate: supported, kept, no finding about it.
			d, ws, err := Derive(oidcProviderMetadata(t, smartConfigured), DeriveConfig{Local: local(), Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(d.Capabilities, tt.cap) || len(findingsOf(ws)) != 0 {
				t.Fatalf("supported capability: %q, findings %v", d.Capabilities, findingsOf(ws))
			}
			// Unsupported: left out with a warning naming it.
			oc := oidcProviderMetadata(t, func(m map[string]any) { smartConfigured(m); tt.edit(m) })
			d, ws, err = Derive(oc, DeriveConfig{Local: local()})
			if err == nil {
				if slices.Contains(d.Capabilities, tt.cap) {
					t.Fatalf("unsupported capability advertised: %q", d.Capabilities)
				}
				if !hasProblem(ws, SeverityWarning, tt.field, errUnsupported) || !strings.Contains(strings.Join(problemStrings(ws), "\n"), tt.cap) {
					t.Fatalf("no warning on %s naming %s: %v", tt.field, tt.cap, ws)
				}
				if p := d.Validate().Errors(); len(p) != 0 {
					t.Fatalf("derived document has errors: %v", p)
				}
			} else if !is(err, errMissing) && !is(err, errMissingValue) {
				// Without PKCE S256 no SMART document can be served at all.
				t.Fatalf("err %v", err)
			}
			// Strict: refused.
			if _, _, err := Derive(oc, DeriveConfig{Local: local(), Strict: true}); err == nil {
				t.Fatal("strict mode accepted unsupported metadata")
			}
		})
	}
}

func TestDeriveDependentCapabilities(t *testing.T) {
	// Without a launch capability the context capabilities go too.
	oc := oidcProviderMetadata(t, func(m map[string]any) {
		smartConfigured(m)
		m["grant_types_supported"] = []string{"client_credentials"}
	})
	d, ws, err := Derive(oc, DeriveConfig{Local: &Document{
		Capabilities:                  []string{"launch-ehr", "context-ehr-patient", "context-passthrough-banner", "context-standalone-patient", "client-confidential-asymmetric", "permission-v2"},
		CodeChallengeMethodsSupported: []string{"S256"},
		AuthorizationEndpoint:         "https://as.example.org/auth",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Capabilities, []string{"client-confidential-asymmetric", "permission-v2"}) {
		t.Fatalf("capabilities %q", d.Capabilities)
	}
	for _, c := range []string{"launch-ehr", "context-ehr-patient", "context-passthrough-banner", "context-standalone-patient"} {
		if !strings.Contains(strings.Join(problemStrings(ws), "\n"), "capability "+c+" is configured but not supported") {
			t.Errorf("no warning for %s: %v", c, ws)
		}
	}
	// Backend services only: no response types, no launch scopes.
	if d.ResponseTypesSupported != nil || slices.Contains(d.ScopesSupported, "launch") || !slices.Contains(d.ScopesSupported, "system/*.rs") {
		t.Errorf("response types %q, scopes %q", d.ResponseTypesSupported, d.ScopesSupported)
	}
}

func TestDeriveClientPublicWithoutNone(t *testing.T) {
	// A server that supports public clients without listing "none" (as
	// some do): configured, client-public is kept and served with "none",
	// with a warning; strict mode refuses. Derived, it is not advertised.
	oc := oidcProviderMetadata(t, func(m map[string]any) {
		smartConfigured(m)
		m["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "private_key_jwt"}
	})
	local := &Document{Capabilities: []string{"launch-standalone", "client-public", "permission-patient", "permission-v2"}}
	d, ws, err := Derive(oc, DeriveConfig{Local: local})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Capabilities, "client-public") || !slices.Equal(d.TokenEndpointAuthMethodsSupported, []string{"none"}) {
		t.Fatalf("capabilities %q, methods %q", d.Capabilities, d.TokenEndpointAuthMethodsSupported)
	}
	if !hasProblem(ws, SeverityWarning, "token_endpoint_auth_methods_supported", errUnsupported) {
		t.Fatalf("no warning: %v", ws)
	}
	if _, _, err := Derive(oc, DeriveConfig{Local: local, Strict: true}); !is(err, errUnsupported) {
		t.Fatalf("strict: %v", err)
	}
	d, _, err = Derive(oc, DeriveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(d.Capabilities, "client-public") || slices.Contains(d.TokenEndpointAuthMethodsSupported, "none") {
		t.Fatalf("derived public client: %q %q", d.Capabilities, d.TokenEndpointAuthMethodsSupported)
	}
}

func TestDeriveUnsignedAssertions(t *testing.T) {
	oc := oidcProviderMetadata(t, func(m map[string]any) {
		smartConfigured(m)
		m["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS384", "none", "NONE"}
	})
	d, ws, err := Derive(oc, DeriveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.TokenEndpointAuthSigningAlgValuesSupported, []string{"RS384"}) {
		t.Fatalf("algorithms %q", d.TokenEndpointAuthSigningAlgValuesSupported)
	}
	if !hasProblem(ws, SeverityWarning, "token_endpoint_auth_signing_alg_values_supported", errForbiddenValue) {
		t.Fatalf("no warning: %v", ws)
	}
	if _, _, err := Derive(oc, DeriveConfig{Strict: true}); !is(err, errForbiddenValue) {
		t.Fatalf("strict: %v", err)
	}
}

func TestDeriveLocalWins(t *testing.T) {
	oc := oidcProviderMetadata(t, nil)
	local := &Document{
		Capabilities:                      []string{"launch-standalone", "client-public", "permission-patient", "permission-v2"},
		ScopesSupported:                   []string{"launch/patient", "patient/*.rs", "openid"},
		ResponseTypesSupported:            []string{"code", "code id_token"},
		TokenEndpointAuthMethodsSupported: []string{"none", "client_secret_jwt"},
		TokenEndpoint:                     "https://gateway.example.org/token",
	}
	d, _, err := Derive(oc, DeriveConfig{Local: local})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.ScopesSupported, local.ScopesSupported) || !slices.Equal(d.ResponseTypesSupported, local.ResponseTypesSupported) ||
		!slices.Equal(d.TokenEndpointAuthMethodsSupported, local.TokenEndpointAuthMethodsSupported) || d.TokenEndpoint != local.TokenEndpoint {
		t.Fatalf("local lists not kept: %+v", d)
	}
	d.ScopesSupported[0] = "changed"
	if local.ScopesSupported[0] != "launch/patient" {
		t.Fatal("local modified")
	}
}

func TestDeriveErrors(t *testing.T) {
	if _, _, err := Derive(nil, DeriveConfig{}); err == nil {
		t.Fatal("nil configuration accepted")
	}
	// No token endpoint: nothing can be served, strict or not.
	oc := oidcProviderMetadata(t, func(m map[string]any) { delete(m, "token_endpoint") })
	if _, _, err := Derive(oc, DeriveConfig{}); !is(err, errMissing) {
		t.Fatalf("err %v", err)
	}
	// No PKCE at all: SMART requires S256 listed; the local settings can
	// say so when the server supports it without listing it.
	oc = oidcProviderMetadata(t, func(m map[string]any) { delete(m, "code_challenge_methods_supported") })
	_, _, err := Derive(oc, DeriveConfig{})
	if !is(err, errMissing) {
		t.Fatalf("err %v", err)
	}
	d, _, err := Derive(oc, DeriveConfig{Local: &Document{CodeChallengeMethodsSupported: []string{"S256"}}})
	if err != nil || !slices.Contains(d.Capabilities, "launch-standalone") {
		t.Fatalf("%v %v", d, err)
	}
}

// listMember returns a list member of d by its JSON name.
func listMember(d *Document, name string) []string {
	switch name {
	case "response_types_supported":
		return d.ResponseTypesSupported
	case "token_endpoint_auth_methods_supported":
		return d.TokenEndpointAuthMethodsSupported
	case "token_endpoint_auth_signing_alg_values_supported":
		return d.TokenEndpointAuthSigningAlgValuesSupported
	case "scopes_supported":
		return d.ScopesSupported
	case "grant_types_supported":
		return d.GrantTypesSupported
	case "code_challenge_methods_supported":
		return d.CodeChallengeMethodsSupported
	}
	panic(name)
}

func problemStrings(ps Problems) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	return out
}
