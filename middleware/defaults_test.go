package middleware

import (
	"crypto"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/go-chi/jwtauth/v5"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
	"github.com/fhirguard/fhirguard/smarttest"
)

// Issue 13 §4: the security defaults are functions returning fresh copies,
// and the enforcement point copies what it is configured with, so that no
// code elsewhere in the process can widen the guard by changing a slice
// after the fact.

// sharedTypeVectors: a patient token may read a shared type but not a type
// that is neither shared nor in the Patient compartment.
func sharedTypeVectors(t *testing.T, h *harness) {
	t.Helper()
	tok := token("patient/*.rs", "123")
	if r := h.do(tok, "GET", "/Medication/m1", ""); r.Code != http.StatusOK || !slices.Equal(r.ids(), []string{"Medication/m1"}) {
		t.Fatalf("shared Medication: status %d, resources %v; body %s", r.Code, r.ids(), r.Body)
	}
	before := len(h.store.calls())
	if r := h.do(tok, "GET", "/Questionnaire/q1", ""); r.Code != http.StatusForbidden {
		t.Fatalf("non-shared Questionnaire: status %d, want 403; body %s", r.Code, r.Body)
	}
	if r := h.do(tok, "GET", "/Questionnaire?status=active", ""); r.Code != http.StatusForbidden {
		t.Fatalf("search of non-shared Questionnaire: status %d, want 403; body %s", r.Code, r.Body)
	}
	if n := len(h.store.calls()); n != before {
		t.Fatalf("refused requests reached the handler: %v", h.store.calls()[before:])
	}
}

func TestDefaultSharedTypesCannotBeWidened(t *testing.T) {
	want := []string{"Medication", "Organization", "Location", "Practitioner", "PractitionerRole", "Substance"}
	if !slices.Equal(defaultSharedTypes[:], want) {
		t.Fatalf("defaultSharedTypes = %v, want %v (the AuthorizeConfig.SharedTypes docs list them)", defaultSharedTypes, want)
	}

	t.Run("default", func(t *testing.T) {
		sharedTypeVectors(t, newHarness(t, nil))
	})

	t.Run("config slice changed after NewAuthorizer", func(t *testing.T) {
		shared := slices.Clone(defaultSharedTypes[:])
		h := newHarness(t, func(c *AuthorizeConfig) { c.SharedTypes = shared })
		for i := range shared {
			shared[i] = "Questionnaire"
		}
		sharedTypeVectors(t, h)
	})
}

// operationVectors: the default operation table's limits hold (levels,
// types, own patient, search narrowing) and unlisted operations are refused.
func operationVectors(t *testing.T, h *harness) {
	t.Helper()
	refused := []struct{ name, scopes, patient, target string }{
		{"unlisted $export", "system/*.rs", "", "/$export"},
		{"$everything at system level", "system/*.rs", "", "/$everything"},
		{"$everything on another type", "patient/*.rs", "123", "/Observation/lab1/$everything"},
		{"$everything of another patient", "patient/*.rs", "123", "/Patient/456/$everything"},
		{"$everything at type level", "patient/*.rs", "123", "/Patient/$everything"},
		{"$lastn on another type", "patient/*.rs", "123", "/Condition/$lastn"},
		{"$meta at type level", "patient/*.rs", "123", "/Observation/$meta"},
	}
	for _, v := range refused {
		before := len(h.store.calls())
		if r := h.do(token(v.scopes, v.patient), "GET", v.target, ""); r.Code != http.StatusForbidden {
			t.Fatalf("%s: status %d, want 403; body %s", v.name, r.Code, r.Body)
		}
		if n := len(h.store.calls()); n != before {
			t.Fatalf("%s reached the handler: %v", v.name, h.store.calls()[before:])
		}
	}
	if r := h.do(token("patient/*.rs", "123"), "GET", "/Patient/123/$everything", ""); r.Code != http.StatusOK ||
		slices.Contains(r.ids(), "Observation/o456") || !slices.Contains(r.ids(), "Observation/lab1") {
		t.Fatalf("own $everything: status %d, resources %v", r.Code, r.ids())
	}
	if r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation/$lastn?code=x", ""); r.Code != http.StatusOK ||
		slices.Contains(r.ids(), "Observation/o456") || len(r.ids()) == 0 {
		t.Fatalf("$lastn: status %d, resources %v", r.Code, r.ids())
	}
}

// widenOperations changes everything a caller can reach in ops.
func widenOperations(ops []Operation) []Operation {
	for i := range ops {
		op := &ops[i]
		for j := range op.Levels {
			op.Levels[j] = fhirrest.LevelSystem
		}
		for j := range op.Types {
			op.Types[j] = "Observation"
		}
		op.Permission = 0
		op.OwnPatient = false
		op.Stored = false
		op.Search = false
		op.Response = ResponseUnchecked
	}
	if len(ops) > 0 {
		ops[0].Name = "export"
		ops[0].Levels = append(ops[0].Levels, fhirrest.LevelType, fhirrest.LevelInstance)
	}
	return append(ops, Operation{Name: "match", Levels: []fhirrest.Level{fhirrest.LevelType}})
}

func TestDefaultOperationsCannotBeWidened(t *testing.T) {
	snapshot := fmt.Sprintf("%+v", DefaultOperations())
	names := func(ops []Operation) (out []string) {
		for _, op := range ops {
			out = append(out, op.Name)
		}
		return out
	}
	if got := names(DefaultOperations()); !slices.Equal(got, []string{"everything", "lastn", "validate", "meta"}) {
		t.Fatalf("DefaultOperations() names %v", got)
	}
	widenOperations(DefaultOperations())
	if got := fmt.Sprintf("%+v", DefaultOperations()); got != snapshot {
		t.Fatalf("after changing a returned table, DefaultOperations() = %s, want %s", got, snapshot)
	}
	a, b := DefaultOperations(), DefaultOperations()
	for i := range a {
		if len(a[i].Levels) > 0 && &a[i].Levels[0] == &b[i].Levels[0] || len(a[i].Types) > 0 && &a[i].Types[0] == &b[i].Types[0] {
			t.Fatalf("two calls share the backing arrays of operation %q", a[i].Name)
		}
	}

	t.Run("default", func(t *testing.T) {
		operationVectors(t, newHarness(t, nil))
	})

	t.Run("config table changed after NewAuthorizer", func(t *testing.T) {
		ops := DefaultOperations()
		h := newHarness(t, func(c *AuthorizeConfig) { c.Operations = ops })
		widenOperations(ops)
		operationVectors(t, h)
	})

	t.Run("extended copy", func(t *testing.T) {
		// The documented way to permit another operation still works, and
		// extending one copy leaves the default alone.
		ops := append(DefaultOperations(), Operation{Name: "export", Levels: []fhirrest.Level{fhirrest.LevelSystem}, Permission: scope.Read | scope.Search})
		h := newHarness(t, func(c *AuthorizeConfig) { c.Operations = ops })
		if r := h.do(token("system/*.rs", ""), "GET", "/$export", ""); r.Code != http.StatusOK {
			t.Fatalf("configured $export: status %d; body %s", r.Code, r.Body)
		}
		if got := fmt.Sprintf("%+v", DefaultOperations()); got != snapshot {
			t.Fatalf("DefaultOperations() changed: %s", got)
		}
		operationVectors(t, newHarness(t, nil))
	})
}

// defaultsDenyPolicy denies every request.
type defaultsDenyPolicy struct{}

func (defaultsDenyPolicy) AuthorizeRequest(*http.Request, *Token, *Decision) error {
	return &PolicyDenial{Rule: "deny-all", Message: "denied by policy"}
}

// defaultsAllowPolicy allows every request.
type defaultsAllowPolicy struct{}

func (defaultsAllowPolicy) AuthorizeRequest(*http.Request, *Token, *Decision) error { return nil }

func TestAuthorizePoliciesCopied(t *testing.T) {
	pols := []Policy{defaultsDenyPolicy{}}
	h := newHarness(t, func(c *AuthorizeConfig) { c.Policies = pols })
	pols[0] = defaultsAllowPolicy{}
	if r := h.do(token("patient/*.rs", "123"), "GET", "/Observation/lab1", ""); r.Code != http.StatusForbidden {
		t.Fatalf("policy replaced after NewAuthorizer took effect: status %d; body %s", r.Code, r.Body)
	}
	if calls := h.store.calls(); len(calls) != 0 {
		t.Fatalf("denied request reached the handler: %v", calls)
	}
	if r := newHarness(t, nil).do(token("patient/*.rs", "123"), "GET", "/Observation/lab1", ""); r.Code != http.StatusOK {
		t.Fatalf("without the policy: status %d", r.Code)
	}
}

func TestCORSAllowedOriginsCopied(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	cfg := CORSConfig{AllowedOrigins: []string{"https://app.example.org"}, AllowedHeaders: []string{"Authorization"}}
	h := corsMiddleware(cfg)(next)
	cfg.AllowedOrigins[0] = "https://evil.example.org"
	cfg.AllowedHeaders[0] = "X-Secret"
	preflight := func(origin, headers string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("OPTIONS", testBase+"/Observation", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "GET")
		r.Header.Set("Access-Control-Request-Headers", headers)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := preflight("https://evil.example.org", "Authorization"); rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("origin added after CORS: status %d, allow-origin %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	if rec := preflight("https://app.example.org", "X-Secret"); rec.Code != http.StatusForbidden {
		t.Fatalf("header added after CORS: status %d", rec.Code)
	}
	if rec := preflight("https://app.example.org", "Authorization"); rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Fatalf("configured origin: status %d, allow-origin %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
}

func TestAuthAlgorithmsCopied(t *testing.T) {
	testKeys(t)
	// A fetched JWKS publishing an RS256 and an ES256 key: the allow-list
	// alone decides which of them may be used, also for keys fetched after
	// construction.
	s := newJWKSServer(t, keyRS, keyES)
	cfg := remoteConfig(t, s, &authClock{})
	cfg.Algorithms = []string{"ES256"}
	a := newAuth(t, cfg)
	cfg.Algorithms[0] = "RS256"
	h := &recordHandler{}
	if rec := doAuth(a, h, keyRS.token(validClaims(), nil)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("RS256 after changing cfg.Algorithms: status %d, want 401", rec.Code)
	}
	if rec := doAuth(a, h, keyES.token(validClaims(), nil)); rec.Code != http.StatusOK {
		t.Fatalf("ES256: status %d, want 200", rec.Code)
	}
	if n := h.calls.Load(); n != 1 {
		t.Fatalf("handler called %d times, want 1", n)
	}
}

// TestGuardConfigCopied builds the whole stack, changes every slice of its
// Config afterwards, and checks that nothing widened.
func TestGuardConfigCopied(t *testing.T) {
	as, err := smarttest.New(smarttest.Config{FHIRBase: testBase})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	cfg := Config{
		Authorize: AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(),
			SharedTypes: slices.Clone(defaultSharedTypes[:]), Operations: DefaultOperations(), Policies: []Policy{defaultsAllowPolicy{}}},
		Auth: AuthConfig{JWKSURL: as.SMARTConfiguration().JWKSURI, Issuers: []string{as.SMARTConfiguration().Issuer, "https://second-issuer.example.org"},
			Algorithms: []string{"RS256"}, InsecureAllowHTTPKeyURLs: true, Logger: quietLogger()},
		CORS: CORSConfig{AllowedOrigins: []string{"https://app.example.org"}},
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	store := newLeaky()
	h := g.Handler(store)

	for i := range cfg.Authorize.SharedTypes {
		cfg.Authorize.SharedTypes[i] = "Questionnaire"
	}
	widenOperations(cfg.Authorize.Operations)
	cfg.Authorize.Policies[0] = defaultsDenyPolicy{} // must not take effect either
	cfg.Auth.Issuers[1] = "https://other-issuer.invalid"
	cfg.Auth.Algorithms[0] = "ES256"
	cfg.CORS.AllowedOrigins[0] = "https://evil.example.org"

	mint := func(opts smarttest.TokenOptions) string {
		t.Helper()
		tok, err := as.MintToken(opts)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	do := func(tok, target, origin string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest("GET", testBase+target, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	patient := mint(smarttest.TokenOptions{Scopes: "launch/patient patient/*.rs", Patient: "123"})
	system := mint(smarttest.TokenOptions{Scopes: "system/*.rs"})
	foreign := mint(smarttest.TokenOptions{Scopes: "launch/patient patient/*.rs", Patient: "123", Issuer: "https://other-issuer.invalid"})

	for _, v := range []struct {
		name, tok, target, origin string
		status                    int
	}{
		{"issuer added after New", foreign, "/Medication/m1", "", http.StatusUnauthorized},
		{"non-shared type", patient, "/Questionnaire/q1", "", http.StatusForbidden},
		{"unlisted operation", system, "/$export", "", http.StatusForbidden},
		{"$everything on another type", patient, "/Observation/lab1/$everything", "", http.StatusForbidden},
		{"$everything of another patient", patient, "/Patient/456/$everything", "", http.StatusForbidden},
		{"shared type", patient, "/Medication/m1", "", http.StatusOK},
		{"own $everything", patient, "/Patient/123/$everything", "", http.StatusOK},
	} {
		if rec := do(v.tok, v.target, v.origin); rec.Code != v.status {
			t.Errorf("%s: status %d, want %d; body %s", v.name, rec.Code, v.status, rec.Body)
		}
	}
	if rec := do(patient, "/Medication/m1", "https://evil.example.org"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("origin added after New is allowed: %q", rec.Header().Get("Access-Control-Allow-Origin"))
	}
	if rec := do(patient, "/Medication/m1", "https://app.example.org"); rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Errorf("configured origin: allow-origin %q", rec.Header().Get("Access-Control-Allow-Origin"))
	}
}

// TestDefaultAlgorithms: the default allow-list is the one AuthConfig
// documents, and HMAC is outside it.
func TestDefaultAlgorithms(t *testing.T) {
	want := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	if !slices.Equal(defaultAlgorithms[:], want) {
		t.Fatalf("default algorithms = %v, want %v (as AuthConfig.Algorithms documents)", defaultAlgorithms, want)
	}
	a := newAuth(t, baseConfig(t))
	for _, alg := range want {
		if !a.allowed[alg] {
			t.Errorf("%s not allowed by default", alg)
		}
	}
	if len(a.allowed) != len(want) {
		t.Errorf("allowed by default: %v", a.allowed)
	}

	// HS256 is outside the default: a JWTAuth HS256 setup is refused, and
	// an HS256 token is refused by an authenticator built with the default.
	secret := randBytes(32)
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.JWTAuth = jwtauth.New("HS256", secret, nil)
	if _, err := NewAuthenticator(cfg); err == nil {
		t.Fatal("HS256 JWTAuth accepted with the default algorithms")
	}
	hs := compactJWS(mustJSON(map[string]any{"alg": "HS256", "kid": "k1", "typ": "at+jwt"}), mustJSON(validClaims()),
		func(in string) []byte { return hmacSign("HS256", secret, in) })
	h := &recordHandler{}
	if rec := doAuth(a, h, hs); rec.Code != http.StatusUnauthorized {
		t.Fatalf("HS256 token: status %d, want 401", rec.Code)
	}
	if rec := doAuth(a, h, keyRS.token(validClaims(), nil)); rec.Code != http.StatusOK {
		t.Fatalf("RS256 token: status %d, want 200", rec.Code)
	}
	if n := h.calls.Load(); n != 1 {
		t.Fatalf("handler called %d times, want 1", n)
	}
}

func TestAuthIssuersCopied(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Issuers = []string{"https://other-issuer.example.org"}
	a := newAuth(t, cfg)
	cfg.Issuers[0] = testIssuer
	if rec := doAuth(a, &recordHandler{}, keyRS.token(validClaims(), nil)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("issuer added after NewAuthenticator: status %d, want 401", rec.Code)
	}
	if rec := doAuth(a, &recordHandler{}, keyRS.token(func() map[string]any {
		c := validClaims()
		c["iss"] = "https://other-issuer.example.org"
		return c
	}(), nil)); rec.Code != http.StatusOK {
		t.Fatalf("configured issuer: status %d, want 200", rec.Code)
	}
}

// TestAuthPublicKeysCopied: a key added to the PublicKeys map after
// NewAuthenticator is not trusted (and a key removed stays trusted: the
// map is read once).
func TestAuthPublicKeysCopied(t *testing.T) {
	testKeys(t)
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.PublicKeys = map[string]crypto.PublicKey{keyES.kid: keyES.priv.Public()}
	a := newAuth(t, cfg)
	atk := newKey("attacker")
	cfg.PublicKeys[atk.kid] = atk.priv.Public()
	delete(cfg.PublicKeys, keyES.kid)
	if rec := doAuth(a, &recordHandler{}, atk.token(validClaims(), nil)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("key added after NewAuthenticator: status %d, want 401", rec.Code)
	}
	if rec := doAuth(a, &recordHandler{}, keyES.token(validClaims(), nil)); rec.Code != http.StatusOK {
		t.Fatalf("configured key: status %d, want 200", rec.Code)
	}
}
