package benchmarks

// Micro-benchmarks of fhirguard's hot paths, each next to its baseline in
// the same run. Sub-benchmarks are named impl=baseline and impl=fhirguard
// (BenchmarkToken: impl=jwtauth, first and cached) so that
//
//	benchstat -col /impl micro.txt
//
// prints them side by side with the ratio. run.sh does this.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/jwtauth/v5"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/fhirguard/fhirguard/benchmarks/internal/harness"
	"github.com/fhirguard/fhirguard/celpolicy"
	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

var (
	sinkBool bool
	sinkAny  any
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// nopWriter discards the response, so that benchmarks measure the
// middleware and not httptest.ResponseRecorder.
type nopWriter struct {
	h      http.Header
	status int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(s int)           { w.status = s }

// scopeString returns n distinct patient resource scopes, the checked type
// (Observation) last: the worst case for a scan.
func scopeString(n int) string {
	types := fhir.ResourceTypes(fhir.R4)
	var parts []string
	for i := 0; len(parts) < n-1; i++ {
		if t := types[i%len(types)]; t != "Observation" {
			parts = append(parts, fmt.Sprintf("patient/%s.%s", t, []string{"rs", "r", "cruds", "s"}[i/len(types)%4]))
		}
	}
	return strings.Join(append(parts, "patient/Observation.rs"), " ")
}

// naiveAllows is the per-request baseline: parse every scope of the
// token's scope string with the same parser and scan for a grant, as peer
// implementations do on every request.
func naiveAllows(scopes string, ctx scope.Context, typ string, p scope.Permission) bool {
	for _, f := range strings.Fields(scopes) {
		s, err := scope.Parse(f)
		if err != nil || s.Kind != scope.KindResource || s.Context != ctx {
			continue
		}
		if (s.ResourceType == typ || s.ResourceType == "*") && s.Permissions&p == p {
			return true
		}
	}
	return false
}

// BenchmarkScopeCheck: may this token read Observation? Baseline: parse and
// scan the scope string per request; fhirguard: the compiled Matcher.
func BenchmarkScopeCheck(b *testing.B) {
	for _, n := range []int{1, 20, 100} {
		s := scopeString(n)
		m := scope.Compile(scope.ParseSet(s))
		if !naiveAllows(s, scope.Patient, "Observation", scope.Read) || !m.Allows(scope.Patient, "Observation", scope.Read) {
			b.Fatal("fixture does not grant the checked type")
		}
		b.Run(fmt.Sprintf("scopes=%d/impl=baseline", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = naiveAllows(s, scope.Patient, "Observation", scope.Read)
			}
		})
		b.Run(fmt.Sprintf("scopes=%d/impl=fhirguard", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = m.Allows(scope.Patient, "Observation", scope.Read)
			}
		})
	}
}

// classifyCases are the requests of BenchmarkClassify with the stdlib
// ServeMux patterns that route them.
var classifyCases = []struct{ name, method, target string }{
	{"read", "GET", "/Observation/123"},
	{"search", "GET", "/Observation?patient=123&code=http://loinc.org|2339-0&_count=10"},
	{"compartment", "GET", "/Patient/123/Observation?code=2339-0"},
	{"operation", "GET", "/Patient/123/$everything"},
}

func routingMux() *http.ServeMux {
	mux := http.NewServeMux()
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, p := range []string{"/{type}/{id}", "/{type}", "/{ctype}/{cid}/{type}"} {
		mux.Handle("GET "+harness.BasePath+p, nop)
	}
	return mux
}

// BenchmarkClassify: request → FHIR interaction. Baseline: stdlib ServeMux
// routing of the same request (which only finds a handler; it checks no
// canonical form, type, id or method override).
func BenchmarkClassify(b *testing.B) {
	mux := routingMux()
	for _, tc := range classifyCases {
		r := httptest.NewRequest(tc.method, harness.BaseURL+tc.target, nil)
		if _, err := fhirrest.Classify(r, harness.BasePath); err != nil {
			b.Fatalf("%s: %v", tc.name, err)
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			b.Fatalf("%s: no route", tc.name)
		}
		b.Run("route="+tc.name+"/impl=baseline", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, p := mux.Handler(r)
				sinkBool = p != ""
			}
		})
		b.Run("route="+tc.name+"/impl=fhirguard", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				in, err := fhirrest.Classify(r, harness.BasePath)
				if err != nil {
					b.Fatal(err)
				}
				sinkBool = in.Kind == fhirrest.KindUnknown
			}
		})
	}
}

func patientToken() *middleware.Token {
	return &middleware.Token{Subject: "Patient/123", ClientID: "app", Issuer: harness.IssuerURL, Audience: []string{harness.BaseURL},
		Expiry: time.Now().Add(time.Hour), Patient: "123", FHIRUser: "Patient/123",
		Scopes: scope.Compile(scope.ParseSet(harness.PatientScopes)),
		Claims: map[string]any{"scope": harness.PatientScopes}}
}

// BenchmarkGuard: the whole stack (CORS, public endpoints, Authenticate
// answering from its cache, Authorize) reading an Observation, against the
// bare FHIR handler: the in-process form of the load test's target.
// route=read is a system token (no response verification, the load test's
// guard-system); route=read-patient a patient token whose response is
// verified against the patient's compartment (guard-patient).
func BenchmarkGuard(b *testing.B) {
	for _, route := range []struct{ name, tok string }{
		{"read", sign(b, harness.TokenSpec{Scopes: harness.SystemScopes})},
		{"read-patient", sign(b, harness.TokenSpec{Alg: "ES256", Scopes: harness.PatientScopes, Patient: "123"})},
	} {
		for _, m := range []harness.Mode{harness.Bare, harness.Guarded} {
			h := newServer(b, m)
			r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+harness.BasePath+"/Observation/1", nil)
			r.Header.Set("Authorization", "Bearer "+route.tok)
			w := &nopWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			if w.status != 0 && w.status != http.StatusOK {
				b.Fatalf("%v: status %d", m, w.status)
			}
			name := map[harness.Mode]string{harness.Bare: "baseline", harness.Guarded: "fhirguard"}[m]
			b.Run("route="+route.name+"/impl="+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, r)
				}
			})
		}
	}
}

// searchBundle100 is a 100-entry searchset, half of it another patient's.
func searchBundle100() []byte {
	var entries []string
	for i := range 100 {
		pid := []string{"123", "456"}[i%2]
		obs := strings.Replace(string(harness.ObservationJSON(fmt.Sprintf("o%d", i))), "Patient/123", "Patient/"+pid, 1)
		entries = append(entries, fmt.Sprintf(`{"fullUrl":"%s/Observation/o%d","resource":%s,"search":{"mode":"match"}}`, harness.BaseURL, i, obs))
	}
	return []byte(`{"resourceType":"Bundle","type":"searchset","total":100,"entry":[` + strings.Join(entries, ",") + `]}`)
}

// BenchmarkVerifyBundle100: a patient token's search whose 100-entry
// response the Guard verifies (removing the other patient's half); the
// token is answered from the Guard's cache. Baseline: json.Unmarshal of the
// same Bundle, the least any verification must do.
func BenchmarkVerifyBundle100(b *testing.B) {
	body := searchBundle100()
	b.Run("impl=baseline", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
			sinkAny = v
		}
	})
	h := guarded(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(body)
	}))
	r := httptest.NewRequest(http.MethodGet, harness.BaseURL+"/Observation?code=2339-0", nil)
	r.Header.Set("Authorization", "Bearer "+sign(b, harness.TokenSpec{Scopes: harness.PatientScopes, Patient: "123"}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var got struct {
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK || len(got.Entry) != 50 {
		b.Fatalf("verification fixture: status %d, %d entries, %v", rec.Code, len(got.Entry), err)
	}
	b.Run("impl=fhirguard", func(b *testing.B) {
		w := &nopWriter{h: http.Header{}}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

// guarded puts next behind a Guard that trusts the test issuer, as
// NewServer does for FHIRHandler.
func guarded(b *testing.B, next http.Handler) http.Handler {
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{BaseURL: harness.BaseURL, Logger: quiet()},
		Auth: middleware.AuthConfig{Issuers: []string{harness.IssuerURL}, PublicKeys: testIssuer(b).PublicKeys(),
			InsecureAllowHTTP: true, Logger: quiet()},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	return g.Handler(next)
}

// goPolicy is a hand-written Go middleware.Policy: the baseline of a CEL
// rule.
type goPolicy func(r *http.Request, t *middleware.Token, d *middleware.Decision) bool

func (p goPolicy) AuthorizeRequest(r *http.Request, t *middleware.Token, d *middleware.Decision) error {
	if !p(r, t, d) {
		return &middleware.PolicyDenial{Rule: "go", Message: "no"}
	}
	return nil
}

// hasScope reports whether the space-separated list has the scope.
func hasScope(list, s string) bool {
	for list != "" {
		var f string
		f, list, _ = strings.Cut(list, " ")
		if f == s {
			return true
		}
	}
	return false
}

// celRules are the typical rules of the research notes, each with the same
// rule written in Go.
var celRules = []struct {
	name, expr string
	goRule     goPolicy
}{
	{"E1-method-and-scope-prefix", `request.method == 'GET' && token.scopes.exists(s, s.startsWith('patient/'))`,
		func(r *http.Request, t *middleware.Token, d *middleware.Decision) bool {
			return r.Method == http.MethodGet && strings.Contains(" "+t.Claims["scope"].(string), " patient/")
		}},
	{"E2-type-and-patient-param", `request.resourceType in ['Patient','Observation'] && token.patient == request.query['patient'][0]`,
		func(r *http.Request, t *middleware.Token, d *middleware.Decision) bool {
			rt := d.Interaction.ResourceType
			return (rt == "Patient" || rt == "Observation") && t.Patient == d.Interaction.Query.Get("patient")
		}},
	{"E3-hours", `now.getHours() >= 7 && now.getHours() < 19`,
		func(r *http.Request, t *middleware.Token, d *middleware.Decision) bool {
			h := benchNoon.Hour()
			return h >= 7 && h < 19
		}},
	{"E4-scope-strings", `('patient/' + request.resourceType + '.rs') in token.scopes || ('patient/' + request.resourceType + '.read') in token.scopes`,
		func(r *http.Request, t *middleware.Token, d *middleware.Decision) bool {
			s := t.Claims["scope"].(string)
			return hasScope(s, "patient/"+d.Interaction.ResourceType+".rs") || hasScope(s, "patient/"+d.Interaction.ResourceType+".read")
		}},
}

var benchNoon = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// BenchmarkCEL: one typical rule through celpolicy (default configuration:
// cost limit, bounded fast path) against the same rule in Go.
func BenchmarkCEL(b *testing.B) {
	tok := patientToken()
	d := &middleware.Decision{
		Interaction: fhirrest.Interaction{Kind: fhirrest.SearchType, Method: "GET", ResourceType: "Observation",
			Query: url.Values{"patient": {"123"}, "code": {"1234-5"}}},
		Context: scope.Patient, CompartmentType: "Patient", CompartmentID: "123",
	}
	r := httptest.NewRequest("GET", harness.BaseURL+"/Observation?patient=123&code=1234-5", nil)
	for _, rule := range celRules {
		p, err := celpolicy.New(celpolicy.Config{
			Rules: []celpolicy.Rule{{Name: "r", Effect: celpolicy.Require, When: rule.expr, Message: "no"}},
			Now:   func() time.Time { return benchNoon },
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, impl := range []struct {
			name string
			p    middleware.Policy
		}{{"baseline", rule.goRule}, {"fhirguard", p}} {
			if err := impl.p.AuthorizeRequest(r, tok, d); err != nil {
				b.Fatalf("%s %s denies: %v", rule.name, impl.name, err)
			}
			b.Run("rule="+rule.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.p.AuthorizeRequest(r, tok, d); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// authFor returns fhirguard's Authenticate over iss's keys; a positive
// cacheSize bounds its token cache. cached counts answers from the cache.
func authFor(b *testing.B, cacheSize int, cached *atomic.Int64) http.Handler {
	a, err := middleware.NewAuthenticator(middleware.AuthConfig{
		Audience: harness.BaseURL, Issuers: []string{harness.IssuerURL}, PublicKeys: testIssuer(b).PublicKeys(),
		InsecureAllowHTTP: true, CacheSize: cacheSize, Logger: quiet(),
		OnDecision: func(e middleware.AuthEvent) {
			if e.Cached {
				cached.Add(1)
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	return a.Handler(tokenUser())
}

// tokenUser is the handler behind the authenticators. It does nothing, so
// that the benchmark measures the middleware; a refusal shows as a status.
func tokenUser() http.Handler {
	return http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
}

// jwtauthFor is the stock jwtauth stack (Verifier + Authenticator) with the
// same issuer, audience and leeway checks: it verifies every request.
func jwtauthFor(b *testing.B, alg string) http.Handler {
	pub, err := testIssuer(b).PublicKey(alg)
	if err != nil {
		b.Fatal(err)
	}
	ja := jwtauth.New(alg, nil, pub, jwt.WithIssuer(harness.IssuerURL), jwt.WithAudience(harness.BaseURL), jwt.WithAcceptableSkew(30*time.Second))
	return jwtauth.Verifier(ja)(jwtauth.Authenticator(ja)(tokenUser()))
}

// BenchmarkToken: token verification through the whole authentication
// middleware, per algorithm:
//
//   - impl=jwtauth: stock jwtauth Verifier + Authenticator (the baseline;
//     it verifies every request);
//   - impl=first: fhirguard's Authenticate on first sight (strict parse,
//     header policy, signature, claims, the Token with its shared
//     matcher), forced by alternating two tokens through a one-entry cache;
//   - impl=cached: fhirguard's Authenticate answering from its cache.
//
// Every variant alternates between the same two tokens.
func BenchmarkToken(b *testing.B) {
	for _, alg := range harness.Algorithms {
		var toks [2]*http.Request
		for i := range toks {
			tok := sign(b, harness.TokenSpec{Alg: alg, Scopes: harness.PatientScopes, Patient: "123", ID: i})
			toks[i] = httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+harness.BasePath+"/Observation/1", nil)
			toks[i].Header.Set("Authorization", "Bearer "+tok)
		}
		var firstHits, cachedHits atomic.Int64
		for _, impl := range []struct {
			name     string
			h        http.Handler
			hits     *atomic.Int64
			wantHits bool
		}{
			{"jwtauth", jwtauthFor(b, alg), nil, false},
			{"first", authFor(b, 1, &firstHits), &firstHits, false},
			{"cached", authFor(b, 0, &cachedHits), &cachedHits, true},
		} {
			w := &nopWriter{h: http.Header{}}
			for range 2 {
				for _, r := range toks {
					impl.h.ServeHTTP(w, r)
					if w.status != 0 {
						b.Fatalf("%s %s: status %d", alg, impl.name, w.status)
					}
				}
			}
			if impl.hits != nil && (impl.hits.Load() > 0) != impl.wantHits {
				b.Fatalf("%s %s: %d cache hits", alg, impl.name, impl.hits.Load())
			}
			b.Run("alg="+alg+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					impl.h.ServeHTTP(w, toks[i&1])
					i++
				}
			})
		}
	}
}

// BenchmarkIntrospection: an opaque token through Authenticate in
// introspection mode. Baseline: a loopback introspection round trip on every
// request (one-entry cache, two alternating tokens); fhirguard: the cache
// hit.
func BenchmarkIntrospection(b *testing.B) {
	srv := httptest.NewServer(introspectionEndpoint())
	b.Cleanup(srv.Close)
	for _, impl := range []struct {
		name      string
		cacheSize int
	}{{"baseline", 1}, {"fhirguard", 0}} {
		a, err := middleware.NewAuthenticator(middleware.AuthConfig{
			Audience: harness.BaseURL, Issuers: []string{harness.IssuerURL}, Mode: middleware.ModeIntrospection,
			Introspection: &middleware.IntrospectionConfig{
				Endpoint: srv.URL, ClientID: "rs", ClientSecret: "secret", CacheSize: impl.cacheSize,
			},
			InsecureAllowHTTP: true, InsecureAllowHTTPKeyURLs: true, Logger: quiet(),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(a.Close)
		h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, ok := middleware.TokenFromContext(r.Context()); !ok || t.Patient != "123" {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}))
		var reqs [2]*http.Request
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+harness.BasePath+"/Observation/1", nil)
			reqs[i].Header.Set("Authorization", fmt.Sprintf("Bearer opaque-token-%d", i))
		}
		w := &nopWriter{h: http.Header{}}
		for _, r := range reqs {
			h.ServeHTTP(w, r)
			if w.status != 0 {
				b.Fatalf("%s: status %d", impl.name, w.status)
			}
		}
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.ServeHTTP(w, reqs[i&1])
				i++
			}
		})
	}
}

// introspectionEndpoint answers every RFC 7662 request with an active
// patient token.
func introspectionEndpoint() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var buf bytes.Buffer
		_ = json.NewEncoder(&buf).Encode(map[string]any{
			"active": true, "scope": harness.PatientScopes, "client_id": "bench-app", "sub": "Patient/123",
			"iss": harness.IssuerURL, "aud": harness.BaseURL, "exp": time.Now().Add(30 * time.Minute).Unix(),
			"patient": "123", "token_type": "Bearer",
		})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(buf.Bytes())
	})
}
