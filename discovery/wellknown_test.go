package discovery

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestW9 covers vector W9: for a FHIR base with a path, the document is
// served at <base>/.well-known/smart-configuration (appended, contrary to
// RFC 5785 B.4), and nowhere else.
func TestW9(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	prm, err := NewProtectedResourceHandler(validDocument().ProtectedResource("https://h/apis/fhir"), HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	tests := []struct {
		name    string
		base    string
		path    string
		served  string // "smart", "prm" or "" (not served)
		wrapped int    // status through Wrap when not served
	}{
		{"W9 base with path", "https://h/apis/fhir", "/apis/fhir/.well-known/smart-configuration", "smart", 0},
		{"W9 base with trailing slash", "https://h/apis/fhir/", "/apis/fhir/.well-known/smart-configuration", "smart", 0},
		{"W9 root base", "https://h", "/.well-known/smart-configuration", "smart", 0},
		{"W9 root base with slash", "https://h/", "/.well-known/smart-configuration", "smart", 0},
		{"W9 not at the host root", "https://h/apis/fhir", "/.well-known/smart-configuration", "", http.StatusTeapot},
		{"W9 not under a parent", "https://h/apis/fhir", "/apis/.well-known/smart-configuration", "", http.StatusTeapot},
		{"W9 trailing slash on the document", "https://h/apis/fhir", "/apis/fhir/.well-known/smart-configuration/", "", http.StatusTeapot},
		{"W9 case matters", "https://h/apis/fhir", "/apis/fhir/.well-known/SMART-configuration", "", http.StatusTeapot},
		{"W9 FHIR request passes", "https://h/apis/fhir", "/apis/fhir/Patient/1", "", http.StatusTeapot},
		{"RFC 9728 appended", "https://h/apis/fhir", "/apis/fhir/.well-known/oauth-protected-resource", "prm", 0},
		{"RFC 9728 inserted", "https://h/apis/fhir", "/.well-known/oauth-protected-resource/apis/fhir", "prm", 0},
		{"RFC 9728 root", "https://h", "/.well-known/oauth-protected-resource", "prm", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wk, err := NewWellKnown(WellKnownConfig{BaseURL: tt.base, SMART: h, ProtectedResource: prm})
			if err != nil {
				t.Fatal(err)
			}
			w := serve(wk, http.MethodGet, tt.path, nil)
			ww := serve(wk.Wrap(next), http.MethodGet, tt.path, nil)
			switch tt.served {
			case "smart":
				if w.Code != 200 || w.Body.String() != string(h.Body()) || ww.Body.String() != string(h.Body()) {
					t.Fatalf("status %d, body %q", w.Code, w.Body.String())
				}
			case "prm":
				if w.Code != 200 || w.Body.String() != string(prm.Body()) || ww.Code != 200 {
					t.Fatalf("status %d, body %q", w.Code, w.Body.String())
				}
			default:
				if w.Code != http.StatusNotFound {
					t.Fatalf("ServeHTTP status %d, want 404", w.Code)
				}
				if ww.Code != tt.wrapped {
					t.Fatalf("Wrap status %d, want %d", ww.Code, tt.wrapped)
				}
			}
		})
	}
}

func TestNewWellKnownErrors(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	tests := []struct {
		name string
		cfg  WellKnownConfig
	}{
		{"no SMART handler", WellKnownConfig{BaseURL: "https://h/fhir"}},
		{"relative base", WellKnownConfig{BaseURL: "/fhir", SMART: h}},
		{"empty base", WellKnownConfig{SMART: h}},
		{"base with query", WellKnownConfig{BaseURL: "https://h/fhir?x=1", SMART: h}},
		{"base with fragment", WellKnownConfig{BaseURL: "https://h/fhir#x", SMART: h}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewWellKnown(tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestWellKnownPaths(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	wk, err := NewWellKnown(WellKnownConfig{BaseURL: "https://h/fhir", SMART: h})
	if err != nil {
		t.Fatal(err)
	}
	if got := wk.Paths(); !slices.Equal(got, []string{"/fhir/.well-known/smart-configuration"}) {
		t.Fatalf("Paths() = %q", got)
	}
	// Without a protected-resource handler its paths are not served.
	if w := serve(wk, http.MethodGet, "/.well-known/oauth-protected-resource/fhir", nil); w.Code != http.StatusNotFound {
		t.Fatalf("status %d", w.Code)
	}
	// Mounted under a prefix with a mux: the handler ignores the path.
	mux := http.NewServeMux()
	mux.Handle("GET /tenant/{id}/fhir/.well-known/smart-configuration", h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/tenant/7/fhir/.well-known/smart-configuration", nil))
	if rec.Code != 200 || rec.Body.String() != string(h.Body()) {
		t.Fatalf("mux mount: %d", rec.Code)
	}
}
