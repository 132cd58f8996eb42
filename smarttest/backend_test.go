package smarttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// rawAssertion signs arbitrary claims and headers, for assertions
// SignClientAssertion refuses to make.
func rawAssertion(t *testing.T, alg jwa.SignatureAlgorithm, key any, hdr map[string]any, claims map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		must(t, h.Set(k, v))
	}
	payload, _ := json.Marshal(claims)
	b, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	must(t, err)
	return string(b)
}

func TestClientCredentials(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	goodClaims := func() map[string]any {
		return map[string]any{"iss": "backend", "sub": "backend", "aud": f.srv.SMARTConfiguration().TokenEndpoint, "exp": now.Add(4 * time.Minute).Unix(), "jti": randomString(8)}
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	replayed := f.assertion(f.rsa, "rsa-1", nil)
	if st, resp := f.token(backendForm(replayed, "system/Observation.rs"), nil); st != 200 {
		t.Fatalf("first use of the replayed assertion: %d %v", st, resp)
	}
	cases := []struct {
		name      string
		assertion func() string
		form      func(url.Values)
		status    int
		errCode   string
	}{
		{name: "RS384", assertion: func() string { return f.assertion(f.rsa, "rsa-1", nil) }, status: 200},
		{name: "ES384", assertion: func() string { return f.assertion(f.ec, "ec-1", nil) }, status: 200},
		{name: "exp at five minutes", assertion: func() string { return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Lifetime = 5 * time.Minute }) }, status: 200},
		{name: "aud as array", assertion: func() string {
			c := goodClaims()
			c["aud"] = []string{"https://other.example/token", f.srv.SMARTConfiguration().TokenEndpoint}
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1", "typ": "JWT"}, c)
		}, status: 200},
		{name: "typ absent", assertion: func() string {
			return rawAssertion(t, jwa.ES384, f.ec, map[string]any{"kid": "ec-1"}, goodClaims())
		}, status: 200},
		{name: "exp fractional", assertion: func() string {
			c := goodClaims()
			c["exp"] = float64(now.Add(time.Minute).Unix()) + 0.5
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1"}, c)
		}, status: 200},
		{name: "client_id in form matches", assertion: func() string { return f.assertion(f.rsa, "rsa-1", nil) }, form: func(q url.Values) { q.Set("client_id", "backend") }, status: 200},
		{name: "replayed jti", assertion: func() string { return replayed }, status: 401, errCode: "invalid_client"},
		{name: "same jti new signature", assertion: func() string {
			return f.assertion(f.ec, "ec-1", func(a *Assertion) { a.JTI = jtiOf(t, replayed) })
		}, status: 401, errCode: "invalid_client"},
		{name: "exp too far", assertion: func() string {
			return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Lifetime = 10 * time.Minute })
		}, status: 401, errCode: "invalid_client"},
		{name: "exp a day ahead", assertion: func() string { return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Lifetime = 24 * time.Hour }) }, status: 401, errCode: "invalid_client"},
		{name: "expired", assertion: func() string {
			return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Lifetime = -2 * time.Minute })
		}, status: 401, errCode: "invalid_client"},
		{name: "exp missing", assertion: func() string {
			c := goodClaims()
			delete(c, "exp")
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1"}, c)
		}, status: 401, errCode: "invalid_client"},
		{name: "exp a string", assertion: func() string {
			c := goodClaims()
			c["exp"] = "soon"
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1"}, c)
		}, status: 401, errCode: "invalid_client"},
		{name: "nbf in the future", assertion: func() string {
			c := goodClaims()
			c["nbf"] = now.Add(3 * time.Minute).Unix()
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1"}, c)
		}, status: 401, errCode: "invalid_client"},
		{name: "jti missing", assertion: func() string {
			c := goodClaims()
			delete(c, "jti")
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1"}, c)
		}, status: 401, errCode: "invalid_client"},
		{name: "wrong aud", assertion: func() string {
			return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Audience = f.srv.SMARTConfiguration().Issuer })
		}, status: 401, errCode: "invalid_client"},
		{name: "aud the FHIR base", assertion: func() string { return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Audience = testFHIRBase }) }, status: 401, errCode: "invalid_client"},
		{name: "aud token URL with slash", assertion: func() string {
			return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Audience = f.srv.SMARTConfiguration().TokenEndpoint + "/" })
		}, status: 401, errCode: "invalid_client"},
		{name: "sub differs from iss", assertion: func() string { return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.Subject = "someone" }) }, status: 401, errCode: "invalid_client"},
		{name: "unknown client", assertion: func() string { return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.ClientID = "intruder" }) }, status: 401, errCode: "invalid_client"},
		{name: "iss another registered client", assertion: func() string { return f.assertion(f.rsa, "rsa-1", func(a *Assertion) { a.ClientID = appID }) }, status: 401, errCode: "invalid_client"},
		{name: "unknown kid", assertion: func() string { return f.assertion(f.rsa, "rsa-2", nil) }, status: 401, errCode: "invalid_client"},
		{name: "kid missing", assertion: func() string { return rawAssertion(t, jwa.RS384, f.rsa, nil, goodClaims()) }, status: 401, errCode: "invalid_client"},
		{name: "signed by an unregistered key", assertion: func() string { return f.assertion(otherRSA, "rsa-1", nil) }, status: 401, errCode: "invalid_client"},
		{name: "RS256", assertion: func() string { return rawAssertion(t, jwa.RS256, f.rsa, map[string]any{"kid": "rsa-1"}, goodClaims()) }, status: 401, errCode: "invalid_client"},
		{name: "PS384", assertion: func() string { return rawAssertion(t, jwa.PS384, f.rsa, map[string]any{"kid": "rsa-1"}, goodClaims()) }, status: 401, errCode: "invalid_client"},
		{name: "ES256 on P-256", assertion: func() string { return rawAssertion(t, jwa.ES256, p256, map[string]any{"kid": "ec-1"}, goodClaims()) }, status: 401, errCode: "invalid_client"},
		{name: "RS384 header on the EC key id", assertion: func() string { return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "ec-1"}, goodClaims()) }, status: 401, errCode: "invalid_client"},
		{name: "HS384 keyed with a public key", assertion: func() string {
			return rawAssertion(t, jwa.HS384, []byte("backend-public-key-bytes"), map[string]any{"kid": "rsa-1"}, goodClaims())
		}, status: 401, errCode: "invalid_client"},
		{name: "alg none", assertion: func() string {
			return b64JSON(map[string]any{"alg": "none", "kid": "rsa-1"}) + "." + b64JSON(goodClaims()) + "."
		}, status: 401, errCode: "invalid_client"},
		{name: "embedded jwk", assertion: func() string {
			pub, _ := jwk.FromRaw(otherRSA.Public())
			return rawAssertion(t, jwa.RS384, otherRSA, map[string]any{"kid": "rsa-1", "jwk": pub}, goodClaims())
		}, status: 401, errCode: "invalid_client"},
		{name: "jku header", assertion: func() string {
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1", "jku": "https://attacker.invalid/jwks"}, goodClaims())
		}, status: 401, errCode: "invalid_client"},
		{name: "typ not JWT", assertion: func() string {
			return rawAssertion(t, jwa.RS384, f.rsa, map[string]any{"kid": "rsa-1", "typ": "at+jwt"}, goodClaims())
		}, status: 401, errCode: "invalid_client"},
		{name: "JSON serialization", assertion: func() string {
			p := strings.Split(f.assertion(f.rsa, "rsa-1", nil), ".")
			b, _ := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
			return string(b)
		}, status: 401, errCode: "invalid_client"},
		{name: "tampered payload", assertion: func() string {
			p := strings.Split(f.assertion(f.rsa, "rsa-1", nil), ".")
			c := goodClaims()
			c["iss"], c["sub"] = "backend", "backend"
			return p[0] + "." + b64JSON(c) + "." + p[2]
		}, status: 401, errCode: "invalid_client"},
		{name: "empty assertion", assertion: func() string { return "" }, form: func(q url.Values) { q.Set("client_assertion", "") }, status: 401, errCode: "invalid_client"},
		{name: "wrong assertion type", assertion: func() string { return f.assertion(f.rsa, "rsa-1", nil) },
			form: func(q url.Values) {
				q.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			}, status: 401, errCode: "invalid_client"},
		{name: "client_id in form differs", assertion: func() string { return f.assertion(f.rsa, "rsa-1", nil) }, form: func(q url.Values) { q.Set("client_id", appID) }, status: 401, errCode: "invalid_client"},
		{name: "assertion and basic", assertion: func() string { return f.assertion(f.rsa, "rsa-1", nil) }, form: func(q url.Values) { q.Set("x-basic", "1") }, status: 401, errCode: "invalid_client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := backendForm(c.assertion(), "system/Observation.rs")
			var hdr map[string]string
			if c.form != nil {
				c.form(form)
				if form.Has("x-basic") {
					form.Del("x-basic")
					hdr = map[string]string{"Authorization": basicAuth(confID, confSecret)}
				}
			}
			st, resp := f.token(form, hdr)
			if st != c.status || (c.errCode != "" && resp["error"] != c.errCode) {
				t.Fatalf("status %d %v, want %d %s", st, resp, c.status, c.errCode)
			}
			if st != 200 {
				return
			}
			if resp["expires_in"] != float64(300) || resp["scope"] != "system/Observation.rs" || resp["refresh_token"] != nil {
				t.Errorf("token response %v", resp)
			}
			claims := claimsOf(t, resp["access_token"].(string))
			exp, iat := claims["exp"].(float64), claims["iat"].(float64)
			if exp-iat > 300 || claims["sub"] != "backend" || claims["client_id"] != "backend" || claims["patient"] != nil {
				t.Errorf("claims %v", claims)
			}
		})
	}
}

func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	jti, _ := claimsOf(t, tok)["jti"].(string)
	return jti
}

func TestClientCredentialsScopes(t *testing.T) {
	f := newFixture(t, nil)
	must(t, f.srv.RegisterClient(Client{ID: "limited", PublicKeys: map[string]crypto.PublicKey{"k": f.ec.Public()}, AllowedScopes: []string{"system/Observation.rs", "system/Patient.r"}}))
	cases := []struct {
		name, client, requested, want string
	}{
		{"system scopes only", "backend", "system/Observation.rs patient/Observation.rs user/*.rs launch openid offline_access", "system/Observation.rs"},
		{"v1 system scope", "backend", "system/*.read", "system/*.read"},
		{"allowed list", "limited", "system/Observation.rs system/Patient.rs system/Condition.rs", "system/Observation.rs"},
		{"allowed list subset", "limited", "system/Observation.s system/Patient.r", "system/Observation.s system/Patient.r"},
		{"nothing grantable", "backend", "patient/*.rs", ""},
		{"nothing allowed", "limited", "system/Condition.rs", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := SignClientAssertion(Assertion{ClientID: c.client, Audience: f.srv.SMARTConfiguration().TokenEndpoint, Key: f.ec, KeyID: kidFor(c.client), IssuedAt: f.clock.Now()})
			must(t, err)
			st, resp := f.token(backendForm(a, c.requested), nil)
			if c.want == "" {
				if st != 400 || resp["error"] != "invalid_scope" {
					t.Fatalf("status %d %v, want invalid_scope", st, resp)
				}
				return
			}
			if st != 200 || resp["scope"] != c.want {
				t.Fatalf("status %d scope %v, want %q", st, resp["scope"], c.want)
			}
		})
	}
}

func kidFor(client string) string {
	if client == "limited" {
		return "k"
	}
	return "ec-1"
}

func TestClientCredentialsNeedsPrivateKeyJWT(t *testing.T) {
	f := newFixture(t, nil)
	for name, form := range map[string]url.Values{
		"secret client": {"grant_type": {"client_credentials"}, "client_id": {confID}, "client_secret": {confSecret}, "scope": {"system/*.rs"}},
		"public client": {"grant_type": {"client_credentials"}, "client_id": {appID}, "scope": {"system/*.rs"}},
	} {
		if st, resp := f.token(form, nil); st == 200 {
			t.Errorf("%s got a token: %v", name, resp)
		}
	}
}

func TestBackendTokenLifetime(t *testing.T) {
	if _, err := New(Config{FHIRBase: testFHIRBase, Issuer: "http://x.invalid", BackendTokenLifetime: 6 * time.Minute}); !errors.Is(err, errConfig) {
		t.Errorf("6-minute backend tokens accepted: %v", err)
	}
	f := newFixture(t, func(c *Config) { c.BackendTokenLifetime = time.Minute })
	st, resp := f.token(backendForm(f.assertion(f.rsa, "rsa-1", nil), "system/*.rs"), nil)
	if st != 200 || resp["expires_in"] != float64(60) {
		t.Fatalf("%d %v", st, resp)
	}
}

func TestRegisterClientValidates(t *testing.T) {
	testKeys(t)
	f := newFixture(t, nil)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	must(t, err)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	goodJWKS := func() []byte {
		k, _ := jwk.FromRaw(ecKey.Public())
		_ = k.Set(jwk.KeyIDKey, "j-1")
		set := jwk.NewSet()
		_ = set.AddKey(k)
		b, _ := json.Marshal(set)
		return b
	}
	cases := []struct {
		name string
		c    Client
		want error
	}{
		{"ok public", Client{ID: "ok-1", RedirectURIs: []string{"https://a.example/cb"}}, nil},
		{"ok JWKS", Client{ID: "ok-2", JWKS: goodJWKS()}, nil},
		{"ok RSA", Client{ID: "ok-3", PublicKeys: map[string]crypto.PublicKey{"r": rsaKey.Public()}}, nil},
		{"duplicate", Client{ID: appID}, errDuplicateClient},
		{"empty id", Client{}, errConfig},
		{"id with space", Client{ID: "a b"}, errConfig},
		{"relative redirect", Client{ID: "x1", RedirectURIs: []string{"/cb"}}, errConfig},
		{"redirect with fragment", Client{ID: "x2", RedirectURIs: []string{"https://a.example/cb#f"}}, errConfig},
		{"short RSA key", Client{ID: "x3", PublicKeys: map[string]crypto.PublicKey{"s": small.Public()}}, errConfig},
		{"P-256 key", Client{ID: "x4", PublicKeys: map[string]crypto.PublicKey{"p": p256.Public()}}, errConfig},
		{"private key", Client{ID: "x5", PublicKeys: map[string]crypto.PublicKey{"p": rsaKey}}, errConfig},
		{"key without kid", Client{ID: "x6", PublicKeys: map[string]crypto.PublicKey{"": rsaKey.Public()}}, errConfig},
		{"bad JWKS", Client{ID: "x7", JWKS: []byte("{")}, errConfig},
		{"bad allowed scope", Client{ID: "x8", AllowedScopes: []string{"patient/Observation.dus"}}, errConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.srv.RegisterClient(c.c)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
	// The JWKS key works for an assertion.
	a, err := SignClientAssertion(Assertion{ClientID: "ok-2", Audience: f.srv.SMARTConfiguration().TokenEndpoint, Key: ecKey, KeyID: "j-1", IssuedAt: f.clock.Now()})
	must(t, err)
	if st, resp := f.token(backendForm(a, "system/*.rs"), nil); st != http.StatusOK {
		t.Errorf("JWKS client: %d %v", st, resp)
	}
}

func TestSignClientAssertionValidates(t *testing.T) {
	testKeys(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, a := range map[string]Assertion{
		"no client": {Audience: "x", Key: rsaKey, KeyID: "k"},
		"no aud":    {ClientID: "c", Key: rsaKey, KeyID: "k"},
		"no key":    {ClientID: "c", Audience: "x", KeyID: "k"},
		"no kid":    {ClientID: "c", Audience: "x", Key: rsaKey},
		"P-256":     {ClientID: "c", Audience: "x", Key: p256, KeyID: "k"},
	} {
		if _, err := SignClientAssertion(a); !errors.Is(err, errConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
