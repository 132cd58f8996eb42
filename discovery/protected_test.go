package discovery

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestProtectedResourceFromDocument(t *testing.T) {
	d := validDocument()
	m := d.ProtectedResource("https://fhir.example.org/r4")
	if m.Resource != "https://fhir.example.org/r4" || len(m.AuthorizationServers) != 1 || m.AuthorizationServers[0] != d.Issuer {
		t.Fatalf("metadata %+v", m)
	}
	if len(m.BearerMethodsSupported) != 1 || m.BearerMethodsSupported[0] != "header" || len(m.ScopesSupported) != len(d.ScopesSupported) {
		t.Fatalf("metadata %+v", m)
	}
	m = d.ProtectedResource("https://fhir.example.org/r4", "https://as1.example.org", "https://as2.example.org")
	if len(m.AuthorizationServers) != 2 || m.AuthorizationServers[0] != "https://as1.example.org" {
		t.Fatalf("explicit servers ignored: %v", m.AuthorizationServers)
	}
	d.Issuer = ""
	if m := d.ProtectedResource("https://fhir.example.org/r4"); len(m.AuthorizationServers) != 0 {
		t.Fatalf("servers invented: %v", m.AuthorizationServers)
	}
}

func TestProtectedResourceValidate(t *testing.T) {
	base := func() *ProtectedResourceMetadata {
		return validDocument().ProtectedResource("https://fhir.example.org/r4")
	}
	if ps := base().Validate(); len(ps) != 0 {
		t.Fatalf("problems in the reference metadata: %v", ps)
	}
	tests := []struct {
		name  string
		edit  func(m *ProtectedResourceMetadata)
		s     Severity
		field string
		err   error
	}{
		{"no resource", func(m *ProtectedResourceMetadata) { m.Resource = "" }, SeverityError, "resource", errMissing},
		{"relative resource", func(m *ProtectedResourceMetadata) { m.Resource = "/fhir" }, SeverityError, "resource", errRelativeURL},
		{"resource with fragment", func(m *ProtectedResourceMetadata) { m.Resource = "https://h/fhir#a" }, SeverityError, "resource", errInvalidURL},
		{"http resource", func(m *ProtectedResourceMetadata) { m.Resource = "http://h/fhir" }, SeverityWarning, "resource", errInsecureURL},
		{"resource with query", func(m *ProtectedResourceMetadata) { m.Resource = "https://h/fhir?t=1" }, SeverityWarning, "resource", errInvalidURL},
		{"no servers", func(m *ProtectedResourceMetadata) { m.AuthorizationServers = nil }, SeverityWarning, "authorization_servers", errMissing},
		{"relative server", func(m *ProtectedResourceMetadata) { m.AuthorizationServers = []string{"as"} }, SeverityError, "authorization_servers[0]", errRelativeURL},
		{"no scopes", func(m *ProtectedResourceMetadata) { m.ScopesSupported = nil }, SeverityWarning, "scopes_supported", errMissing},
		{"query bearer", func(m *ProtectedResourceMetadata) { m.BearerMethodsSupported = []string{"header", "query"} }, SeverityWarning, "bearer_methods_supported[1]", errUnknownValue},
		{"unknown bearer", func(m *ProtectedResourceMetadata) { m.BearerMethodsSupported = []string{"cookie"} }, SeverityError, "bearer_methods_supported[0]", errUnknownValue},
		{"alg none", func(m *ProtectedResourceMetadata) { m.ResourceSigningAlgValuesSupported = []string{"none"} }, SeverityError, "resource_signing_alg_values_supported[0]", errForbiddenValue},
		{"relative documentation", func(m *ProtectedResourceMetadata) { m.ResourceDocumentation = "docs" }, SeverityError, "resource_documentation", errRelativeURL},
		{"reserved extension", func(m *ProtectedResourceMetadata) {
			m.Extensions = map[string]json.RawMessage{"resource": json.RawMessage(`"https://evil"`)}
		}, SeverityError, "resource", errReservedExtension},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.edit(m)
			ps := m.Validate()
			if !hasProblem(ps, tt.s, tt.field, tt.err) {
				t.Fatalf("want %v %s %v, got %v", tt.s, tt.field, tt.err, ps)
			}
			_, err := NewProtectedResourceHandler(m, HandlerConfig{})
			if (tt.s == SeverityError) != is(err, tt.err) {
				t.Fatalf("NewProtectedResourceHandler: %v", err)
			}
		})
	}
}

func TestProtectedResourceHandler(t *testing.T) {
	m := validDocument().ProtectedResource("https://fhir.example.org/r4")
	m.Extensions = map[string]json.RawMessage{"x_vendor": json.RawMessage(`true`)}
	h, err := NewProtectedResourceHandler(m, HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(h, http.MethodGet, "/", map[string]string{"Accept": "text/html"})
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("status %d headers %v", w.Code, w.Header())
	}
	var back ProtectedResourceMetadata
	if err := json.Unmarshal(w.Body.Bytes(), &back); err != nil || back.Resource != m.Resource || string(back.Extensions["x_vendor"]) != "true" {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	if w := serve(h, http.MethodPost, "/", nil); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
	if w := serve(h, http.MethodGet, "/", map[string]string{"If-None-Match": w.Header().Get("ETag")}); w.Code != http.StatusNotModified {
		t.Fatalf("conditional: %d", w.Code)
	}
	m2 := m.clone()
	m2.ScopesSupported = []string{"patient/*.rs"}
	if err := h.Update(m2); err != nil {
		t.Fatal(err)
	}
	if got := h.Metadata().ScopesSupported; len(got) != 1 {
		t.Fatalf("update not served: %v", got)
	}
	if err := h.Update(&ProtectedResourceMetadata{}); err == nil {
		t.Fatal("invalid update accepted")
	}
	if _, err := NewProtectedResourceHandler(nil, HandlerConfig{}); err == nil {
		t.Fatal("nil accepted")
	}
}
