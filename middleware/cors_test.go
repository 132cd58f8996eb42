package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCORS(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	preflight := func(h http.Handler, origin, method, headers string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("OPTIONS", testBase+"/Observation", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			r.Header.Set("Access-Control-Request-Headers", headers)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	listed := CORS(CORSConfig{AllowedOrigins: []string{"https://app.example.org"}})(next)
	anyOrigin := CORS(CORSConfig{AllowedOrigins: []string{"*"}})(next)
	off := CORS(CORSConfig{})(next)
	tests := []struct {
		name           string
		h              http.Handler
		origin, method string
		headers        string
		status         int
		allowOrigin    string
	}{
		{"listed origin", listed, "https://app.example.org", "GET", "Authorization, Content-Type", 204, "https://app.example.org"},
		{"listed origin DELETE", listed, "https://app.example.org", "DELETE", "", 204, "https://app.example.org"},
		{"other origin", listed, "https://evil.example.org", "GET", "", 403, ""},
		{"origin prefix", listed, "https://app.example.org.evil.example", "GET", "", 403, ""},
		{"unknown method", listed, "https://app.example.org", "TRACE", "", 403, ""},
		{"partial method name", listed, "https://app.example.org", "ET", "", 403, ""},
		{"unknown header", listed, "https://app.example.org", "GET", "X-Secret", 403, ""},
		{"any origin", anyOrigin, "https://whoever.example", "POST", "content-type", 204, "*"},
		{"CORS off", off, "https://app.example.org", "GET", "", 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := preflight(tc.h, tc.origin, tc.method, tc.headers)
			if rec.Code != tc.status || rec.Header().Get("Access-Control-Allow-Origin") != tc.allowOrigin {
				t.Fatalf("status %d, allow-origin %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
			}
			if rec.Code == 299 {
				t.Fatal("preflight reached the handler")
			}
		})
	}

	t.Run("actual request", func(t *testing.T) {
		r := httptest.NewRequest("GET", testBase+"/Observation", nil)
		r.Header.Set("Origin", "https://app.example.org")
		rec := httptest.NewRecorder()
		listed.ServeHTTP(rec, r)
		if rec.Code != 299 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.org" || rec.Header().Get("Access-Control-Expose-Headers") == "" {
			t.Fatalf("%d %v", rec.Code, rec.Header())
		}
		r.Header.Set("Origin", "https://evil.example.org")
		rec = httptest.NewRecorder()
		listed.ServeHTTP(rec, r)
		if rec.Code != 299 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%d %v", rec.Code, rec.Header())
		}
	})

	t.Run("per client origins", func(t *testing.T) {
		cfg := CORSConfig{AllowedOrigins: []string{"*"}, AllowOriginForClient: func(origin, client string) bool {
			return client == "app" && origin == "https://app.example.org"
		}}
		h := CORS(cfg)(withToken(token("patient/*.rs", "123"), CORSForClient(cfg)(next)))
		for origin, want := range map[string]string{"https://app.example.org": "*", "https://other.example.org": ""} {
			r := httptest.NewRequest("GET", testBase+"/Observation", nil)
			r.Header.Set("Origin", origin)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
				t.Errorf("%s: allow-origin %q, want %q", origin, got, want)
			}
		}
	})
}
