package demotest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
	"github.com/fhirguard/fhirguard/smarttest"
)

// Suite runs the end-to-end tests against router: one demo server with the
// embedded authorization server, one trusting an external one, and the
// program itself stopped by SIGINT and SIGTERM, for which the example's
// TestMain must call RunChild first.
func Suite(t *testing.T, router demo.Router) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		s := Start(t, router, "-jwks-refetch-cooldown", "20ms")
		c := &client{t: t, base: s.BaseURL()}
		t.Run("banner curl commands", func(t *testing.T) { testBanner(t, s, 7) })
		t.Run("public endpoints", func(t *testing.T) { testPublic(t, s, s.AuthServer()) })
		t.Run("EHR launch", func(t *testing.T) { testEHRLaunch(c.with(t), s.AuthServer()) })
		t.Run("standalone launch and refresh", func(t *testing.T) { testStandalone(c.with(t), s.AuthServer()) })
		t.Run("demo app: standalone launch, public refresh", func(t *testing.T) { testAppStandalone(c.with(t), s) })
		t.Run("demo app: EHR launch through the simulator", func(t *testing.T) { testAppEHRLaunch(c.with(t), s) })
		t.Run("demo app: CORS", func(t *testing.T) { testAppCORS(t, s) })
		t.Run("backend services", func(t *testing.T) { testBackend(c.with(t), s.AuthServer()) })
		t.Run("batch at the base", func(t *testing.T) { testBatch(c.with(t), s) })
		t.Run("opaque tokens, embedded introspection", func(t *testing.T) { testOpaque(c.with(t), s.AuthServer()) })
		t.Run("flawed tokens", func(t *testing.T) { testFlawed(c.with(t), s.AuthServer()) })
		t.Run("request forms refused", func(t *testing.T) { testRequestForms(t, s) })
		t.Run("guard hardening", func(t *testing.T) { testHardening(t, s, router) })
		// Last: it changes the signing key.
		t.Run("key rotation while serving", func(t *testing.T) { testRotation(c.with(t), s) })
	})
	t.Run("external issuer with introspection", func(t *testing.T) {
		t.Parallel()
		testExternal(t, router)
	})
	// Needs RunChild in the example's TestMain.
	t.Run("clean shutdown on signals", testSignals)
}

// client sends FHIR requests to one server.
type client struct {
	t    testing.TB
	base string
}

func (c *client) with(t testing.TB) *client { return &client{t: t, base: c.base} }

// call sends method path (relative to the base) with an optional bearer
// token and body, and returns the status and body.
func (c *client) call(method, path, token string, body any) (int, []byte) {
	c.t.Helper()
	var rd *strings.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	return do(c.t, req)
}

// expect is one FHIR call and the status it must get; ids, when not nil,
// are the exact resource ids ("Type/id") a search Bundle must hold.
type expect struct {
	name, method, path string
	status             int
	ids                []string
}

func (c *client) check(token string, cases []expect) {
	c.t.Helper()
	for _, e := range cases {
		method := e.method
		if method == "" {
			method = http.MethodGet
		}
		code, body := c.call(method, e.path, token, nil)
		if code != e.status {
			c.t.Errorf("%s: %s %s = %d, want %d: %.300s", e.name, method, e.path, code, e.status, body)
			continue
		}
		if e.ids != nil {
			if got := bundleIDs(c.t, body); !slices.Equal(got, e.ids) {
				c.t.Errorf("%s: %s %s returned %v, want %v", e.name, method, e.path, got, e.ids)
			}
		}
	}
}

// bundleIDs returns the sorted "Type/id" of every entry of a Bundle.
func bundleIDs(t testing.TB, body []byte) []string {
	t.Helper()
	var b struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
		t.Fatalf("not a Bundle (%v): %.300s", err, body)
	}
	ids := []string{}
	for _, e := range b.Entry {
		ids = append(ids, e.Resource.ResourceType+"/"+e.Resource.ID)
	}
	slices.Sort(ids)
	return ids
}

func testBanner(t *testing.T, s *Started, want int) {
	bs, err := ReadBanner(s.Banner)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs.Commands) != want {
		t.Fatalf("banner has %d curl commands, want %d:\n%s", len(bs.Commands), want, s.Banner)
	}
	for _, needle := range []string{s.BaseURL(), s.DiscoveryURL()} {
		if !strings.Contains(s.Banner, needle) {
			t.Errorf("banner does not show %s", needle)
		}
	}
	if s.AuthServer() != nil {
		// Each token is printed once: a shell assignment the commands use.
		for name, tok := range map[string]string{demo.PatientTokenVar: s.PatientToken(), demo.SystemTokenVar: s.SystemToken()} {
			if tok == "" || bs.Vars[name] != tok || strings.Count(s.Banner, tok) != 1 {
				t.Errorf("banner does not set %s to the token %.20q once (%d times in the banner)", name, tok, strings.Count(s.Banner, tok))
			}
		}
	}
	for _, c := range bs.Commands {
		call, err := ParseCurl(c.Args)
		if err != nil {
			t.Errorf("%s: %v", c.Title, err)
			continue
		}
		req := call.Request
		code, body := do(t, req)
		if code != c.Status {
			t.Errorf("%s: %s %s = %d, banner says %d: %.300s", c.Title, req.Method, req.URL, code, c.Status, body)
		}
		// On the terminal, what curl writes ends with one newline.
		if out := string(body) + call.WriteOut; !strings.HasSuffix(out, "\n") || strings.HasSuffix(out, "\n\n") {
			t.Errorf("%s: curl writes %q at the end", c.Title, out[max(0, len(out)-20):])
		}
	}
	t.Run("real shells", func(t *testing.T) { testBannerShells(t, bs) })
	t.Run("real curl", func(t *testing.T) { testBannerCurl(t, bs) })
}

func testPublic(t *testing.T, s *Started, as *smarttest.Server) {
	c := &client{t: t, base: s.BaseURL()}
	code, body := c.call("GET", "/.well-known/smart-configuration", "", nil)
	var doc map[string]any
	if code != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("smart-configuration: %d %.300s", code, body)
	}
	if doc["token_endpoint"] != as.SMARTConfiguration().TokenEndpoint || doc["authorization_endpoint"] != as.SMARTConfiguration().AuthorizationEndpoint {
		t.Errorf("smart-configuration endpoints %v, %v; want %s, %s", doc["token_endpoint"], doc["authorization_endpoint"], as.SMARTConfiguration().TokenEndpoint, as.SMARTConfiguration().AuthorizationEndpoint)
	}
	code, body = c.call("GET", "/metadata", "", nil)
	if code != 200 || !strings.Contains(string(body), "SMART-on-FHIR") || !strings.Contains(string(body), as.SMARTConfiguration().TokenEndpoint) {
		t.Errorf("metadata lacks the SMART security block: %d %.300s", code, body)
	}
	code, body = c.call("GET", "/.well-known/oauth-protected-resource", "", nil)
	if code != 200 || !strings.Contains(string(body), s.BaseURL()) {
		t.Errorf("protected resource metadata: %d %.300s", code, body)
	}
	// The log never holds a token.
	for _, tok := range []string{s.PatientToken(), s.SystemToken()} {
		if tok != "" && strings.Contains(s.Logs(), tok) {
			t.Error("a token was logged")
		}
	}
}

func testEHRLaunch(c *client, as *smarttest.Server) {
	t := c.t
	ctx := context.Background()
	if err := as.RegisterClient(smarttest.Client{ID: "ehr-app", RedirectURIs: []string{"https://app.example.org/callback"}}); err != nil {
		t.Fatal(err)
	}
	launch, err := as.RegisterLaunch(smarttest.LaunchContext{Patient: "123", Encounter: "E1", NeedPatientBanner: true,
		SMARTStyleURL: "https://ehr.example.org/style.json"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: "ehr-app", Launch: launch,
		Scope: "launch openid fhirUser patient/Patient.r patient/Observation.rs"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Patient != "123" || tr.Encounter != "E1" || tr.IDToken == "" || tr.NeedPatientBanner == nil || !*tr.NeedPatientBanner {
		t.Fatalf("EHR launch context: %+v", tr)
	}
	c.check(tr.AccessToken, []expect{
		{name: "own patient", path: "/Patient/123", status: 200},
		{name: "own observation", path: "/Observation/lab1", status: 200},
		{name: "other patient's observation", path: "/Observation/o456", status: 404},
		{name: "other patient", path: "/Patient/456", status: 404},
		{name: "type not granted", path: "/Condition/c1", status: 403},
		{name: "search narrowed to the patient", path: "/Observation?code=http://loinc.org|4548-4", status: 200,
			ids: []string{"Observation/lab1"}},
		{name: "search naming another patient", path: "/Observation?patient=456", status: 200, ids: []string{}},
		{name: "patient search: no search letter", path: "/Patient?name=smith", status: 403},
		{name: "delete: no delete letter", method: "DELETE", path: "/Observation/lab1", status: 403},
	})
	c.check("", []expect{{name: "no token", path: "/Observation/lab1", status: 401}})
	// A launch for another client's redirect URI is refused by the server.
	if _, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: "ehr-app", Launch: launch, Scope: "launch patient/*.rs",
		RedirectURI: "https://evil.example.org/callback"}); err == nil {
		t.Error("launch with an unregistered redirect URI accepted")
	}
}

func testStandalone(c *client, as *smarttest.Server) {
	t := c.t
	ctx := context.Background()
	if err := as.RegisterClient(smarttest.Client{ID: "standalone-app", Secret: "app-secret",
		RedirectURIs: []string{"https://app.example.org/standalone"}}); err != nil {
		t.Fatal(err)
	}
	tr, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: "standalone-app", ClientSecret: "app-secret",
		Scope: "launch/patient openid fhirUser patient/*.rs offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Patient != "123" || tr.RefreshToken == "" {
		t.Fatalf("standalone launch: patient %q, refresh token %t", tr.Patient, tr.RefreshToken != "")
	}
	cases := []expect{
		{name: "conditions narrowed", path: "/Condition", status: 200, ids: []string{"Condition/c1", "Condition/c2"}},
		{name: "allergies narrowed", path: "/AllergyIntolerance", status: 200, ids: []string{"AllergyIntolerance/a1"}},
		{name: "other patient's condition", path: "/Condition/c456", status: 404},
		{name: "shared type", path: "/Practitioner/9", status: 200},
		{name: "compartment search of another patient", path: "/Patient/456/Observation", status: 403},
		{name: "everything of another patient", path: "/Patient/456/$everything", status: 403},
		{name: "everything of its own patient", path: "/Patient/123/$everything", status: 200},
		{name: "create: no create letter", method: "POST", path: "/Observation", status: 403},
	}
	c.check(tr.AccessToken, cases)

	// Refresh: the new access token works, the refresh token rotates and
	// the old one is refused.
	next, err := as.Refresh(ctx, "standalone-app", "app-secret", tr.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tr.RefreshToken || next.AccessToken == tr.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	c.check(next.AccessToken, cases[:3])
	var re *smarttest.ResponseError
	if _, err := as.Refresh(ctx, "standalone-app", "app-secret", tr.RefreshToken, ""); !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Errorf("reused refresh token: %v", err)
	}
}

func testBackend(c *client, as *smarttest.Server) {
	t := c.t
	ctx := context.Background()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{"RS384", rsaKey}, {"ES384", ecKey}} {
		id := "backend-" + k.name
		if err := as.RegisterClient(smarttest.Client{ID: id,
			PublicKeys: map[string]crypto.PublicKey{"k1": k.key.Public()}}); err != nil {
			t.Fatal(err)
		}
		tr, err := as.BackendToken(ctx, id, k.key, "k1", "system/Patient.rs system/Observation.rs")
		if err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
		if tr.ExpiresIn <= 0 || tr.ExpiresIn > 300 {
			t.Errorf("%s: backend token lives %d s", k.name, tr.ExpiresIn)
		}
		c.check(tr.AccessToken, []expect{
			{name: k.name + " search across patients", path: "/Patient?name=smith", status: 200,
				ids: []string{"Patient/123", "Patient/456"}},
			{name: k.name + " any patient's observation", path: "/Observation/o789", status: 200},
			{name: k.name + " type not granted", path: "/Condition/c1", status: 403},
			{name: k.name + " delete not granted", method: "DELETE", path: "/Patient/123", status: 403},
		})
	}
	// A replayed client assertion (same jti) is refused at the token
	// endpoint, reached through the demo's listener.
	assertion, err := smarttest.SignClientAssertion(smarttest.Assertion{ClientID: "backend-RS384", Audience: as.SMARTConfiguration().TokenEndpoint,
		Key: rsaKey, KeyID: "k1", JTI: "replayed-jti"})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"},
		"client_assertion_type": {smarttest.AssertionType}, "client_assertion": {assertion}}
	for i, want := range []int{200, 401} { // the replay: invalid_client
		req, err := http.NewRequest("POST", as.SMARTConfiguration().TokenEndpoint, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if code, body := do(t, req); code != want {
			t.Errorf("assertion use %d: %d, want %d: %.300s", i+1, code, want, body)
		}
	}
	// A key the client did not register is refused by the server.
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.BackendToken(ctx, "backend-ES384", other, "k1", "system/Patient.rs"); err == nil {
		t.Error("assertion signed by an unregistered key accepted")
	}
}

func testBatch(c *client, s *Started) {
	batch := func(urls ...string) map[string]any {
		var entries []any
		for _, u := range urls {
			entries = append(entries, map[string]any{"request": map[string]any{"method": "GET", "url": u}})
		}
		return map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries}
	}
	code, body := c.call("POST", "", s.SystemToken(), batch("Patient/123", "Patient/456"))
	if code != 200 || !strings.Contains(string(body), `"batch-response"`) {
		c.t.Errorf("system batch at the base: %d %.300s", code, body)
	}
	code, body = c.call("POST", "", s.PatientToken(), batch("Patient/123"))
	if code != 200 {
		c.t.Errorf("patient batch of its own record: %d %.300s", code, body)
	}
	if code, body = c.call("POST", "", s.PatientToken(), batch("Patient/123", "Patient/456")); code < 400 {
		c.t.Errorf("patient batch reaching another patient: %d %.300s", code, body)
	}
	if code, _ = c.call("POST", "", "", batch("Patient/123")); code != 401 {
		c.t.Errorf("batch without a token: %d", code)
	}
}

func testOpaque(c *client, as *smarttest.Server) {
	t := c.t
	tok, err := as.MintToken(smarttest.TokenOptions{Opaque: true, Scopes: "patient/Observation.rs", Patient: "123"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tok, ".") == 2 {
		t.Fatalf("opaque token looks like a JWT: %q", tok)
	}
	c.check(tok, []expect{
		{name: "opaque: own observation", path: "/Observation/lab1", status: 200},
		{name: "opaque: other patient's", path: "/Observation/o456", status: 404},
		{name: "opaque: not granted", path: "/Condition/c1", status: 403},
	})
	c.check("an-opaque-token-nobody-issued", []expect{{name: "unknown opaque token", path: "/Observation/lab1", status: 401}})
	expired, err := as.MintToken(smarttest.TokenOptions{Opaque: true, Scopes: "patient/Observation.rs", Patient: "123", Lifetime: -time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c.check(expired, []expect{{name: "expired opaque token", path: "/Observation/lab1", status: 401}})
}

func testFlawed(c *client, as *smarttest.Server) {
	for _, f := range smarttest.Flaws() {
		tok, err := as.MintFlawedToken(f, smarttest.TokenOptions{Scopes: "system/*.rs"})
		if err != nil {
			c.t.Fatal(err)
		}
		want := http.StatusUnauthorized
		if f == smarttest.FlawJSONSerialization {
			want = http.StatusBadRequest // not a bearer token at all (RFC 6750 invalid_request)
		}
		c.check(tok, []expect{{name: "flaw " + f.String(), path: "/Patient/123", status: want}})
	}
}

func testRotation(c *client, s *Started) {
	as := s.AuthServer()
	t := c.t
	oldKID := as.SigningKeyID()
	if _, err := as.RotateKey(); err != nil {
		t.Fatal(err)
	}
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/Patient.rs"})
	if err != nil {
		t.Fatal(err)
	}
	// The new key id is unknown to the server: it refetches the JWKS (at
	// most once per -jwks-refetch-cooldown) and accepts the token.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := c.call("GET", "/Patient/123", tok, nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token signed by the rotated key: %d %.300s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Tokens of the old key, still published, keep working.
	c.check(s.SystemToken(), []expect{{name: "old key, still published", path: "/Patient/456", status: 200}})
	if oldKID == as.SigningKeyID() {
		t.Fatal("the signing key did not change")
	}
}

// testExternal runs a demo server trusting an authorization server that
// runs on its own (as an external one would), with opaque tokens through
// the -introspection-* flags.
func testExternal(t *testing.T, router demo.Router) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/fhir"
	ext, err := smarttest.New(smarttest.Config{FHIRBase: base, OpaqueTokens: true, Patient: "123"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Close)
	if err := ext.RegisterClient(smarttest.Client{ID: "resource-server", Secret: "rs-secret", Introspect: true}); err != nil {
		t.Fatal(err)
	}
	s := StartOn(t, ln, router, "-issuer", ext.SMARTConfiguration().Issuer, "-jwks-url", ext.SMARTConfiguration().JWKSURI,
		"-introspection-url", ext.SMARTConfiguration().IntrospectionEndpoint, "-introspection-client-id", "resource-server",
		"-introspection-client-secret", "rs-secret", "-empty")
	if s.AuthServer() != nil || s.PatientToken() != "" {
		t.Fatal("an authorization server was embedded despite -issuer")
	}
	c := &client{t: t, base: base}
	testBanner(t, s, 2)
	testPublic(t, s, ext)
	if code, _ := do(t, mustRequest(t, "GET", "http://"+ln.Addr().String()+demo.AuthPath+"/jwks")); code != 404 {
		t.Errorf("embedded JWKS answered %d with -issuer", code)
	}

	// -empty: create the patient's data first with a system token.
	sys, err := ext.MintToken(smarttest.TokenOptions{Scopes: "system/*.cruds"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []map[string]any{
		{"resourceType": "Patient", "id": "123"},
		{"resourceType": "Patient", "id": "456"},
		{"resourceType": "Observation", "id": "mine", "status": "final", "code": map[string]any{"text": "x"},
			"subject": map[string]any{"reference": "Patient/123"}},
		{"resourceType": "Observation", "id": "theirs", "status": "final", "code": map[string]any{"text": "x"},
			"subject": map[string]any{"reference": "Patient/456"}},
	} {
		if code, body := c.call("PUT", "/"+r["resourceType"].(string)+"/"+r["id"].(string), sys, r); code != 201 && code != 200 {
			t.Fatalf("update-as-create %v: %d %.300s", r["id"], code, body)
		}
	}

	opaque, err := ext.MintToken(smarttest.TokenOptions{Opaque: true, Scopes: "patient/Observation.rs", Patient: "123"})
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := ext.MintToken(smarttest.TokenOptions{Scopes: "patient/Observation.rs", Patient: "123"})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"opaque": opaque, "JWT": jwt} {
		c.check(tok, []expect{
			{name: name + ": own", path: "/Observation/mine", status: 200},
			{name: name + ": other patient's", path: "/Observation/theirs", status: 404},
			{name: name + ": search narrowed", path: "/Observation", status: 200, ids: []string{"Observation/mine"}},
		})
	}
	// A standalone launch against the external server yields an opaque
	// token (OpaqueTokens), resolved through introspection.
	if err := ext.RegisterClient(smarttest.Client{ID: "app", RedirectURIs: []string{"https://app.example.org/cb"}}); err != nil {
		t.Fatal(err)
	}
	tr, err := ext.LaunchApp(context.Background(), smarttest.AppLaunch{ClientID: "app", Scope: "launch/patient patient/Observation.rs"})
	if err != nil {
		t.Fatal(err)
	}
	c.check(tr.AccessToken, []expect{
		{name: "launch opaque: own", path: "/Observation/mine", status: 200},
		{name: "launch opaque: other patient's", path: "/Observation/theirs", status: 404},
	})
	// Tokens of another authorization server are refused.
	stranger, err := smarttest.New(smarttest.Config{FHIRBase: base})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	for _, opaque := range []bool{false, true} {
		tok, err := stranger.MintToken(smarttest.TokenOptions{Opaque: opaque, Scopes: "system/*.rs"})
		if err != nil {
			t.Fatal(err)
		}
		c.check(tok, []expect{{name: "another issuer's token", path: "/Observation/mine", status: 401}})
	}
}

func mustRequest(t testing.TB, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// testRequestForms sends requests that try to slip past the enforcement
// point through the router: non-canonical paths and method overrides. The
// Guard answers 400; a router that cleans paths itself (http.ServeMux)
// may redirect to the clean path instead, which then goes through the Guard
// like any request. Nothing may reach the store unchecked.
func testRequestForms(t *testing.T, s *Started) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, method, path string
		header             [2]string
	}{
		{name: "dot segments", path: "/Patient/123/../456"},
		{name: "encoded dot segments", path: "/Patient/123/%2E%2E/456"},
		{name: "double slash", path: "//Patient/456"},
		{name: "encoded slash", path: "/Patient%2F456"},
		{name: "backslash", path: "/Patient/123%5C..%5C456"},
		{name: "semicolon", path: "/Patient/456;x=1"},
		{name: "method override header", method: "GET", path: "/Observation/lab1", header: [2]string{"X-HTTP-Method-Override", "DELETE"}},
		{name: "X-HTTP-Method header", method: "POST", path: "/Observation/lab1", header: [2]string{"X-HTTP-Method", "DELETE"}},
		{name: "_method parameter", method: "POST", path: "/Observation/lab1?_method=DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req, err := http.NewRequest(method, s.BaseURL()+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+s.PatientToken())
			if tt.header[0] != "" {
				req.Header.Set(tt.header[0], tt.header[1])
			}
			res, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			switch {
			case res.StatusCode == http.StatusBadRequest:
			case res.StatusCode >= 300 && res.StatusCode < 400:
				loc, err := res.Location()
				if err != nil || !strings.HasPrefix(loc.String(), s.BaseURL()+"/") || strings.Contains(loc.Path, "..") {
					t.Errorf("%s redirected to %v (%v)", tt.path, loc, err)
				}
			default:
				t.Errorf("%s %s: %d, want 400 (or a redirect to the clean path)", method, tt.path, res.StatusCode)
			}
		})
	}
	// The observation the override tried to delete is still there.
	c := &client{t: t, base: s.BaseURL()}
	c.check(s.SystemToken(), []expect{{name: "not deleted", path: "/Observation/lab1", status: 200}})
}
