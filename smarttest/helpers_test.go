package smarttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

const (
	testFHIRBase = "https://fhir.example.org/r4"
	appID        = "app"
	appRedirect  = "https://app.example/callback"
	confID       = "conf-app"
	confSecret   = "s3cret:with&odd=chars"
	rsID         = "resource-server"
	rsSecret     = "rs-secret"
	// verifier is a fixed PKCE code verifier (43 characters).
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a running server with the usual clients.
type fixture struct {
	t     *testing.T
	srv   *Server
	clock *fakeClock
	rsa   *rsa.PrivateKey   // backend client key, kid "rsa-1"
	ec    *ecdsa.PrivateKey // backend client key, kid "ec-1"
}

var (
	keyOnce  sync.Once
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	otherRSA *rsa.PrivateKey
)

func testKeys(t testing.TB) {
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		if otherRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	})
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	testKeys(t)
	clock := &fakeClock{t: time.Now()}
	cfg := Config{FHIRBase: testFHIRBase, User: "Practitioner/7", Patient: "123", Encounter: "enc-1", Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	f := &fixture{t: t, srv: srv, clock: clock, rsa: rsaKey, ec: ecKey}
	must(t, srv.RegisterClient(Client{ID: appID, RedirectURIs: []string{appRedirect, "http://127.0.0.1:9999/cb?x=1"}}))
	must(t, srv.RegisterClient(Client{ID: confID, Secret: confSecret, RedirectURIs: []string{appRedirect}, AllowedScopes: []string{
		"launch", "launch/patient", "openid", "fhirUser", "offline_access", "patient/Observation.rs", "patient/Patient.read", "user/*.rs",
	}}))
	must(t, srv.RegisterClient(Client{ID: "backend", PublicKeys: map[string]crypto.PublicKey{"rsa-1": rsaKey.Public(), "ec-1": ecKey.Public()}}))
	must(t, srv.RegisterClient(Client{ID: rsID, Secret: rsSecret, Introspect: true}))
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authParams returns a valid standalone authorization request for the
// public app.
func authParams(scope string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {appID},
		"redirect_uri":          {appRedirect},
		"scope":                 {scope},
		"state":                 {"st-1"},
		"aud":                   {testFHIRBase},
		"code_challenge":        {S256Challenge(verifier)},
		"code_challenge_method": {"S256"},
	}
}

// authorize sends an authorization request and returns the status and the
// redirect's query (nil when there is no redirect).
func (f *fixture) authorize(q url.Values) (int, url.Values) {
	f.t.Helper()
	resp, err := noRedirect.Get(f.srv.SMARTConfiguration().AuthorizationEndpoint + "?" + q.Encode())
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, loc.Query()
}

// code runs a successful authorization request and returns the code.
func (f *fixture) code(q url.Values) string {
	f.t.Helper()
	st, red := f.authorize(q)
	if st != http.StatusFound || red.Get("code") == "" {
		f.t.Fatalf("authorize: status %d, redirect %v", st, red)
	}
	return red.Get("code")
}

// post sends a form to an endpoint with optional extra headers.
func (f *fixture) post(endpoint string, form url.Values, hdr map[string]string) (int, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			f.t.Fatalf("status %d, body not JSON: %q", resp.StatusCode, body)
		}
	}
	return resp.StatusCode, m
}

func (f *fixture) token(form url.Values, hdr map[string]string) (int, map[string]any) {
	f.t.Helper()
	return f.post(f.srv.SMARTConfiguration().TokenEndpoint, form, hdr)
}

func (f *fixture) redeem(code string) (int, map[string]any) {
	f.t.Helper()
	return f.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect},
		"client_id": {appID}, "code_verifier": {verifier}}, nil)
}

// introspect calls the introspection endpoint as the resource server.
func (f *fixture) introspect(tok string) map[string]any {
	f.t.Helper()
	st, m := f.post(f.srv.SMARTConfiguration().IntrospectionEndpoint, url.Values{"token": {tok}}, map[string]string{"Authorization": basicAuth(rsID, rsSecret)})
	if st != http.StatusOK {
		f.t.Fatalf("introspect: status %d %v", st, m)
	}
	return m
}

func (f *fixture) assertion(key any, kid string, mod func(*Assertion)) string {
	f.t.Helper()
	a := Assertion{ClientID: "backend", Audience: f.srv.SMARTConfiguration().TokenEndpoint, KeyID: kid, IssuedAt: f.clock.Now()}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		a.Key = k
	case *ecdsa.PrivateKey:
		a.Key = k
	}
	if mod != nil {
		mod(&a)
	}
	s, err := SignClientAssertion(a)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func backendForm(assertion, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {AssertionType},
		"client_assertion": {assertion}, "scope": {scope}}
}

// verifyJWT checks a token the way a resource server would: signature from
// the served JWKS, iss, aud, and a required exp.
func (f *fixture) verifyJWT(tok, aud string) (jwt.Token, error) {
	f.t.Helper()
	set, err := jwk.Fetch(f.t.Context(), f.srv.SMARTConfiguration().JWKSURI)
	if err != nil {
		f.t.Fatal(err)
	}
	return jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer(f.srv.SMARTConfiguration().Issuer), jwt.WithAudience(aud),
		jwt.WithRequiredClaim("exp"), jwt.WithClock(jwt.ClockFunc(f.clock.Now)))
}

// basicAuth returns an Authorization header for client_secret_basic
// (RFC 6749 §2.3.1: form-encode, then base64).
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(p[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	return m
}

func b64decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
