package discovery

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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
		{"no resource", func(m *ProtectedResourceMetadata) { m.Resource = "" }, SeverityError, "resource", ErrMissing},
		{"relative resource", func(m *ProtectedResourceMetadata) { m.Resource = "/fhir" }, SeverityError, "resource", ErrRelativeURL},
		{"resource with fragment", func(m *ProtectedResourceMetadata) { m.Resource = "https://h/fhir#a" }, SeverityError, "resource", ErrInvalidURL},
		{"http resource", func(m *ProtectedResourceMetadata) { m.Resource = "http://h/fhir" }, SeverityWarning, "resource", ErrInsecureURL},
		{"resource with query", func(m *ProtectedResourceMetadata) { m.Resource = "https://h/fhir?t=1" }, SeverityWarning, "resource", ErrInvalidURL},
		{"no servers", func(m *ProtectedResourceMetadata) { m.AuthorizationServers = nil }, SeverityWarning, "authorization_servers", ErrMissing},
		{"relative server", func(m *ProtectedResourceMetadata) { m.AuthorizationServers = []string{"as"} }, SeverityError, "authorization_servers[0]", ErrRelativeURL},
		{"no scopes", func(m *ProtectedResourceMetadata) { m.ScopesSupported = nil }, SeverityWarning, "scopes_supported", ErrMissing},
		{"query bearer", func(m *ProtectedResourceMetadata) { m.BearerMethodsSupported = []string{"header", "query"} }, SeverityWarning, "bearer_methods_supported[1]", ErrUnknownValue},
		{"unknown bearer", func(m *ProtectedResourceMetadata) { m.BearerMethodsSupported = []string{"cookie"} }, SeverityError, "bearer_methods_supported[0]", ErrUnknownValue},
		{"alg none", func(m *ProtectedResourceMetadata) { m.ResourceSigningAlgValuesSupported = []string{"none"} }, SeverityError, "resource_signing_alg_values_supported[0]", ErrForbiddenValue},
		{"relative documentation", func(m *ProtectedResourceMetadata) { m.ResourceDocumentation = "docs" }, SeverityError, "resource_documentation", ErrRelativeURL},
		{"reserved extension", func(m *ProtectedResourceMetadata) {
			m.Extensions = map[string]json.RawMessage{"resource": json.RawMessage(`"https://evil"`)}
		}, SeverityError, "resource", ErrReservedExtension},
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
			if (tt.s == SeverityError) != errors.Is(err, tt.err) {
				t.Fatalf("NewProtectedResourceHandler: %v", err)
			}
		})
	}
}

func TestProtectedResourceMetadataURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://h/apis/fhir", "https://h/.well-known/oauth-protected-resource/apis/fhir"},
		{"https://h/apis/fhir/", "https://h/.well-known/oauth-protected-resource/apis/fhir"},
		{"https://h", "https://h/.well-known/oauth-protected-resource"},
		{"https://h:8443/", "https://h:8443/.well-known/oauth-protected-resource"},
		{"https://h/a%20b", "https://h/.well-known/oauth-protected-resource/a%20b"},
	}
	for _, tt := range tests {
		got, err := ProtectedResourceMetadataURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := ProtectedResourceMetadataURL("/fhir"); !errors.Is(err, ErrRelativeURL) {
		t.Errorf("relative: %v", err)
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
	m2 := m.Clone()
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

func TestProtectedResourcePaths(t *testing.T) {
	tests := []struct {
		base string
		want []string
	}{
		{"https://h/fhir", []string{"/.well-known/oauth-protected-resource/fhir", "/fhir/.well-known/oauth-protected-resource"}},
		{"https://h/apis/fhir/", []string{"/.well-known/oauth-protected-resource/apis/fhir", "/apis/fhir/.well-known/oauth-protected-resource"}},
		{"https://h", []string{"/.well-known/oauth-protected-resource"}},
		{"https://h/", []string{"/.well-known/oauth-protected-resource"}},
		{"http://127.0.0.1:8080/fhir", []string{"/.well-known/oauth-protected-resource/fhir", "/fhir/.well-known/oauth-protected-resource"}},
	}
	for _, tt := range tests {
		got, err := ProtectedResourcePaths(tt.base)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, %v; want %q", tt.base, got, err, tt.want)
		}
		// The first path is the one RFC 9728 clients compute.
		u, _ := ProtectedResourceMetadataURL(tt.base)
		if !strings.HasSuffix(u, got[0]) {
			t.Errorf("%s: %q is not the path of %q", tt.base, got[0], u)
		}
	}
	for _, bad := range []string{"/fhir", "", "https://h/fhir?x=1", "https://h/fhir?", "https://h/fhir#f", "::"} {
		if _, err := ProtectedResourcePaths(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// recordMux records the patterns registered.
type recordMux map[string]http.Handler

func (m recordMux) Handle(p string, h http.Handler) { m[p] = h }

func TestMountProtectedResource(t *testing.T) {
	m := validDocument().ProtectedResource("https://h/fhir")
	h, err := NewProtectedResourceHandler(m, HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.Handle("/fhir/", fhir)
	paths, err := MountProtectedResource(mux, "https://h/fhir", h)
	if err != nil || len(paths) != 2 {
		t.Fatalf("%q %v", paths, err)
	}
	for path, want := range map[string]int{
		"/.well-known/oauth-protected-resource/fhir":   200,
		"/fhir/.well-known/oauth-protected-resource":   200,
		"/.well-known/oauth-protected-resource":        404, // another resource's location
		"/.well-known/oauth-protected-resource/fhir/x": 404,
		"/.well-known/oauth-protected-resource/fhirx":  404,
		"/fhir/Patient/1": http.StatusTeapot,
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
			continue
		}
		if want == 200 {
			var got ProtectedResourceMetadata
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Resource != "https://h/fhir" ||
				rec.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("%s: %v %+v %v", path, err, got, rec.Header())
			}
		}
	}

	for _, tt := range []struct {
		name string
		mux  Mux
		base string
		h    http.Handler
	}{
		{"nil mux", nil, "https://h/fhir", h},
		{"nil handler", recordMux{}, "https://h/fhir", nil},
		{"relative base", recordMux{}, "/fhir", h},
		{"pattern characters", recordMux{}, "https://h/{tenant}/fhir", h},
		{"escapes", recordMux{}, "https://h/a%20b", h},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := MountProtectedResource(tt.mux, tt.base, tt.h); err == nil {
				t.Fatal("accepted")
			}
			if rm, ok := tt.mux.(recordMux); ok && len(rm) != 0 {
				t.Fatalf("registered %v before failing", rm)
			}
		})
	}
	root := recordMux{}
	if paths, err := MountProtectedResource(root, "https://h", h); err != nil || len(root) != 1 || root[ProtectedResourcePath] == nil || len(paths) != 1 {
		t.Fatalf("root base: %q %v %v", paths, err, root)
	}
}
