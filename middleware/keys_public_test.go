package middleware

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/smarttest"
)

// TestPublicKeysFromSmarttest: smarttest.Server.PublicKeys is exactly the
// type of AuthConfig.PublicKeys, and its tokens verify end to end. A key
// rotated in afterwards is unknown by design (the map is read once): its
// tokens are refused with 401 while the old key's still verify.
func TestPublicKeysFromSmarttest(t *testing.T) {
	as, err := smarttest.New(smarttest.Config{FHIRBase: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	a := newAuth(t, AuthConfig{
		Audience:   testAudience,
		Issuers:    []string{as.SMARTConfiguration().Issuer},
		PublicKeys: as.PublicKeys(),
		Logger:     discard(),
	})
	mint := func() string {
		t.Helper()
		tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "launch/patient patient/Observation.rs", Patient: "123"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	get := func(tok string) int {
		h := &recordHandler{}
		w := doAuth(a, h, tok) // over https
		if w.Code == http.StatusOK {
			if got := h.last.Load(); got == nil || got.Patient != "123" {
				t.Fatalf("token in the context: %+v", got)
			}
		}
		return w.Code
	}
	firstKID := as.SigningKeyID()
	old := mint()
	if st := get(old); st != http.StatusOK {
		t.Fatalf("smarttest token: status %d, want 200", st)
	}
	if _, err := as.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if st := get(mint()); st != http.StatusUnauthorized {
		t.Fatalf("token of a key rotated in after NewAuthenticator: status %d, want 401", st)
	}
	if st := get(old); st != http.StatusOK {
		t.Fatalf("token of the configured key after the rotation: status %d, want 200", st)
	}
	// A forged token (another key claiming the kid) is refused.
	atk := newKey(firstKID)
	claims := claimsAt(time.Now())
	claims["iss"] = as.SMARTConfiguration().Issuer
	forged := atk.token(claims, nil)
	if st := get(forged); st != http.StatusUnauthorized {
		t.Fatalf("forged token: status %d, want 401", st)
	}
}

// TestPublicKeysBinding: each key is bound to the algorithm of its type,
// and only that algorithm verifies with it.
func TestPublicKeysBinding(t *testing.T) {
	testKeys(t)
	keys := map[string]crypto.PublicKey{}
	for _, k := range []*testKey{keyRS, keyES, keyEd, keyES384, keyES512} {
		keys[k.kid] = k.priv.Public()
	}
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.PublicKeys = keys
	a := newAuth(t, cfg)
	for _, k := range []*testKey{keyRS, keyES, keyEd, keyES384, keyES512} {
		expectStatus(t, a, k.token(validClaims(), nil), http.StatusOK)
	}
	// RS256 is the RSA key's algorithm: the same key under PS256 or RS384
	// is refused; so is an ES384 token naming the P-256 key.
	for _, alg := range []string{"PS256", "RS384"} {
		tok := compactJWS(mustJSON(map[string]any{"alg": alg, "kid": keyRS.kid}), mustJSON(validClaims()),
			func(in string) []byte { return signWith(keyRS.priv, alg, in) })
		expectStatus(t, a, tok, http.StatusUnauthorized)
	}
	expectStatus(t, a, keyES.token(validClaims(), func(h map[string]any) { h["alg"] = "ES384" }), http.StatusUnauthorized)

	t.Run("DefaultRSAAlgorithm", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.JWKS = nil
		cfg.PublicKeys = map[string]crypto.PublicKey{keyPS.kid: keyPS.priv.Public()}
		cfg.DefaultRSAAlgorithm = "PS256"
		a := newAuth(t, cfg)
		expectStatus(t, a, keyPS.token(validClaims(), nil), http.StatusOK)
		rs := compactJWS(mustJSON(map[string]any{"alg": "RS256", "kid": keyPS.kid}), mustJSON(validClaims()),
			func(in string) []byte { return signWith(keyPS.priv, "RS256", in) })
		expectStatus(t, a, rs, http.StatusUnauthorized)
	})
	t.Run("key without kid", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.JWKS = nil
		cfg.PublicKeys = map[string]crypto.PublicKey{"": keyES.priv.Public()}
		a := newAuth(t, cfg)
		expectStatus(t, a, keyES.token(validClaims(), func(h map[string]any) { delete(h, "kid") }), http.StatusOK)
		expectStatus(t, a, keyES.token(validClaims(), nil), http.StatusUnauthorized) // names a kid the set lacks
	})
}

// TestPublicKeysRefused: keys that cannot be used safely are refused when
// the Authenticator is built, with an error naming the entry and why.
func TestPublicKeysRefused(t *testing.T) {
	testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name string
		keys map[string]crypto.PublicKey
		want string
	}{
		{"RSA 1024 bits", map[string]crypto.PublicKey{"s": small.Public()}, `PublicKeys["s"]|1024 bits`},
		{"RSA exponent 1", map[string]crypto.PublicKey{"e": &rsa.PublicKey{N: keyRS.priv.Public().(*rsa.PublicKey).N, E: 1}}, "exponent"},
		{"RSA private key", map[string]crypto.PublicKey{"p": keyRS.priv}, "private key"},
		{"EC private key", map[string]crypto.PublicKey{"p": keyES.priv}, "private key"},
		{"Ed25519 private key", map[string]crypto.PublicKey{"p": edPriv}, "private key"},
		{"EC P-224", map[string]crypto.PublicKey{"c": p224.Public()}, "P-224"},
		{"X25519", map[string]crypto.PublicKey{"x": x25519.PublicKey()}, "*ecdh.PublicKey|not supported"},
		{"other type", map[string]crypto.PublicKey{"d": &otherKey{}}, "*middleware.otherKey|not supported"},
		{"bytes", map[string]crypto.PublicKey{"b": []byte("secret")}, "[]uint8|not supported"},
		{"nil", map[string]crypto.PublicKey{"n": nil}, `PublicKeys["n"]|no key`},
		{"nil RSA pointer", map[string]crypto.PublicKey{"n": (*rsa.PublicKey)(nil)}, "empty RSA key"},
		{"empty EC key", map[string]crypto.PublicKey{"n": &ecdsa.PublicKey{}}, "empty EC key"},
		{"short Ed25519", map[string]crypto.PublicKey{"n": ed25519.PublicKey{1, 2, 3}}, "Ed25519"},
		{"off-curve EC point", map[string]crypto.PublicKey{"o": &ecdsa.PublicKey{Curve: elliptic.P256(), X: keyES.priv.Public().(*ecdsa.PublicKey).X, Y: keyES.priv.Public().(*ecdsa.PublicKey).X}}, "not on the curve"},
		{"key without kid among others", map[string]crypto.PublicKey{"": keyES.priv.Public(), "k": keyRS.priv.Public()}, `PublicKeys|the key without kid`},
		{"algorithm outside Algorithms", map[string]crypto.PublicKey{"ed": keyEd.priv.Public()}, "EdDSA|Algorithms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.JWKS = nil
			cfg.PublicKeys = tc.keys
			cfg.Algorithms = []string{"RS256", "ES256", "ES384"}
			a, err := NewAuthenticator(cfg)
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			for _, part := range strings.Split(tc.want, "|") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("err = %q, want it to contain %q", err, part)
				}
			}
			if errors.Is(err, errNoSuchKid) {
				t.Error("wrong cause")
			}
		})
	}
}

// otherKey is a public key type the middleware does not know.
type otherKey struct{}

func (*otherKey) Equal(crypto.PublicKey) bool { return false }
