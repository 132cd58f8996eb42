package middleware

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/discovery"
	"github.com/fhirguard/fhirguard/smarttest"
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
		Auth: AuthConfig{JWKSURL: as.JWKSURL(), Issuers: []string{as.Issuer()}, InsecureAllowHTTPKeyURLs: true,
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
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || !strings.Contains(rec.Body.String(), as.TokenURL()) {
		t.Fatalf("smart-configuration: %d %s", rec.Code, rec.Body)
	}
	rec = get("/metadata", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "SMART-on-FHIR") || !strings.Contains(rec.Body.String(), as.TokenURL()) {
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
