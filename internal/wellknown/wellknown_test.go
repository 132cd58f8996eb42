package wellknown

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metadata")) })
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
		if want == 200 && rec.Body.String() != "metadata" {
			t.Errorf("%s: %q", path, rec.Body)
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
