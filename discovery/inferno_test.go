package discovery

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// infernoWellKnown applies the assertions of Inferno's SMART App Launch
// test kit to a well-known response (well_known_endpoint_test,
// well_known_capabilities_stu2_test, cors_well_known_endpoint_test; see
// the threat-model notes §4.1). It returns the failures and the warnings.
func infernoWellKnown(status int, header http.Header, body []byte, origin string) (failures, warnings []string) {
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
	if status != http.StatusOK {
		fail("status %d", status)
	}
	var config map[string]any
	if err := json.Unmarshal(body, &config); err != nil {
		fail("invalid JSON: %v", err)
		return failures, warnings
	}
	ct := header.Get("Content-Type")
	if ct == "" {
		fail("no Content-Type")
	} else if !strings.HasPrefix(ct, "application/json") {
		fail("Content-Type %q", ct)
	}
	if origin != "" {
		acao := header.Get("Access-Control-Allow-Origin")
		if acao != origin && acao != "*" {
			fail("Access-Control-Allow-Origin %q", acao)
		}
	}
	present := func(key string) bool {
		v, ok := config[key]
		switch x := v.(type) {
		case string:
			return ok && strings.TrimSpace(x) != ""
		case []any:
			return ok && len(x) > 0
		}
		return ok && v != nil
	}
	for key, kind := range map[string]string{
		"authorization_endpoint": "string", "token_endpoint": "string", "capabilities": "array",
		"grant_types_supported": "array", "code_challenge_methods_supported": "array",
	} {
		if !present(key) {
			fail("%s missing or blank", key)
			continue
		}
		switch config[key].(type) {
		case string:
			if kind != "string" {
				fail("%s is not an array", key)
			}
		case []any:
			if kind != "array" {
				fail("%s is not a string", key)
			}
		default:
			fail("%s has the wrong type", key)
		}
	}
	strs := func(key string) []string {
		var out []string
		arr, _ := config[key].([]any)
		for _, v := range arr {
			s, ok := v.(string)
			if !ok {
				fail("%s holds a non-string", key)
				continue
			}
			out = append(out, s)
		}
		return out
	}
	if !slices.Contains(strs("grant_types_supported"), "authorization_code") {
		fail("grant_types_supported lacks authorization_code")
	}
	pkce := strs("code_challenge_methods_supported")
	if !slices.Contains(pkce, "S256") {
		fail("code_challenge_methods_supported lacks S256")
	}
	if slices.Contains(pkce, "plain") {
		fail("code_challenge_methods_supported lists plain")
	}
	caps := strs("capabilities")
	if slices.Contains(caps, "sso-openid-connect") {
		if _, ok := config["issuer"].(string); !ok {
			fail("issuer missing with sso-openid-connect")
		}
		if _, ok := config["jwks_uri"].(string); !ok {
			fail("jwks_uri missing with sso-openid-connect")
		}
	} else if config["issuer"] != nil {
		warnings = append(warnings, "issuer present without sso-openid-connect")
	}
	return failures, warnings
}

// infernoSTU1Security applies the STU1 discovery group's checks: the
// CapabilityStatement's security extension names authorize and token, and
// the OAuth URLs agree with the well-known document.
func infernoSTU1Security(capabilityStatement, wellKnown []byte) []string {
	var failures []string
	var cs struct {
		Rest []struct {
			Security restSecurity `json:"security"`
		} `json:"rest"`
	}
	var wk map[string]any
	if err := json.Unmarshal(capabilityStatement, &cs); err != nil || len(cs.Rest) == 0 {
		return []string{"no rest in the CapabilityStatement"}
	}
	if err := json.Unmarshal(wellKnown, &wk); err != nil {
		return []string{"invalid well-known JSON"}
	}
	sec := cs.Rest[0].Security
	for _, need := range []string{"authorize", "token"} {
		if sec.oauthURI(need) == "" {
			failures = append(failures, "oauth-uris lacks "+need)
		}
	}
	for sub, key := range map[string]string{
		"authorize": "authorization_endpoint", "token": "token_endpoint", "register": "registration_endpoint",
		"manage": "management_endpoint", "introspect": "introspection_endpoint", "revoke": "revocation_endpoint",
	} {
		w, _ := wk[key].(string)
		if c := sec.oauthURI(sub); c != w {
			failures = append(failures, fmt.Sprintf("urls do not match: %s %q vs %s %q", sub, c, key, w))
		}
	}
	return failures
}

// TestInfernoDiscovery runs the Inferno assertions against the handler
// over real HTTP, for several documents the kit must accept.
func TestInfernoDiscovery(t *testing.T) {
	docs := map[string]*Document{
		"reference": validDocument(),
		"golden":    goldenDocument(),
		"no sso": func() *Document {
			d := validDocument()
			d.Capabilities = remove(d.Capabilities, "sso-openid-connect")
			d.Issuer = ""
			return d
		}(),
		"passthrough": func() *Document {
			d := validDocument()
			d.Capabilities = append(d.Capabilities, "context-passthrough-banner")
			return d
		}(),
	}
	for name, d := range docs {
		t.Run(name, func(t *testing.T) {
			h := mustHandler(t, d, HandlerConfig{})
			mux := http.NewServeMux()
			mux.Handle("/r4/.well-known/smart-configuration", h)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			const origin = "https://inferno.example.org"
			for _, accept := range []string{"application/json", "", "application/fhir+json"} {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/r4/.well-known/smart-configuration", nil)
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				req.Header.Set("Origin", origin)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				failures, warnings := infernoWellKnown(resp.StatusCode, resp.Header, body, origin)
				if len(failures) > 0 {
					t.Fatalf("Accept %q: Inferno would fail: %v", accept, failures)
				}
				if len(warnings) > 0 {
					t.Errorf("Inferno would warn: %v", warnings)
				}
			}

			// STU1: /metadata patched with the same document agrees with it.
			cs, err := PatchCapabilityStatement([]byte(`{"resourceType":"CapabilityStatement","rest":[{"mode":"server"}]}`), h.Document(), false)
			if err != nil {
				t.Fatal(err)
			}
			if failures := infernoSTU1Security(cs, h.body()); len(failures) > 0 {
				t.Fatalf("Inferno STU1 would fail: %v", failures)
			}
		})
	}
}

// TestInfernoAssertionsCanFail proves the assertions above detect the
// failures they are about, so that TestInfernoDiscovery means something.
func TestInfernoAssertionsCanFail(t *testing.T) {
	good, _ := json.Marshal(validDocument())
	jsonHdr := http.Header{"Content-Type": {"application/json"}, "Access-Control-Allow-Origin": {"*"}}
	if f, w := infernoWellKnown(200, jsonHdr, good, "https://x"); len(f)+len(w) != 0 {
		t.Fatalf("good document fails: %v %v", f, w)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name   string
		status int
		hdr    http.Header
		body   []byte
		want   string
	}{
		{"status", 404, jsonHdr, good, "status"},
		{"not JSON", 200, jsonHdr, []byte("<html>"), "invalid JSON"},
		{"fhir+json", 200, http.Header{"Content-Type": {"application/fhir+json"}}, good, "Content-Type"},
		{"no content type", 200, http.Header{}, good, "no Content-Type"},
		{"no CORS", 200, http.Header{"Content-Type": {"application/json"}}, good, "Access-Control-Allow-Origin"},
		{"no authorization_endpoint", 200, jsonHdr, edit(func(m map[string]any) { delete(m, "authorization_endpoint") }), "authorization_endpoint missing"},
		{"blank token_endpoint", 200, jsonHdr, edit(func(m map[string]any) { m["token_endpoint"] = " " }), "token_endpoint missing"},
		{"capabilities a string", 200, jsonHdr, edit(func(m map[string]any) { m["capabilities"] = "launch-ehr" }), "capabilities is not an array"},
		{"capabilities with a number", 200, jsonHdr, edit(func(m map[string]any) { m["capabilities"] = []any{"launch-ehr", 1} }), "non-string"},
		{"no authorization_code", 200, jsonHdr, edit(func(m map[string]any) { m["grant_types_supported"] = []any{"client_credentials"} }), "authorization_code"},
		{"plain", 200, jsonHdr, edit(func(m map[string]any) { m["code_challenge_methods_supported"] = []any{"S256", "plain"} }), "plain"},
		{"no S256", 200, jsonHdr, edit(func(m map[string]any) { m["code_challenge_methods_supported"] = []any{"S512"} }), "S256"},
		{"sso without issuer", 200, jsonHdr, edit(func(m map[string]any) { delete(m, "issuer") }), "issuer missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := infernoWellKnown(tt.status, tt.hdr, tt.body, "https://x")
			if !strings.Contains(strings.Join(f, "|"), tt.want) {
				t.Fatalf("failures %v, want one about %q", f, tt.want)
			}
		})
	}
	t.Run("issuer without sso warns", func(t *testing.T) {
		b := edit(func(m map[string]any) {
			caps := m["capabilities"].([]any)
			m["capabilities"] = slices.DeleteFunc(caps, func(c any) bool { return c == "sso-openid-connect" })
		})
		if _, w := infernoWellKnown(200, jsonHdr, b, ""); len(w) == 0 {
			t.Fatal("no warning")
		}
	})
	t.Run("STU1 mismatch", func(t *testing.T) {
		other := validDocument()
		other.TokenEndpoint = "https://elsewhere.example.org/token"
		cs, _ := PatchCapabilityStatement([]byte(`{"resourceType":"CapabilityStatement"}`), other, false)
		if f := infernoSTU1Security(cs, good); !strings.Contains(strings.Join(f, "|"), "token") {
			t.Fatalf("mismatch not found: %v", f)
		}
		noSec := []byte(`{"resourceType":"CapabilityStatement","rest":[{"mode":"server"}]}`)
		if f := infernoSTU1Security(noSec, good); !strings.Contains(strings.Join(f, "|"), "lacks authorize") {
			t.Fatalf("missing oauth-uris not found: %v", f)
		}
	})
}
