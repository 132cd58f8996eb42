package middleware

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/discovery"
	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
	"github.com/fhirguard/fhirguard/smarttest"
)

// chooser turns fuzz bytes into configuration choices. When the bytes run
// out every choice is the first option: an empty input is the plain,
// valid configuration.
type chooser struct{ b []byte }

func (c *chooser) n(k int) int {
	if len(c.b) == 0 || k <= 1 {
		return 0
	}
	v := int(c.b[0]) % k
	c.b = c.b[1:]
	return v
}

func (c *chooser) bit() bool { return c.n(2) == 1 }

func pick[T any](c *chooser, opts ...T) T { return opts[c.n(len(opts))] }

// guardFixtures are built once per fuzz run: an authorization server,
// tokens of every kind, and discovery handlers.
type guardFixtures struct {
	as       *smarttest.Server
	tokens   []string
	dh       *discovery.Handler
	prh      *discovery.ProtectedResourceHandler
	prhOther *discovery.ProtectedResourceHandler
	quiet    *slog.Logger
	jwks     []byte
	jwksURL  string
	issuer   string
}

func newGuardFixtures(tb testing.TB) *guardFixtures {
	tb.Helper()
	as, err := smarttest.New(smarttest.Config{FHIRBase: testBase})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(as.Close)
	fx := &guardFixtures{as: as, quiet: quietLogger(), jwks: as.JWKS(), jwksURL: as.SMARTConfiguration().JWKSURI, issuer: as.SMARTConfiguration().Issuer}
	for _, o := range []smarttest.TokenOptions{
		{Scopes: "launch/patient patient/*.cruds", Patient: "123"},
		{Scopes: "system/*.cruds"},
		{Scopes: "patient/Observation.rs?category=laboratory patient/Patient.r", Patient: "123"},
		{Scopes: "user/*.cruds", FHIRUser: "Patient/123"},
		{Scopes: "user/*.rs", FHIRUser: "Practitioner/9"},
		{Scopes: "launch/patient launch/encounter patient/*.rs", Patient: "123", Encounter: "e1"},
		{Scopes: "patient/*.rs", ExtraClaims: map[string]any{"patient": 123}},
		{Scopes: "patient/*.rs", Patient: "123", Audience: []string{"https://other.example.org/fhir"}},
		{Scopes: "system/*.rs", Lifetime: -time.Hour},
	} {
		tok, err := as.MintToken(o)
		if err != nil {
			tb.Fatal(err)
		}
		fx.tokens = append(fx.tokens, tok)
	}
	fx.tokens = append(fx.tokens, "opaque-token", "a.b.c", "")
	doc := discovery.Document{}
	b := as.SMARTConfiguration()
	if err := remarshal(b, &doc); err != nil {
		tb.Fatal(err)
	}
	if fx.dh, err = discovery.NewHandler(&doc, discovery.HandlerConfig{}); err != nil {
		tb.Fatal(err)
	}
	if fx.prh, err = discovery.NewProtectedResourceHandler(doc.ProtectedResource(testBase, as.SMARTConfiguration().Issuer), discovery.HandlerConfig{}); err != nil {
		tb.Fatal(err)
	}
	if fx.prhOther, err = discovery.NewProtectedResourceHandler(doc.ProtectedResource("https://other.example.org/fhir", as.SMARTConfiguration().Issuer), discovery.HandlerConfig{}); err != nil {
		tb.Fatal(err)
	}
	return fx
}

// remarshal copies src into dst through JSON.
func remarshal(src, dst any) error {
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// fuzzPolicy denies what its function says; a nil *fuzzPolicy panics if
// called, which New must refuse.
type fuzzPolicy struct {
	deny func(r *http.Request, t *Token, d *Decision) error
}

func (p *fuzzPolicy) AuthorizeRequest(r *http.Request, t *Token, d *Decision) error {
	return p.deny(r, t, d)
}

type fuzzResourcePolicy struct{ fuzzPolicy }

func (p *fuzzResourcePolicy) AuthorizeResource(r *http.Request, t *Token, d *Decision, phase ResourcePhase, res map[string]any) error {
	if id, _ := res["id"].(string); strings.Contains(id, "7") {
		return &PolicyDenial{Rule: "no-sevens", Message: "no"}
	}
	return nil
}

// nilHandler is a handler whose nil pointer panics when served.
type nilHandler struct{ body string }

func (h *nilHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, h.body) }

// fuzzConfig builds a Config from c, varying every field that can vary,
// valid values and broken ones alike.
func fuzzConfig(c *chooser, fx *guardFixtures) Config {
	var cfg Config
	az := &cfg.Authorize
	az.BaseURL = pick(c, testBase, "https://ehr.example.org", "https://ehr.example.org/", "https://ehr.example.org/fhir/",
		"http://127.0.0.1:8080/r4", "https://ehr.example.org/a/b/c", "", "ehr.example.org/fhir", "https://",
		"https://ehr.example.org/fhir?x=1", "https://ehr.example.org/fh%20ir", "https://ehr.example.org/.well-known",
		"https://ehr.example.org//fhir", "https://u:p@ehr.example.org/fhir", "https://ehr.example.org/fhir#f",
		"https://[::1]/fhir", "https://ehr.example.org/{x}", "https://ehr.example.org/fhir/$op", "https://EHR.example.org:443/fhir")
	az.AlternateBaseURLs = pick(c, nil, []string{"https://alt.example.org/fhir"}, []string{"https://alt.example.org/other"},
		[]string{""}, []string{"http://10.0.0.1:8080/fhir/"}, []string{"%"})
	az.FHIRVersion = pick(c, 0, fhir.R4, fhir.R5, 7)
	az.DenyStatus = pick(c, 0, 404, 403, 200, 500, -1)
	az.SharedTypes = pick(c, nil, []string{}, []string{"Questionnaire"}, []string{"Patient"}, []string{"NotAType"},
		[]string{""}, []string{"Medication", "Medication"}, []string{"Observation"})
	az.IncludeLinkedPatients = c.bit()
	az.LiteralCompartments = c.bit()
	az.NarrowingHonoured = c.bit()
	az.EnforceEncounter = c.bit()
	az.RequireEncounter = c.bit()
	deny := func(r *http.Request, t *Token, d *Decision) error {
		if d != nil && d.Interaction.ResourceType == "Condition" {
			return &PolicyDenial{Rule: "no-conditions", Message: "no"}
		}
		return nil
	}
	az.Policies = pick(c, nil, []Policy{nil}, []Policy{(*fuzzPolicy)(nil)}, []Policy{&fuzzPolicy{deny: deny}},
		[]Policy{&fuzzResourcePolicy{fuzzPolicy{deny: deny}}},
		[]Policy{&fuzzPolicy{deny: func(*http.Request, *Token, *Decision) error { return errors.New("broken") }}},
		[]Policy{(*fuzzResourcePolicy)(nil)})
	az.StrictGranularSearch = c.bit()
	switch c.n(4) {
	case 1:
		az.Operations = []Operation{}
	case 2:
		az.Operations = DefaultOperations()
	case 3:
		op := Operation{
			Name:       pick(c, "everything", "lastn", "validate", "meta", "export", "graphql", "", "$x", "bogus op"),
			Types:      pick(c, nil, []string{"Patient"}, []string{"Observation", "Patient"}, []string{"Bogus"}),
			Permission: scope.Permission(c.n(256)),
			Search:     c.bit(),
			OwnPatient: c.bit(),
			Stored:     c.bit(),
			Response:   OperationResponse(c.n(5)),
		}
		for range c.n(4) {
			op.Levels = append(op.Levels, fhirrest.Level(c.n(5)))
		}
		az.Operations = append(DefaultOperations()[:c.n(5)], op)
	}
	az.MaxResponseBytes = pick[int64](c, 0, -1, 1, 64, 1<<10, 1<<20, 1<<40)
	az.MaxBodyBytes = pick[int64](c, 0, -5, 1, 32, 1<<19, 1<<41)
	az.Logger = pick(c, fx.quiet, &slog.Logger{})
	if c.bit() {
		az.OnDecision = func(r *http.Request, d *Decision, refusal error) {
			if d != nil {
				_ = d.Interaction.Kind.String() + d.CompartmentID + fmt.Sprint(len(d.Withheld))
			}
			if refusal != nil {
				_ = refusal.Error()
			}
		}
	}

	au := &cfg.Auth
	au.Audience = pick(c, "", testBase, "https://other.example.org/fhir", "x")
	switch c.n(6) {
	case 0:
		au.JWKS = fx.jwks
	case 1:
		au.JWKSURL, au.InsecureAllowHTTPKeyURLs = fx.jwksURL, c.bit()
	case 2:
		au.JWKS = []byte("{}")
	case 3:
		au.JWKS = []byte("not json")
	case 4: // none
	case 5:
		au.JWKS, au.JWKSURL = fx.jwks, fx.jwksURL
	}
	au.Issuers = pick(c, []string{fx.issuer}, nil, []string{""}, []string{"https://other.example.org"})
	au.Mode = TokenMode(c.n(6))
	au.Algorithms = pick(c, nil, []string{"RS256"}, []string{"none"}, []string{"HS256"}, []string{""}, []string{"ES256"})
	au.AllowQuery = c.bit()
	au.AllowFormBody = c.bit()
	au.InsecureAllowHTTP = c.bit()
	au.StrictTokenType = c.bit()
	au.TrustedProxies = pick(c, nil, []string{"192.0.2.0/24"}, []string{"bogus"}, []string{"192.0.2.1"})
	au.MaxTokenBytes = pick(c, 0, 100, 256, 1<<20, -1)
	au.Leeway = pick(c, 0, -1, time.Minute, 100*time.Hour)
	au.MaxLifetime = pick(c, 0, -1, time.Minute, 100*time.Hour)
	au.Logger = pick(c, fx.quiet, &slog.Logger{})

	co := &cfg.CORS
	co.AllowedOrigins = pick(c, nil, []string{"*"}, []string{"https://app.example.org"}, []string{"https://app.example.org/"},
		[]string{"null"}, []string{"*", "https://a.example.org"})
	if c.bit() {
		co.AllowOrigin = func(o string) bool { return len(o)%2 == 0 }
	}
	if c.bit() {
		co.AllowOriginForClient = func(o, client string) bool { return strings.HasPrefix(o, "https://") && client != "" }
	}
	co.AllowedHeaders = pick(c, nil, []string{"Authorization"}, []string{"X-Custom"}, []string{"bad header"}, []string{""})
	co.ExposedHeaders = pick(c, nil, []string{"ETag"}, []string{"a\r\nb"})
	co.MaxAge = pick(c, 0, -1, 1, time.Duration(1<<62))

	cfg.SMARTConfiguration = pick(c, fx.dh, nil, &discovery.Handler{})
	cfg.ProtectedResource = pick[http.Handler](c, nil, fx.prh, (*discovery.ProtectedResourceHandler)(nil),
		&discovery.ProtectedResourceHandler{}, http.HandlerFunc(nil), (*nilHandler)(nil), fx.prhOther,
		http.NotFoundHandler(), &nilHandler{body: "hello"})
	cfg.PatchCapabilities = c.bit()
	return cfg
}

// fuzzFHIR is the wrapped server: the leaky store, a CapabilityStatement at
// /metadata, and whatever the store says elsewhere.
func fuzzFHIR(t *testing.T, basePath string, noCredentials bool) http.Handler {
	store := newLeaky()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if p == basePath+"/.well-known" || strings.HasPrefix(p, basePath+"/.well-known/") {
			t.Errorf("the handler got %s %s", r.Method, r.URL)
		}
		if noCredentials && !(p == basePath+"/metadata" && (r.Method == http.MethodGet || r.Method == http.MethodHead)) {
			t.Errorf("a request without a token reached the handler: %s %s", r.Method, r.URL)
		}
		if strings.HasSuffix(p, "/metadata") {
			w.Header().Set("Content-Type", "application/fhir+json")
			io.WriteString(w, `{"resourceType":"CapabilityStatement","rest":[{"mode":"server"}]}`)
			return
		}
		store.ServeHTTP(w, r)
	})
}

// fuzzRequest reads a request as a server would; ok is false when the
// bytes are not an HTTP/1.1 request.
func fuzzRequest(ctl uint8, tokens []string, method, target, headers string, body []byte) (*http.Request, bool) {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: ehr.example.org\r\n")
	for line := range strings.SplitSeq(headers, "\n") {
		if line = strings.TrimRight(line, "\r"); line != "" {
			b.WriteString(line + "\r\n")
		}
	}
	tok := tokens[int(ctl&0x0f)%len(tokens)]
	if tok != "" {
		switch ctl >> 4 & 3 {
		case 0:
			b.WriteString("Authorization: Bearer " + tok + "\r\n")
		case 1:
			b.WriteString("Authorization: bearer  " + tok + "\r\n")
		case 2:
			b.WriteString("Authorization: Basic " + tok + "\r\n")
		}
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		return nil, false
	}
	r.RemoteAddr = "192.0.2.1:1234"
	if ctl&0x40 != 0 {
		r.TLS = &tls.ConnectionState{}
	}
	if ctl&0x80 != 0 {
		r = r.WithContext(context.WithValue(r.Context(), fuzzCtxKey{}, "other"))
	}
	return r, true
}

// fuzzCtxKey puts an unrelated value in some requests' context.
type fuzzCtxKey struct{}

// hasCredentials reports whether r could carry an access token anywhere.
func hasCredentials(r *http.Request, body []byte) bool {
	if len(r.Header.Values("Authorization")) > 0 {
		return true
	}
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), "access") }
	return has(r.URL.RawQuery) || has(string(body)) || has(r.URL.Path)
}

// FuzzGuard: whatever Config New accepts, no request panics, neither New
// nor Handler nor MountProtectedResource. The wrapped handler never sees a
// well-known path, nor a request without a token except a read of
// /metadata.
func FuzzGuard(f *testing.F) {
	for _, s := range []struct {
		cfg                    string
		ctl                    uint8
		method, target, header string
		body                   string
	}{
		{"", 0x40, "GET", "/fhir/Observation/lab1", "", ""},
		{"", 0x41, "GET", "/fhir/Observation?code=x&_include=*", "Origin: https://app.example.org", ""},
		{"", 0x42, "POST", "/fhir/Observation", "Content-Type: application/fhir+json", `{"resourceType":"Observation","subject":{"reference":"Patient/456"}}`},
		{"", 0x40, "POST", "/fhir", "Content-Type: application/fhir+json", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation/o456"}}]}`},
		{"", 0x40, "PATCH", "/fhir/Observation/lab1", "Content-Type: application/json-patch+json", `[{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`},
		{"", 0x4b, "GET", "/fhir/.well-known/smart-configuration", "", ""},
		{"", 0x40, "DELETE", "/fhir/.well-known/anything", "", ""},
		{"", 0x00, "OPTIONS", "/fhir/Observation", "Origin: https://app.example.org\nAccess-Control-Request-Method: GET", ""},
		{"", 0x00, "GET", "/fhir/metadata", "", ""},
		{"", 0x00, "GET", "/.well-known/oauth-protected-resource/fhir", "", ""},
		{"", 0x43, "GET", "/fhir/Patient/123/$everything", "", ""},
		{"", 0x45, "GET", "/fhir/Encounter/e1", "", ""},
		{"", 0x46, "GET", "/fhir/Observation/lab1", "", ""},
		{"", 0x40, "GET", "/fhir/Observation?access_token=abc", "", ""},
		{"\x00\x00\x00\x00\x00\x01\x01\x01\x01\x01\x04\x00\x03\x02\x07\x03\x05\x01\x01\x01\x02\x01\x00\x02", 0x40, "GET", "/fhir/Patient/123/$everything", "", ""},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x04\x00\x00\x01\x00\x00\x00\x04\x01\x03\x01\x02", 0x40, "GET", "/fhir/Observation/$lastn", "", ""},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03", 0x40, "GET", "/fhir/Observation", "", ""},
		{strings.Repeat("\x00", 30) + "\x01\x01", 0x40, "GET", "/fhir/metadata", "", ""},
		{strings.Repeat("\x00", 44) + "\x02", 0x40, "GET", "/fhir/Patient/123", "", ""},
		{strings.Repeat("\x01", 60), 0x40, "GET", "/fhir/Patient/123", "", ""},
		{strings.Repeat("\x02", 60), 0x41, "PUT", "/fhir/Patient/123", "Content-Type: application/fhir+json", `{"resourceType":"Patient","id":"123"}`},
		{strings.Repeat("\x03", 60), 0x40, "GET", "/fhir/Observation?_summary=count", "", ""},
		{strings.Repeat("\x05", 60), 0x40, "GET", "/fhir/.well-known/smart-configuration", "", ""},
		{strings.Repeat("\x07", 60), 0x40, "GET", "/fhir/Condition?patient=123", "", ""},
		{strings.Repeat("\xff", 60), 0xff, "HEAD", "/fhir/metadata", "Origin: null", ""},
	} {
		f.Add([]byte(s.cfg), s.ctl, s.method, s.target, s.header, []byte(s.body))
	}
	fx := newGuardFixtures(f)
	f.Fuzz(func(t *testing.T, cfgBytes []byte, ctl uint8, method, target, headers string, body []byte) {
		var cfg Config
		stage := "New"
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("panic in %s: %v\nconfig: %+v\n%s", stage, p, cfg, debug.Stack())
			}
		}()
		cfg = fuzzConfig(&chooser{b: cfgBytes}, fx)
		g, err := New(cfg)
		if err != nil {
			return
		}
		defer g.Close()
		stage = "MountProtectedResource"
		_ = g.MountProtectedResource(http.NewServeMux())
		stage = "request"
		r, ok := fuzzRequest(ctl, fx.tokens, method, target, headers, body)
		if !ok {
			return
		}
		h := g.Handler(fuzzFHIR(t, g.basePath, !hasCredentials(r, body)))
		h.ServeHTTP(httptest.NewRecorder(), r)
	})
}
