package middleware

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// transportCase is one request shape.
type transportCase struct {
	name   string
	req    func(tok string) *http.Request
	cfg    func(*AuthConfig)
	status int
	code   string // expected error= value; "" means no error parameter
	check  func(t *testing.T, seen *http.Request)
}

func TestTokenTransport(t *testing.T) {
	testKeys(t)
	get := func(h ...string) func(string) *http.Request {
		return func(tok string) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "https://fhir.example.org/r4/Observation?code=1", nil)
			for i := 0; i+1 < len(h); i += 2 {
				r.Header.Add(h[i], strings.ReplaceAll(h[i+1], "TOK", tok))
			}
			return r
		}
	}
	form := func(body string, h ...string) func(string) *http.Request {
		return func(tok string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "https://fhir.example.org/r4/Observation/_search", strings.NewReader(strings.ReplaceAll(body, "TOK", tok)))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for i := 0; i+1 < len(h); i += 2 {
				r.Header.Add(h[i], strings.ReplaceAll(h[i+1], "TOK", tok))
			}
			return r
		}
	}
	query := func(q string, h ...string) func(string) *http.Request {
		return func(tok string) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "https://fhir.example.org/r4/Observation?"+strings.ReplaceAll(q, "TOK", tok), nil)
			for i := 0; i+1 < len(h); i += 2 {
				r.Header.Add(h[i], strings.ReplaceAll(h[i+1], "TOK", tok))
			}
			return r
		}
	}
	formOn := func(c *AuthConfig) { c.AllowFormBody = true }
	queryOn := func(c *AuthConfig) { c.AllowQuery = true }
	cases := []transportCase{
		{name: "no credentials", req: get(), status: 401},
		{name: "Basic scheme is no bearer token", req: get("Authorization", "Basic dXNlcjpwYXNz"), status: 401},
		{name: "Bearer", req: get("Authorization", "Bearer TOK"), status: 200},
		{name: "bearer lower case", req: get("Authorization", "bearer TOK"), status: 200},
		{name: "BEARER upper case", req: get("Authorization", "BEARER TOK"), status: 200},
		{name: "several spaces", req: get("Authorization", "Bearer   TOK"), status: 200},
		{name: "two Authorization headers", req: get("Authorization", "Bearer TOK", "Authorization", "Bearer TOK"), status: 400, code: "invalid_request"},
		{name: "Bearer without token", req: get("Authorization", "Bearer"), status: 400, code: "invalid_request"},
		{name: "Bearer and spaces", req: get("Authorization", "Bearer    "), status: 400, code: "invalid_request"},
		{name: "two tokens", req: get("Authorization", "Bearer TOK TOK"), status: 400, code: "invalid_request"},
		{name: "comma", req: get("Authorization", "Bearer TOK,x"), status: 400, code: "invalid_request"},
		{name: "quoted", req: get("Authorization", `Bearer "TOK"`), status: 400, code: "invalid_request"},
		{name: "= inside the token", req: get("Authorization", "Bearer a=b"), status: 400, code: "invalid_request"},
		{name: "too large", req: get("Authorization", "Bearer "+strings.Repeat("a", 17<<10)), status: 401, code: "invalid_token"},
		{name: "cookie jwt is never read", req: get("Cookie", "jwt=TOK; access_token=TOK"), status: 401},
		{name: "query disabled", req: query("access_token=TOK"), status: 401},
		{name: "form disabled", req: form("access_token=TOK"), status: 401},
		{name: "form", req: form("code=1&access_token=TOK&patient=2"), cfg: formOn, status: 200, check: func(t *testing.T, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if string(b) != "code=1&patient=2" {
				t.Errorf("handler body = %q, want the other parameters in order", b)
			}
		}},
		{name: "form with header", req: form("access_token=TOK", "Authorization", "Bearer TOK"), cfg: formOn, status: 400, code: "invalid_request"},
		{name: "form repeated", req: form("access_token=TOK&access_token=TOK"), cfg: formOn, status: 400, code: "invalid_request"},
		{name: "form empty access_token", req: form("access_token="), cfg: formOn, status: 400, code: "invalid_request"},
		{name: "form on GET is not read", req: func(tok string) *http.Request {
			r := form("access_token=TOK")(tok)
			r.Method = http.MethodGet
			return r
		}, cfg: formOn, status: 401},
		{name: "form with another media type", req: func(tok string) *http.Request {
			r := form("access_token=TOK")(tok)
			r.Header.Set("Content-Type", "application/fhir+json")
			return r
		}, cfg: formOn, status: 401},
		{name: "query", req: query("code=1&access_token=TOK&patient=2"), cfg: queryOn, status: 200, check: func(t *testing.T, r *http.Request) {
			if r.URL.RawQuery != "code=1&patient=2" {
				t.Errorf("handler query = %q, want access_token removed", r.URL.RawQuery)
			}
		}},
		{name: "query percent-encoded name", req: query("access%5Ftoken=TOK"), cfg: queryOn, status: 200},
		{name: "query with header", req: query("access_token=TOK", "Authorization", "Bearer TOK"), cfg: queryOn, status: 400, code: "invalid_request"},
		{name: "query repeated", req: query("access_token=TOK&access_token=TOK"), cfg: queryOn, status: 400, code: "invalid_request"},
		{name: "query and form", req: func(tok string) *http.Request {
			r := form("access_token=TOK")(tok)
			r.URL.RawQuery = "access_token=" + tok
			return r
		}, cfg: func(c *AuthConfig) { c.AllowQuery, c.AllowFormBody = true, true }, status: 400, code: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			a := newAuth(t, cfg)
			tok := keyRS.token(validClaims(), nil)
			var seen *http.Request
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r; w.WriteHeader(200) })
			w := httptest.NewRecorder()
			a.Handler(h).ServeHTTP(w, tc.req(tok))
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				if seen != nil {
					t.Fatal("handler called")
				}
				checkChallenge(t, w, tc.code)
				if strings.Contains(w.Body.String(), tok[len(tok)-16:]) {
					t.Error("body echoes the token")
				}
				return
			}
			if seen == nil {
				t.Fatal("handler not called")
			}
			if tc.check != nil {
				tc.check(t, seen)
			}
		})
	}
}

// checkChallenge checks the RFC 6750 WWW-Authenticate header and the body.
func checkChallenge(t *testing.T, w *httptest.ResponseRecorder, code string) {
	t.Helper()
	www := w.Header().Get("WWW-Authenticate")
	if !strings.HasPrefix(www, `Bearer realm="`+testAudience+`"`) {
		t.Errorf("WWW-Authenticate = %q", www)
	}
	if code == "" && strings.Contains(www, "error=") {
		t.Errorf("WWW-Authenticate = %q, want no error parameter", www)
	}
	if code != "" && !strings.Contains(www, `error="`+code+`"`) {
		t.Errorf("WWW-Authenticate = %q, want error=%q", www, code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !strings.Contains(w.Body.String(), `"resourceType":"OperationOutcome"`) {
		t.Errorf("body = %s", w.Body)
	}
}

func TestTransportSecurity(t *testing.T) {
	testKeys(t)
	plain := func(remote string, xfp ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://fhir.example.org/r4/Patient/1", nil)
		r.RemoteAddr = remote
		for _, v := range xfp {
			r.Header.Add("X-Forwarded-Proto", v)
		}
		return r
	}
	cases := []struct {
		name    string
		req     *http.Request
		proxies []string
		noToken bool
		status  int
		code    string
	}{
		// RFC 6750 §3.1: invalid_request is a 400.
		{name: "plain HTTP refused", req: plain("192.0.2.1:1234"), status: 400, code: "invalid_request"},
		{name: "plain HTTP without token is just unauthenticated", req: plain("192.0.2.1:1234"), noToken: true, status: 401},
		{name: "TLS accepted", req: func() *http.Request { r := plain("192.0.2.1:1234"); r.TLS = &tls.ConnectionState{}; return r }(), status: 200},
		{name: "trusted proxy with https", req: plain("10.0.0.5:1234", "https"), proxies: []string{"10.0.0.0/8"}, status: 200},
		{name: "trusted proxy address with HTTPS", req: plain("[::1]:1234", "HTTPS"), proxies: []string{"::1"}, status: 200},
		{name: "trusted proxy with http", req: plain("10.0.0.5:1234", "http"), proxies: []string{"10.0.0.0/8"}, status: 400, code: "invalid_request"},
		{name: "trusted proxy with two values", req: plain("10.0.0.5:1234", "https", "http"), proxies: []string{"10.0.0.0/8"}, status: 400, code: "invalid_request"},
		{name: "untrusted client claims https", req: plain("192.0.2.1:1234", "https"), proxies: []string{"10.0.0.0/8"}, status: 400, code: "invalid_request"},
		{name: "no proxies configured", req: plain("10.0.0.5:1234", "https"), status: 400, code: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.InsecureAllowHTTP = false
			cfg.TrustedProxies = tc.proxies
			a := newAuth(t, cfg)
			if !tc.noToken {
				tc.req.Header.Set("Authorization", "Bearer "+keyRS.token(validClaims(), nil))
			}
			h := &recordHandler{}
			w := httptest.NewRecorder()
			a.Handler(h).ServeHTTP(w, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d", w.Code, tc.status)
			}
			if tc.status != 200 {
				if h.calls.Load() != 0 {
					t.Fatal("handler called")
				}
				checkChallenge(t, w, tc.code)
			}
		})
	}
	t.Run("bad proxy config", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.TrustedProxies = []string{"not-an-ip"}
		if _, err := NewAuthenticator(cfg); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestKeyURLsNeedHTTPS(t *testing.T) {
	for _, u := range []string{"http://as.example.org/jwks", "ftp://as.example.org/jwks", "/jwks", "https://user:pw@as.example.org/jwks"} {
		cfg := baseConfig(t)
		cfg.JWKS = nil
		cfg.JWKSURL = u
		if a, err := NewAuthenticator(cfg); err == nil || !strings.Contains(err.Error(), "JWKSURL") {
			if a != nil {
				a.Close()
			}
			t.Errorf("JWKSURL %q: err = %v", u, err)
		}
		cfg = baseConfig(t)
		cfg.JWKS = nil
		cfg.Introspection = &IntrospectionConfig{Endpoint: u, ClientID: "rs", ClientSecret: "s"}
		if _, err := NewAuthenticator(cfg); err == nil || !strings.Contains(err.Error(), "Introspection.Endpoint") {
			t.Errorf("introspection endpoint %q: err = %v", u, err)
		}
	}
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.JWKSURL = "http://127.0.0.1:1/jwks"
	cfg.InsecureAllowHTTPKeyURLs = true
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatalf("InsecureAllowHTTPKeyURLs: %v", err)
	}
	a.Close()
}

// FuzzIsBearer: isBearer is strings.EqualFold(s, "Bearer") for any string.
func FuzzIsBearer(f *testing.F) {
	for _, s := range []string{"Bearer", "bearer", "BEARER", "bEaReR", "Bearer ", "Beare", "Bearerr", "Basic", "", "Bearer\x00", "Bea\u212Aer", "Be\xc3\xa1rer", "B\x82arer"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isBearer(s), strings.EqualFold(s, "Bearer"); got != want {
			t.Fatalf("isBearer(%q) = %v, strings.EqualFold says %v", s, got, want)
		}
	})
}
