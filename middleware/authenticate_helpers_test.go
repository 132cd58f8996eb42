package middleware

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Test keys are generated at run time, never committed.

const (
	testIssuer   = "https://as.example.org"
	testAudience = "https://fhir.example.org/r4"
)

type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

var (
	keysOnce sync.Once
	keyRS    *testKey // K1: RS256, kid k1
	keyES    *testKey // K2: ES256, kid k2
	keyEd    *testKey // EdDSA, kid k3
	keyPS    *testKey // PS256, kid k4
	keyES384 *testKey // ES384, kid k5
	keyES512 *testKey // ES512, kid k6
	keyRS2   *testKey // a second RSA key (rotation), kid k1 reused or k7
	keyAtk   *testKey // KA: the attacker's RS256 key, kid k1 (claims ours)
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		keyRS = &testKey{kid: "k1", alg: "RS256", priv: mustRSA(2048)}
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		keyES = &testKey{kid: "k2", alg: "ES256", priv: ec}
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		keyEd = &testKey{kid: "k3", alg: "EdDSA", priv: ed}
		keyPS = &testKey{kid: "k4", alg: "PS256", priv: mustRSA(2048)}
		ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		keyES384 = &testKey{kid: "k5", alg: "ES384", priv: ec384}
		ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		keyES512 = &testKey{kid: "k6", alg: "ES512", priv: ec521}
		keyRS2 = &testKey{kid: "k7", alg: "RS256", priv: mustRSA(2048)}
		keyAtk = &testKey{kid: "k1", alg: "RS256", priv: mustRSA(2048)}
	})
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func b64enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func bigEnc(n *big.Int, size int) string {
	b := n.Bytes()
	if size > len(b) {
		b = append(make([]byte, size-len(b)), b...)
	}
	return b64enc(b)
}

// jwk returns the public JWK of k.
func (k *testKey) jwk() map[string]any {
	m := map[string]any{"kid": k.kid, "alg": k.alg, "use": "sig"}
	switch p := k.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64enc(p.N.Bytes())
		m["e"] = b64enc(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		m["kty"] = "EC"
		m["crv"] = p.Curve.Params().Name
		m["x"] = bigEnc(p.X, size)
		m["y"] = bigEnc(p.Y, size)
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64enc(p)
	}
	return m
}

func jwksOf(keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// signWith signs input with key under alg (the token's alg; may differ
// from the key's own for attack tests).
func signWith(priv crypto.Signer, alg, input string) []byte {
	hashOf := func(h crypto.Hash) []byte {
		hh := h.New()
		hh.Write([]byte(input))
		return hh.Sum(nil)
	}
	switch alg {
	case "RS256", "RS384", "RS512":
		h := map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512}[alg]
		s, err := rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), h, hashOf(h))
		if err != nil {
			panic(err)
		}
		return s
	case "PS256", "PS384", "PS512":
		h := map[string]crypto.Hash{"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512}[alg]
		s, err := rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), h, hashOf(h), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			panic(err)
		}
		return s
	case "ES256", "ES384", "ES512":
		h := map[string]crypto.Hash{"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512}[alg]
		k := priv.(*ecdsa.PrivateKey)
		r, s, err := ecdsa.Sign(rand.Reader, k, hashOf(h))
		if err != nil {
			panic(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	case "EdDSA":
		return ed25519.Sign(priv.(ed25519.PrivateKey), []byte(input))
	}
	panic("unknown alg " + alg)
}

// hmacSign is HMAC-SHA256/384/512 of input.
func hmacSign(alg string, key []byte, input string) []byte {
	h := sha256.New
	switch alg {
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	}
	m := hmac.New(h, key)
	m.Write([]byte(input))
	return m.Sum(nil)
}

// compact assembles a token from raw header and payload JSON.
func compactJWS(header, payload []byte, sig func(input string) []byte) string {
	input := b64enc(header) + "." + b64enc(payload)
	return input + "." + b64enc(sig(input))
}

// header returns the default header of k.
func (k *testKey) header() map[string]any {
	return map[string]any{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"}
}

// token signs claims with k under its default header, modified by mod.
func (k *testKey) token(claims map[string]any, mod func(h map[string]any)) string {
	h := k.header()
	if mod != nil {
		mod(h)
	}
	alg, _ := h["alg"].(string)
	if alg == "" {
		alg = k.alg
	}
	return compactJWS(mustJSON(h), mustJSON(claims), func(in string) []byte { return signWith(k.priv, alg, in) })
}

// claimsAt returns valid SMART claims for now.
func claimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss":       testIssuer,
		"aud":       testAudience,
		"sub":       "user-1",
		"client_id": "app-1",
		"scope":     "launch/patient patient/Observation.rs patient/Patient.r openid fhirUser",
		"patient":   "123",
		"fhirUser":  "Practitioner/9",
		"iat":       now.Add(-time.Minute).Unix(),
		"exp":       now.Add(10 * time.Minute).Unix(),
		"jti":       "jti-" + b64enc(randBytes(6)),
	}
}

func validClaims() map[string]any { return claimsAt(time.Now()) }

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// baseConfig is a config with a static JWKS of all the test keys.
func baseConfig(t testing.TB) AuthConfig {
	testKeys(t)
	return AuthConfig{
		Audience:          testAudience,
		Issuers:           []string{testIssuer},
		JWKS:              jwksOf(keyRS.jwk(), keyES.jwk(), keyEd.jwk(), keyPS.jwk(), keyES384.jwk(), keyES512.jwk()),
		InsecureAllowHTTP: true,
		Logger:            discard(),
	}
}

func newAuth(t testing.TB, cfg AuthConfig) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// recordHandler records the token it saw.
type recordHandler struct {
	calls atomic.Int64
	last  atomic.Pointer[Token]
}

func (h *recordHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	if t, ok := TokenFromContext(r.Context()); ok {
		h.last.Store(t)
	}
	w.WriteHeader(http.StatusOK)
}

// do sends a GET with the bearer token through a's middleware.
func doAuth(a *Authenticator, h http.Handler, tok string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://fhir.example.org/r4/Observation", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	a.Handler(h).ServeHTTP(w, r)
	return w
}

// authClock is an adjustable clock: the real time, or base when set (a
// frozen clock, for tokens whose times are close to a limit), plus the
// advances.
type authClock struct {
	base time.Time
	off  atomic.Int64
}

func (c *authClock) now() time.Time {
	t := c.base
	if t.IsZero() {
		t = time.Now()
	}
	return t.Add(time.Duration(c.off.Load()))
}

func (c *authClock) advance(d time.Duration)            { c.off.Add(int64(d)) }
func withClock(cfg AuthConfig, c *authClock) AuthConfig { cfg.Now = c.now; return cfg }
