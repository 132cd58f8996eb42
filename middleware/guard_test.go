package middleware

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/discovery"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/internal/wellknown"
	"github.com/fhirguard/fhirguard/scope"
	"github.com/fhirguard/fhirguard/smarttest"
	"go.uber.org/goleak"
)

// newGuardStack builds the whole stack in front of the leaky server, with
// tokens from an in-process authorization server.
func newGuardStack(t *testing.T) (*smarttest.Server, *leakyFHIR, http.Handler) {
	t.Helper()
	as, err := smarttest.New(smarttest.Config{FHIRBase: testBase})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	b, _ := json.Marshal(as.SMARTConfiguration())
	var doc discovery.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	dh, err := discovery.NewHandler(&doc, discovery.HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{
		Authorize: AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()},
		Auth: AuthConfig{JWKSURL: as.SMARTConfiguration().JWKSURI, Issuers: []string{as.SMARTConfiguration().Issuer}, InsecureAllowHTTPKeyURLs: true,
			Logger: quietLogger()},
		CORS:               CORSConfig{AllowedOrigins: []string{"https://app.example.org"}},
		SMARTConfiguration: dh,
		PatchCapabilities:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	store := newLeaky()
	store.resources["CapabilityStatement/cs"] = map[string]any{"resourceType": "CapabilityStatement", "id": "cs",
		"rest": []any{map[string]any{"mode": "server"}}}
	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/metadata") {
			store.write(w, 200, store.resources["CapabilityStatement/cs"])
			return
		}
		store.ServeHTTP(w, r)
	})
	return as, store, g.Handler(fhir)
}

func TestGuardEndToEnd(t *testing.T) {
	as, store, h := newGuardStack(t)
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "launch/patient patient/Observation.rs", Patient: "123"})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, bearer string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", testBase+path, nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := get("/Observation/lab1", tok); rec.Code != 200 {
		t.Fatalf("own read: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/Observation/o456", tok); rec.Code != 404 {
		t.Fatalf("other patient's read: %d", rec.Code)
	}
	if rec := get("/Condition/c1", tok); rec.Code != 403 {
		t.Fatalf("ungranted type: %d", rec.Code)
	}
	rec := get("/Observation/lab1", "")
	if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Bearer realm="`+testBase+`"` {
		t.Fatalf("no token: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	if len(store.calls()) != 2 {
		t.Fatalf("handler calls %v", store.calls())
	}
	// Public endpoints need no token.
	rec = get("/.well-known/smart-configuration", "", "Accept", "text/html")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || !strings.Contains(rec.Body.String(), as.SMARTConfiguration().TokenEndpoint) {
		t.Fatalf("smart-configuration: %d %s", rec.Code, rec.Body)
	}
	rec = get("/metadata", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "SMART-on-FHIR") || !strings.Contains(rec.Body.String(), as.SMARTConfiguration().TokenEndpoint) {
		t.Fatalf("metadata: %d %s", rec.Code, rec.Body)
	}
	// CORS preflight is answered without a token and without the handler.
	before := len(store.calls())
	pre := httptest.NewRequest("OPTIONS", testBase+"/Observation/lab1", nil)
	pre.Header.Set("Origin", "https://app.example.org")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	pre.Header.Set("Access-Control-Request-Headers", "authorization")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.org" || len(store.calls()) != before {
		t.Fatalf("preflight: %d %v", rec.Code, rec.Header())
	}
	pre.Header.Set("Origin", "https://evil.example.org")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	if rec.Code != 403 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", rec.Code, rec.Header())
	}
	rec = get("/Observation/lab1", tok, "Origin", "https://app.example.org")
	if rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Fatalf("actual request CORS: %v", rec.Header())
	}
}

func TestNewGuardValidation(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("no base accepted")
	}
	if _, err := New(Config{Authorize: AuthorizeConfig{BaseURL: testBase}, PatchCapabilities: true}); err == nil {
		t.Fatal("PatchCapabilities without a document accepted")
	}
}

// TestGuardMetadataRefusesAccessTokens: /metadata is public, but a token in
// its URL would reach the server's logs: it is refused before the handler.
func TestGuardMetadataRefusesAccessTokens(t *testing.T) {
	_, _, h := newGuardStack(t)
	for _, q := range []string{"?access_token=abc", "?_format=json&Access_Token=abc", "?access%5Ftoken=abc"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testBase+"/metadata"+q, nil))
		// The handler would have answered 200 with its CapabilityStatement.
		if rec.Code != http.StatusBadRequest || strings.Contains(rec.Body.String(), "CapabilityStatement") || strings.Contains(rec.Body.String(), "abc") {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testBase+"/metadata?_format=json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("plain metadata: %d %s", rec.Code, rec.Body)
	}
}

// guardWith builds a Guard in front of a FHIR handler whose /metadata tries
// to allow credentials from some origin (the Guard must override it), with
// cfg edited by edit.
func guardWith(t *testing.T, edit func(cfg *Config, as *smarttest.Server)) (*Guard, *smarttest.Server, *leakyFHIR, http.Handler) {
	t.Helper()
	as, err := smarttest.New(smarttest.Config{FHIRBase: testBase})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	b, _ := json.Marshal(as.SMARTConfiguration())
	var doc discovery.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	dh, err := discovery.NewHandler(&doc, discovery.HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	prh, err := discovery.NewProtectedResourceHandler(doc.ProtectedResource(testBase, as.SMARTConfiguration().Issuer), discovery.HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Authorize: AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()},
		Auth: AuthConfig{JWKSURL: as.SMARTConfiguration().JWKSURI, Issuers: []string{as.SMARTConfiguration().Issuer}, InsecureAllowHTTPKeyURLs: true,
			Logger: quietLogger()},
		CORS:               CORSConfig{AllowedOrigins: []string{"https://app.example.org"}},
		SMARTConfiguration: dh,
		ProtectedResource:  prh,
		PatchCapabilities:  true,
	}
	if edit != nil {
		edit(&cfg, as)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	store := newLeaky()
	store.resources["CapabilityStatement/cs"] = map[string]any{"resourceType": "CapabilityStatement", "id": "cs",
		"rest": []any{map[string]any{"mode": "server", "security": map[string]any{"cors": true}}}}
	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/metadata") {
			w.Header().Set("Access-Control-Allow-Origin", "https://evil.example.org")
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			store.write(w, 200, store.resources["CapabilityStatement/cs"])
			return
		}
		store.ServeHTTP(w, r)
	})
	return g, as, store, g.Handler(fhir)
}

func preflightReq(target, origin, method, headers string) *http.Request {
	r := httptest.NewRequest(http.MethodOptions, target, nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		r.Header.Set("Access-Control-Request-Headers", headers)
	}
	return r
}

// TestGuardPublicDocumentsCORS: the discovery documents and /metadata are
// public: any origin may read them (Access-Control-Allow-Origin: *, never
// with credentials), preflights included, whatever the API's origin list
// says, and without reaching the FHIR handler for a preflight. The API
// keeps its configured origins only.
func TestGuardPublicDocumentsCORS(t *testing.T) {
	for _, corsOn := range []bool{true, false} {
		name := "API CORS configured"
		if !corsOn {
			name = "API CORS off"
		}
		t.Run(name, func(t *testing.T) {
			_, as, store, h := guardWith(t, func(cfg *Config, _ *smarttest.Server) {
				if !corsOn {
					cfg.CORS = CORSConfig{}
				}
			})
			public := []string{
				"/fhir/.well-known/smart-configuration",
				"/fhir/metadata",
				"/fhir/.well-known/oauth-protected-resource",
				"/.well-known/oauth-protected-resource/fhir",
			}
			for _, path := range public {
				for _, origin := range []string{"https://app.example.org", "https://evil.example.org", "null"} {
					r := httptest.NewRequest(http.MethodGet, "https://ehr.example.org"+path, nil)
					r.Header.Set("Origin", origin)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "*" || rec.Header().Get("Access-Control-Allow-Credentials") != "" {
						t.Errorf("GET %s from %s: %d %v", path, origin, rec.Code, rec.Header())
					}
					before := len(store.calls())
					rec = httptest.NewRecorder()
					h.ServeHTTP(rec, preflightReq("https://ehr.example.org"+path, origin, "GET", "x-requested-with, if-none-match"))
					if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "*" ||
						rec.Header().Get("Access-Control-Allow-Credentials") != "" ||
						!strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "GET") ||
						!strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "if-none-match") {
						t.Errorf("preflight %s from %s: %d %v", path, origin, rec.Code, rec.Header())
					}
					if len(store.calls()) != before {
						t.Errorf("preflight %s reached the FHIR handler", path)
					}
				}
			}

			// security.cors says whether the API answers browsers.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testBase+"/metadata", nil))
			var cs struct {
				Rest []struct {
					Security map[string]any `json:"security"`
				} `json:"rest"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &cs); err != nil || len(cs.Rest) != 1 || cs.Rest[0].Security["cors"] != corsOn {
				t.Errorf("security.cors %v with API CORS %v: %s", cs.Rest[0].Security["cors"], corsOn, rec.Body)
			}

			// The API: configured origins only, never "*".
			tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Observation.rs", Patient: "123"})
			if err != nil {
				t.Fatal(err)
			}
			for origin, want := range map[string]string{"https://app.example.org": "https://app.example.org", "https://evil.example.org": ""} {
				if !corsOn {
					want = ""
				}
				r := httptest.NewRequest(http.MethodGet, testBase+"/Observation/lab1", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				r.Header.Set("Origin", origin)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != want {
					t.Errorf("API GET from %s: %d, allow-origin %q, want %q", origin, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), want)
				}
				wantStatus := http.StatusNoContent
				if want == "" {
					wantStatus = http.StatusForbidden
				}
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, preflightReq(testBase+"/Observation/lab1", origin, "GET", "authorization"))
				if rec.Code != wantStatus || rec.Header().Get("Access-Control-Allow-Origin") != want {
					t.Errorf("API preflight from %s: %d, allow-origin %q", origin, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
				}
			}
			// A well-known path next to a public one is not public: 404.
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, preflightReq(testBase+"/.well-known/other", "https://evil.example.org", "GET", ""))
			if rec.Code != http.StatusNotFound || rec.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("preflight next to a public document: %d %v", rec.Code, rec.Header())
			}
			// Writes to /metadata are not public.
			r := httptest.NewRequest(http.MethodPost, testBase+"/metadata", strings.NewReader("{}"))
			r.Header.Set("Origin", "https://evil.example.org")
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusUnauthorized || rec.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("POST /metadata: %d %v", rec.Code, rec.Header())
			}
		})
	}
}

// TestGuardProtectedResourceLocations: RFC 9728 metadata answers at its
// standard location (/.well-known/oauth-protected-resource + base path) and
// under the base, names the FHIR base URL exactly, and is registered on a
// router that sends only the base to the Guard by MountProtectedResource.
func TestGuardProtectedResourceLocations(t *testing.T) {
	g, as, _, h := guardWith(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/fhir/", h)
	if err := g.MountProtectedResource(mux); err != nil {
		t.Fatal(err)
	}
	wantURL, err := wellknown.ProtectedResourceMetadataURL(testBase)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{wantURL, testBase + "/.well-known/oauth-protected-resource"} {
		for name, handler := range map[string]http.Handler{"guard": h, "mux": mux} {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			var prm discovery.ProtectedResourceMetadata
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &prm) != nil {
				t.Fatalf("%s %s: %d %s", name, target, rec.Code, rec.Body)
			}
			if prm.Resource != testBase || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != as.SMARTConfiguration().Issuer {
				t.Fatalf("%s %s: %+v", name, target, prm)
			}
		}
	}
	// Other resources' locations are not answered.
	for _, target := range []string{"https://ehr.example.org/.well-known/oauth-protected-resource",
		"https://ehr.example.org/.well-known/oauth-protected-resource/fhir/Patient",
		"https://ehr.example.org/.well-known/oauth-protected-resource/fhirx"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code == 200 {
			t.Errorf("%s answered", target)
		}
	}

	t.Run("resource must be the base URL", func(t *testing.T) {
		for _, res := range []string{"https://ehr.example.org/fhir/", "https://ehr.example.org/FHIR", "https://ehr.example.org", "http://ehr.example.org/fhir"} {
			prh, err := discovery.NewProtectedResourceHandler(&discovery.ProtectedResourceMetadata{Resource: res,
				AuthorizationServers: []string{"https://as.example.org"}, ScopesSupported: []string{"patient/*.rs"}}, discovery.HandlerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(Config{Authorize: AuthorizeConfig{BaseURL: testBase}, ProtectedResource: prh,
				Auth: AuthConfig{JWKSURL: "https://as.example.org/jwks", Issuers: []string{"https://as.example.org"}}})
			if err == nil || !strings.Contains(err.Error(), res) {
				t.Errorf("resource %q: %v", res, err)
			}
		}
	})
	t.Run("no protected resource: nothing mounted", func(t *testing.T) {
		g, _, _, _ := guardWith(t, func(cfg *Config, _ *smarttest.Server) { cfg.ProtectedResource = nil })
		rec := recordingMux{}
		if err := g.MountProtectedResource(rec); err != nil || len(rec) != 0 {
			t.Fatalf("%v %v", err, rec)
		}
	})
}

type recordingMux map[string]http.Handler

func (m recordingMux) Handle(p string, h http.Handler) { m[p] = h }

func TestGuardRefusesBadOrigins(t *testing.T) {
	for _, origins := range [][]string{{"https://app.example.org/"}, {"*", "https://app.example.org"}, {"null"}, {"https://*.example.org"}} {
		_, err := New(Config{Authorize: AuthorizeConfig{BaseURL: testBase}, CORS: CORSConfig{AllowedOrigins: origins},
			Auth: AuthConfig{JWKSURL: "https://as.example.org/jwks", Issuers: []string{"https://as.example.org"}}})
		if !errors.Is(err, errInvalidOrigin) {
			t.Errorf("%q: %v", origins, err)
		}
	}
}

// TestGuardWellKnownNeverPassedThrough: the Guard answers every path at or
// below <base>/.well-known (and the RFC 9728 location) itself. A document
// Config does not set is a 404 with an OperationOutcome, with or without a
// valid token, for any method: the FHIR handler never sees the request.
// The configured documents and the API keep working.
func TestGuardWellKnownNeverPassedThrough(t *testing.T) {
	unconfigured := func(cfg *Config, _ *smarttest.Server) {
		cfg.SMARTConfiguration, cfg.ProtectedResource, cfg.PatchCapabilities = nil, nil, false
	}
	onlySMART := func(cfg *Config, _ *smarttest.Server) { cfg.ProtectedResource = nil }
	always := []string{
		"/fhir/.well-known",
		"/fhir/.well-known/",
		"/fhir/.well-known/smart-configuration/",
		"/fhir/.well-known/smart-configuration/x",
		"/fhir/.well-known/openid-configuration",
		"/fhir/.well-known/jwks.json",
		"/fhir/.well-known/Patient/123",
		"/fhir/.well-known/oauth-protected-resource/x",
	}
	for _, tc := range []struct {
		name     string
		edit     func(*Config, *smarttest.Server)
		notFound []string // besides always
		served   []string
	}{
		{"nothing configured", unconfigured, []string{"/fhir/.well-known/smart-configuration",
			"/fhir/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/fhir"}, nil},
		{"SMART configuration only", onlySMART, []string{"/fhir/.well-known/oauth-protected-resource",
			"/.well-known/oauth-protected-resource/fhir"}, []string{"/fhir/.well-known/smart-configuration"}},
		{"both configured", nil, nil, []string{"/fhir/.well-known/smart-configuration",
			"/fhir/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/fhir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, as, store, h := guardWith(t, tc.edit)
			tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/*.cruds"})
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range append(slices.Clone(always), tc.notFound...) {
				for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "preflight"} {
					for _, bearer := range []string{"", tok} {
						var r *http.Request
						if method == "preflight" {
							r = preflightReq("https://ehr.example.org"+path, "https://app.example.org", "GET", "authorization")
						} else {
							r = httptest.NewRequest(method, "https://ehr.example.org"+path, strings.NewReader(`{"resourceType":"Patient"}`))
						}
						if bearer != "" {
							r.Header.Set("Authorization", "Bearer "+bearer)
						}
						before := len(store.calls())
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, r)
						if rec.Code != http.StatusNotFound || len(store.calls()) != before {
							t.Errorf("%s %s (token %v): %d, handler calls %v", method, path, bearer != "", rec.Code, store.calls()[before:])
							continue
						}
						var oo struct {
							ResourceType string `json:"resourceType"`
							Issue        []struct {
								Code string `json:"code"`
							} `json:"issue"`
						}
						if err := json.Unmarshal(rec.Body.Bytes(), &oo); err != nil || oo.ResourceType != "OperationOutcome" ||
							len(oo.Issue) != 1 || oo.Issue[0].Code != "not-found" || rec.Header().Get("Content-Type") != "application/fhir+json" {
							t.Errorf("%s %s (token %v): %v %s", method, path, bearer != "", rec.Header(), rec.Body)
						}
					}
				}
			}
			for _, path := range tc.served {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://ehr.example.org"+path, nil))
				if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
					t.Errorf("configured %s: %d %s", path, rec.Code, rec.Body)
				}
			}
			// The API and /metadata still reach the handler.
			r := httptest.NewRequest(http.MethodGet, testBase+"/Observation/lab1", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Errorf("read: %d %s", rec.Code, rec.Body)
			}
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testBase+"/metadata", nil))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "CapabilityStatement") {
				t.Errorf("metadata: %d %s", rec.Code, rec.Body)
			}
			// Paths that only look alike are the API's (a 401 without a token).
			for _, path := range []string{"/fhir/.well-knownx", "/fhir/well-known/smart-configuration", "/.well-known/smart-configuration"} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://ehr.example.org"+path, nil))
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("%s: %d", path, rec.Code)
				}
			}
		})
	}
}

// TestAuthorizeWellKnownNotFound: the enforcement point on its own never
// passes a well-known path to the handler either.
func TestAuthorizeWellKnownNotFound(t *testing.T) {
	authz, err := authorize(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	called := false
	h := authz(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	tok := &Token{Scopes: scope.Compile(scope.ParseSet("system/*.cruds"))}
	for _, path := range []string{"/fhir/.well-known/smart-configuration", "/fhir/.well-known", "/fhir/.well-known/a/b"} {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			r := httptest.NewRequest(method, "https://ehr.example.org"+path, nil)
			r = r.WithContext(newContextWithToken(r.Context(), tok))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusNotFound || called || !strings.Contains(rec.Body.String(), "OperationOutcome") {
				t.Errorf("%s %s: %d called=%v", method, path, rec.Code, called)
			}
		}
	}
}

// TestNewRefusesConfigsThatWouldPanic: New refuses what would panic (or
// silently judge nothing) on the first request, with an error that names
// the field; the built counterparts are accepted.
func TestNewRefusesConfigsThatWouldPanic(t *testing.T) {
	fx := newGuardFixtures(t)
	base := func() Config {
		return Config{
			Authorize: AuthorizeConfig{BaseURL: testBase, Logger: fx.quiet},
			Auth:      AuthConfig{JWKS: fx.jwks, Issuers: []string{fx.issuer}, Logger: fx.quiet},
		}
	}
	op := func(edit func(*Operation)) []Operation {
		o := Operation{Name: "export", Levels: []fhirrest.Level{fhirrest.LevelSystem}, Permission: scope.Read}
		edit(&o)
		return []Operation{o}
	}
	for _, tc := range []struct {
		name      string
		bad, good func(*Config)
		want      string // in the error
	}{
		{"nil ProtectedResourceHandler",
			func(c *Config) { c.ProtectedResource = (*discovery.ProtectedResourceHandler)(nil) },
			func(c *Config) { c.ProtectedResource = fx.prh }, "Config.ProtectedResource is a nil"},
		{"declared ProtectedResourceHandler",
			func(c *Config) { c.ProtectedResource = &discovery.ProtectedResourceHandler{} },
			func(c *Config) { c.ProtectedResource = fx.prh }, "NewProtectedResourceHandler"},
		{"nil HandlerFunc",
			func(c *Config) { c.ProtectedResource = http.HandlerFunc(nil) },
			func(c *Config) { c.ProtectedResource = http.NotFoundHandler() }, "nil http.HandlerFunc"},
		{"nil pointer handler",
			func(c *Config) { c.ProtectedResource = (*nilHandler)(nil) },
			func(c *Config) { c.ProtectedResource = &nilHandler{body: "{}"} }, "nil *middleware.nilHandler"},
		{"declared discovery.Handler",
			func(c *Config) { c.SMARTConfiguration = &discovery.Handler{} },
			func(c *Config) { c.SMARTConfiguration = fx.dh }, "discovery.NewHandler"},
		{"declared Authorize logger",
			func(c *Config) { c.Authorize.Logger = &slog.Logger{} },
			func(c *Config) { c.Authorize.Logger = nil }, "AuthorizeConfig.Logger"},
		{"declared Auth logger",
			func(c *Config) { c.Auth.Logger = &slog.Logger{} },
			func(c *Config) { c.Auth.Logger = slog.New(slog.DiscardHandler) }, "Config.Auth.Logger"},
		{"nil policy pointer",
			func(c *Config) { c.Authorize.Policies = []Policy{(*fuzzPolicy)(nil)} },
			func(c *Config) {
				c.Authorize.Policies = []Policy{&fuzzPolicy{deny: func(*http.Request, *Token, *Decision) error { return nil }}}
			}, "nil Policy"},
		{"operation permission without a letter",
			func(c *Config) { c.Authorize.Operations = op(func(o *Operation) { o.Permission = 1 << 6 }) },
			func(c *Config) { c.Authorize.Operations = op(func(o *Operation) { o.Permission = scope.All }) }, "no SMART permission"},
		{"operation response",
			func(c *Config) { c.Authorize.Operations = op(func(o *Operation) { o.Response = ResponseBundle + 1 }) },
			func(c *Config) { c.Authorize.Operations = op(func(o *Operation) { o.Response = ResponseBundle }) }, "unknown Response"},
		{"operation level",
			func(c *Config) { c.Authorize.Operations = op(func(o *Operation) { o.Levels = []fhirrest.Level{0} }) },
			func(c *Config) {
				c.Authorize.Operations = op(func(o *Operation) { o.Levels = []fhirrest.Level{fhirrest.LevelInstance} })
			}, "unknown level"},
		{"alternate base with another path",
			func(c *Config) { c.Authorize.AlternateBaseURLs = []string{"https://alt.example.org/other"} },
			func(c *Config) { c.Authorize.AlternateBaseURLs = []string{"http://10.0.0.1:8080/fhir/"} }, "AlternateBaseURLs"},
		{"CORS header name",
			func(c *Config) { c.CORS.AllowedHeaders = []string{"bad header"} },
			func(c *Config) { c.CORS.AllowedHeaders = []string{"X-Custom", "Authorization"} }, "CORS.AllowedHeaders"},
		{"CORS exposed header name",
			func(c *Config) { c.CORS.ExposedHeaders = []string{"a\r\nb"} },
			func(c *Config) { c.CORS.ExposedHeaders = []string{"ETag"} }, "CORS.ExposedHeaders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.bad(&cfg)
			if g, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				if g != nil {
					g.Close()
				}
				t.Fatalf("accepted or wrong error: %v", err)
			}
			cfg = base()
			tc.good(&cfg)
			g, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			for _, path := range []string{"/Observation/lab1", "/$export", "/.well-known/oauth-protected-resource", "/.well-known/smart-configuration"} {
				r := httptest.NewRequest(http.MethodGet, testBase+path, nil)
				r.Header.Set("Authorization", "Bearer "+fx.tokens[1])
				g.Handler(newLeaky()).ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}

// TestGuardCloseStopsEverything: a Guard that fetches its keys from a JWKS
// URL and introspects opaque tokens starts background work (the key
// refresh, connections to the authorization server); once Close returns,
// none of it is left running. Close may be called again.
func TestGuardCloseStopsEverything(t *testing.T) {
	as, err := smarttest.New(smarttest.Config{FHIRBase: testBase})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close() // after the check: its goroutines predate the Guard
	if err := as.RegisterClient(smarttest.Client{ID: "rs", Secret: "s3cret", Introspect: true}); err != nil {
		t.Fatal(err)
	}
	jwt, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/*.rs"})
	if err != nil {
		t.Fatal(err)
	}
	opaque, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/*.rs", Opaque: true})
	if err != nil {
		t.Fatal(err)
	}
	before := goleak.IgnoreCurrent()

	g, err := New(Config{
		Authorize: AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()},
		Auth: AuthConfig{JWKSURL: as.SMARTConfiguration().JWKSURI, Issuers: []string{as.SMARTConfiguration().Issuer}, InsecureAllowHTTPKeyURLs: true,
			Introspection: &IntrospectionConfig{Endpoint: as.SMARTConfiguration().IntrospectionEndpoint, ClientID: "rs", ClientSecret: "s3cret"},
			Logger:        quietLogger()},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Handler(newLeaky())
	for _, tok := range []string{jwt, opaque} {
		r := httptest.NewRequest(http.MethodGet, testBase+"/Observation/lab1", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("read: %d %s", rec.Code, rec.Body)
		}
	}
	g.Close()
	g.Close()
	goleak.VerifyNone(t, before)
}

// TestGuardChallengeResourceMetadata: with ProtectedResource set, every
// challenge names where its RFC 9728 metadata is (resource_metadata, RFC
// 9728 §5.1), and a client that follows it gets the document; without, the
// challenge names none.
func TestGuardChallengeResourceMetadata(t *testing.T) {
	wantURL := "https://ehr.example.org/.well-known/oauth-protected-resource/fhir" // testBase's
	g, as, _, h := guardWith(t, nil)
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Observation.rs", Patient: "123"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, target, token string
		status              int
	}{
		{"no token", testBase + "/Observation/1", "", http.StatusUnauthorized},
		{"bad token", testBase + "/Observation/1", "not-a-token", http.StatusUnauthorized},
		{"insufficient scope", testBase + "/Patient/123/$everything", tok, http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.target, nil)
		if tc.token != "" {
			r.Header.Set("Authorization", "Bearer "+tc.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		chal := w.Header().Get("WWW-Authenticate")
		if w.Code != tc.status || !strings.Contains(chal, `resource_metadata="`+wantURL+`"`) {
			t.Errorf("%s: %d, WWW-Authenticate %q", tc.name, w.Code, chal)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	if err := g.MountProtectedResource(mux); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, wantURL, nil))
	var md struct {
		Resource string `json:"resource"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &md); w.Code != http.StatusOK || err != nil || md.Resource != testBase {
		t.Errorf("the metadata named in the challenge: %d %s", w.Code, w.Body)
	}

	_, _, _, plain := guardWith(t, func(cfg *Config, _ *smarttest.Server) { cfg.ProtectedResource = nil })
	w = httptest.NewRecorder()
	plain.ServeHTTP(w, httptest.NewRequest(http.MethodGet, testBase+"/Observation/1", nil))
	if chal := w.Header().Get("WWW-Authenticate"); w.Code != http.StatusUnauthorized || strings.Contains(chal, "resource_metadata") || !strings.HasPrefix(chal, "Bearer") {
		t.Errorf("without ProtectedResource: %d, WWW-Authenticate %q", w.Code, chal)
	}
}
