package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
	listed := corsMiddleware(CORSConfig{AllowedOrigins: []string{"https://app.example.org"}})(next)
	anyOrigin := corsMiddleware(CORSConfig{AllowedOrigins: []string{"*"}})(next)
	off := corsMiddleware(CORSConfig{})(next)
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
		h := corsMiddleware(cfg)(withToken(token("patient/*.rs", "123"), corsForClient(cfg)(next)))
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

func TestValidateOrigin(t *testing.T) {
	good := []string{
		"https://app.example.org",
		"http://127.0.0.1:9000",
		"http://localhost:9000",
		"https://app.example.org:8443",
		"https://xn--bcher-kva.example",
		"http://[::1]:8080",
		"https://[2001:db8::1]",
		"https://a_b.example.org",
		"https://h:65535",
		"https://h:1",
	}
	for _, o := range good {
		if err := validateOrigin(o); err != nil {
			t.Errorf("%q refused: %v", o, err)
		}
	}
	bad := []struct{ origin, why string }{
		{"", "empty"},
		{"*", "wildcard"},
		{"null", "null"},
		{"NULL", "null"},
		{"https://app.example.org/", "trailing slash"},
		{"https://app.example.org/app", "path"},
		{"https://app.example.org?x=1", "query"},
		{"https://app.example.org#f", "fragment"},
		{"https://user@app.example.org", "user information"},
		{"https://user:pw@app.example.org", "user information"},
		{"https://*.example.org", "wildcard"},
		{"https://app.*", "wildcard"},
		{"app.example.org", "no scheme"},
		{"//app.example.org", "no scheme"},
		{"ftp://app.example.org", "scheme"},
		{"chrome-extension://abc", "scheme"},
		{"HTTPS://app.example.org", "lower-case scheme"},
		{"https://App.Example.org", "lower-case host"},
		{"https://app.example.org:443", "default port"},
		{"http://app.example.org:80", "default port"},
		{"https://app.example.org:", "empty port"},
		{"https://app.example.org:0", "port 0"},
		{"https://app.example.org:08443", "leading zero"},
		{"https://app.example.org:65536", "port too large"},
		{"https://app.example.org:+443", "signed port"},
		{"https://app.example.org:x", "port not a number"},
		{"https://", "no host"},
		{"https://:8443", "no host"},
		{"https://app..example.org", "empty label"},
		{"https://app.example.org.", "trailing dot"},
		{"https://.example.org", "leading dot"},
		{"https://bücher.example", "non-ASCII"},
		{" https://app.example.org", "space"},
		{"https://app.example.org ", "space"},
		{"https://app.example.org\t", "control"},
		{"https://app\\.example.org", "backslash"},
		{"https://[::1", "unterminated IPv6"},
		{"https://[::1]x", "junk after IPv6"},
		{"https://[::1]:", "empty port"},
		{"https://[::1]:443", "default port"},
		{"https://[0:0::1]", "non-canonical IPv6"},
		{"https://[::FFFF:1.2.3.4]", "non-canonical IPv6"},
		{"https://[fe80::1%25eth0]", "zone"},
		{"https://[127.0.0.1]", "IPv4 in brackets"},
		{"https://127.1", "short IPv4"},
		{"https://127.000.0.1", "IPv4 with zeros"},
		{"https://a:b:c", "colons"},
		{"https://" + strings.Repeat("a", 64) + ".example", "label too long"},
		{"https://" + strings.Repeat("a.", 130) + "example", "too long"},
	}
	for _, tt := range bad {
		err := validateOrigin(tt.origin)
		if err == nil {
			t.Errorf("%q (%s) accepted", tt.origin, tt.why)
			continue
		}
		if !errors.Is(err, errInvalidOrigin) || !strings.Contains(err.Error(), strconv.Quote(tt.origin)) {
			t.Errorf("%q: error %v does not wrap ErrInvalidOrigin or name the value", tt.origin, err)
		}
	}
	// The error says what to write instead when it can.
	for origin, hint := range map[string]string{
		"https://app.example.org/":    "write https://app.example.org",
		"https://app.example.org:443": "write https://app.example.org",
		"https://[0:0::1]":            "[::1]",
	} {
		if err := validateOrigin(origin); err == nil || !strings.Contains(err.Error(), hint) {
			t.Errorf("%q: %v does not say %q", origin, err, hint)
		}
	}
}

func TestValidateOrigins(t *testing.T) {
	for _, ok := range [][]string{nil, {}, {"*"}, {"https://a.example.org", "http://localhost:9000"}} {
		if err := validateOrigins(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"*", "https://a.example.org"}, {"https://a.example.org", "*"}, {"*", "*"},
		{"https://a.example.org", "https://b.example.org/"}, {""}} {
		if err := validateOrigins(bad); !errors.Is(err, errInvalidOrigin) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	err := validateOrigins([]string{"https://a.example.org", "https://b.example.org/app"})
	if err == nil || !strings.Contains(err.Error(), `"https://b.example.org/app"`) {
		t.Fatalf("error does not name the bad entry: %v", err)
	}
}

func TestParseOrigins(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{" , ,", nil, false},
		{" https://a.example.org, ,https://b.example.org:8443 ", []string{"https://a.example.org", "https://b.example.org:8443"}, false},
		{"*", []string{"*"}, false},
		{" * ", []string{"*"}, false},
		{"https://a.example.org,*", nil, true},
		{"https://a.example.org/", nil, true},
		{"https://a.example.org;https://b.example.org", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseOrigins(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, %v", tt.in, got, err)
		}
	}
}

// TestCORSValidatedOriginsMatchBrowsers: an origin ValidateOrigin accepts
// is what a browser sends, so an allowed origin answers its own requests,
// and a variant spelling never does.
func TestCORSValidatedOriginsMatchBrowsers(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := corsMiddleware(CORSConfig{AllowedOrigins: []string{"http://localhost:9000"}})(next)
	for origin, want := range map[string]string{
		"http://localhost:9000":  "http://localhost:9000",
		"http://localhost:9000/": "",
		"http://LOCALHOST:9000":  "",
		"http://localhost:09000": "",
		"http://localhost":       "",
		"null":                   "",
	} {
		r := httptest.NewRequest("GET", testBase+"/Observation", nil)
		r.Header.Set("Origin", origin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("%q: allow-origin %q, want %q", origin, got, want)
		}
	}
}

// FuzzValidateOrigin: the validator never panics, and every origin it
// accepts is a canonical scheme://host[:port] that net/url reads back
// with nothing else, as browsers serialise it.
func FuzzValidateOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.org", "http://[::1]:8080", "http://127.0.0.1:9000", "*", "null",
		"https://a.example.org/", "https://a:443", "https://[::ffff:1.2.3.4]", "http://1.2.3", "https://a.b:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := validateOrigin(s)
		if err != nil {
			if !errors.Is(err, errInvalidOrigin) {
				t.Fatalf("error %v does not wrap ErrInvalidOrigin", err)
			}
			return
		}
		u, perr := url.Parse(s)
		if perr != nil {
			t.Fatalf("accepted %q does not parse: %v", s, perr)
		}
		if u.Scheme+"://"+u.Host != s || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("accepted %q is not scheme://host[:port]: %#v", s, u)
		}
		if strings.ToLower(s) != s {
			t.Fatalf("accepted %q is not lower case", s)
		}
		if p := u.Port(); p == "443" && u.Scheme == "https" || p == "80" && u.Scheme == "http" || strings.HasPrefix(p, "0") {
			t.Fatalf("accepted %q has a non-canonical port", s)
		}
		if validateOrigins([]string{s}) != nil {
			t.Fatal("ValidateOrigins disagrees")
		}
		if got, err := ParseOrigins(" " + s + " ,"); err != nil || len(got) != 1 || got[0] != s {
			t.Fatalf("ParseOrigins(%q) = %q, %v", s, got, err)
		}
	})
}
