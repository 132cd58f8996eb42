package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestFetchDocument: FetchDocument reads a server's SMART configuration
// and reports the problems of the response and of the document.
func TestFetchDocument(t *testing.T) {
	good, _ := json.Marshal(validDocument())
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   []string // Field of each problem expected, in order
	}{
		{"clean", map[string]string{"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}, string(good), nil},
		{"charset parameter", map[string]string{"Content-Type": "application/json; charset=utf-8", "Access-Control-Allow-Origin": "*"}, string(good), nil},
		{"origin echoed", map[string]string{"Content-Type": "application/json", "Access-Control-Allow-Origin": lintOrigin}, string(good), nil},
		{"fhir+json", map[string]string{"Content-Type": "application/fhir+json", "Access-Control-Allow-Origin": "*"}, string(good), []string{"Content-Type"}},
		{"no CORS", map[string]string{"Content-Type": "application/json"}, string(good), []string{"Access-Control-Allow-Origin"}},
		{"other origin", map[string]string{"Content-Type": "application/json", "Access-Control-Allow-Origin": "https://ehr.example.org"}, string(good), []string{"Access-Control-Allow-Origin"}},
		{"document problems", map[string]string{"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"},
			strings.Replace(string(good), `"S256"`, `"s256"`, 1), []string{"code_challenge_methods_supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotOrigin atomic.Value
			gotOrigin.Store("")
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/fhir/.well-known/smart-configuration" {
					http.NotFound(w, r)
					return
				}
				gotOrigin.Store(r.Header.Get("Origin"))
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			for _, base := range []string{srv.URL + "/fhir", srv.URL + "/fhir/"} {
				doc, ps, err := FetchDocument(context.Background(), base, FetchConfig{Client: srv.Client()})
				if err != nil {
					t.Fatal(err)
				}
				if doc == nil || doc.TokenEndpoint != validDocument().TokenEndpoint {
					t.Fatalf("document %+v", doc)
				}
				var fields []string
				for _, p := range ps {
					fields = append(fields, p.Field)
				}
				if strings.Join(fields, ",") != strings.Join(tt.want, ",") {
					t.Fatalf("problems %v, want fields %v", ps, tt.want)
				}
				for _, p := range ps {
					if p.Severity != SeverityError {
						t.Fatalf("%v is not an error", p)
					}
				}
			}
			if gotOrigin.Load() != lintOrigin {
				t.Fatalf("Origin %q", gotOrigin)
			}
		})
	}
}

func TestFetchDocumentFailures(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	var ans atomic.Pointer[answer]
	ans.Store(&answer{200, ""})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := ans.Load()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	defer srv.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	tests := []struct {
		name       string
		base       string
		body       string
		status     int
		wantStatus int
		want       string
	}{
		{"404", srv.URL, "{}", 404, 404, "unexpected HTTP status"},
		{"null", srv.URL, "null", 200, 200, "not a JSON object"},
		{"array", srv.URL, "[]", 200, 200, "not a JSON object"},
		{"empty", srv.URL, "", 200, 200, "not a JSON object"},
		{"wrong member type", srv.URL, `{"capabilities":"launch-ehr"}`, 200, 200, "cannot unmarshal"},
		{"trailing data", srv.URL, `{} {}`, 200, 200, "invalid character"},
		{"http base", plain.URL, "{}", 200, 0, "not https"},
		{"relative base", "/fhir", "{}", 200, 0, "not absolute"},
		{"base with query", srv.URL + "/fhir?x=1", "{}", 200, 0, "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans.Store(&answer{tt.status, tt.body})
			doc, ps, err := FetchDocument(context.Background(), tt.base, FetchConfig{Client: srv.Client()})
			var fe *FetchError
			if doc != nil || ps != nil || !errors.As(err, &fe) {
				t.Fatalf("%+v %v %v, want a *FetchError", doc, ps, err)
			}
			if fe.StatusCode != tt.wantStatus || !strings.Contains(err.Error(), tt.want) || !strings.Contains(fe.URL, "/.well-known/smart-configuration") {
				t.Fatalf("%v (status %d), want %q and status %d", err, fe.StatusCode, tt.want, tt.wantStatus)
			}
		})
	}
	// InsecureAllowHTTPURLs lets a development server be checked.
	_, _, err := FetchDocument(context.Background(), plain.URL, FetchConfig{InsecureAllowHTTPURLs: true})
	var fe *FetchError
	if !errors.As(err, &fe) || fe.StatusCode != 404 {
		t.Fatalf("http with InsecureAllowHTTPURLs: %v", err)
	}
}
