package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/jwtauth/v5"
)

func testJWTAuthWeak(t *testing.T) {
	for _, secret := range [][]byte{nil, {}, []byte("secret"), make([]byte, 31)} {
		cfg := baseConfig(t)
		cfg.JWKS = nil
		cfg.JWTAuth = jwtauth.New("HS256", secret, nil)
		cfg.Algorithms = []string{"HS256"}
		if a, err := NewAuthenticator(cfg); err == nil {
			a.Close()
			t.Fatalf("HS256 secret of %d bytes accepted", len(secret))
		}
	}
}

// TestJWTAuthCompatibility: after a JWT succeeds, jwtauth.FromContext sees
// the token and its claims; an introspected token leaves it empty.
func TestJWTAuthCompatibility(t *testing.T) {
	a := newAuth(t, baseConfig(t))
	var claims map[string]any
	var ferr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, c, err := jwtauth.FromContext(r.Context())
		claims, ferr = c, err
		if tok == nil {
			t.Error("no jwt.Token in the context")
		}
	})
	c := validClaims()
	r := httptest.NewRequest(http.MethodGet, "/Patient/123", nil)
	r.Header.Set("Authorization", "Bearer "+keyRS.token(c, nil))
	w := httptest.NewRecorder()
	a.Handler(h).ServeHTTP(w, r)
	if w.Code != 200 || ferr != nil {
		t.Fatalf("status %d, FromContext error %v", w.Code, ferr)
	}
	if claims["sub"] != "user-1" || claims["patient"] != "123" || claims["jti"] != c["jti"] {
		t.Fatalf("claims = %v", claims)
	}
}

// TestJWTAuthKeySource: a *jwtauth.JWTAuth as the key source, bound to its
// algorithm.
func TestJWTAuthKeySource(t *testing.T) {
	testKeys(t)
	secret := randBytes(32)
	cases := []struct {
		name string
		ja   *jwtauth.JWTAuth
		algs []string
		tok  string
		want int
	}{
		{"RS256 accepted", jwtauth.New("RS256", nil, keyRS.priv.Public()), nil, keyRS.token(validClaims(), nil), 200},
		{"RS256 without kid", jwtauth.New("RS256", nil, keyRS.priv.Public()), nil,
			keyRS.token(validClaims(), func(h map[string]any) { delete(h, "kid") }), 200},
		{"attacker key refused", jwtauth.New("RS256", nil, keyRS.priv.Public()), nil, keyAtk.token(validClaims(), nil), 401},
		{"PS256 with the RS256 key refused", jwtauth.New("RS256", nil, keyRS.priv.Public()), nil,
			compactJWS(mustJSON(map[string]any{"alg": "PS256"}), mustJSON(validClaims()), func(in string) []byte { return signWith(keyRS.priv, "PS256", in) }), 401},
		{"HS256 with the public key as secret refused", jwtauth.New("RS256", nil, keyRS.priv.Public()), []string{"RS256"},
			compactJWS(mustJSON(map[string]any{"alg": "HS256"}), mustJSON(validClaims()), func(in string) []byte { return hmacSign("HS256", []byte("k"), in) }), 401},
		{"HS256 accepted with a long secret", jwtauth.New("HS256", secret, nil), []string{"HS256"},
			compactJWS(mustJSON(map[string]any{"alg": "HS256", "typ": "JWT"}), mustJSON(validClaims()), func(in string) []byte { return hmacSign("HS256", secret, in) }), 200},
		{"HS256 with another secret refused", jwtauth.New("HS256", secret, nil), []string{"HS256"},
			compactJWS(mustJSON(map[string]any{"alg": "HS256"}), mustJSON(validClaims()), func(in string) []byte { return hmacSign("HS256", randBytes(32), in) }), 401},
		{"expired HS256 refused", jwtauth.New("HS256", secret, nil), []string{"HS256"},
			compactJWS(mustJSON(map[string]any{"alg": "HS256"}), mustJSON(withClaims("exp", 1000)), func(in string) []byte { return hmacSign("HS256", secret, in) }), 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.JWKS = nil
			cfg.JWTAuth = tc.ja
			cfg.Algorithms = tc.algs
			a := newAuth(t, cfg)
			if w := doAuth(a, &recordHandler{}, tc.tok); w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
		})
	}
	t.Run("algorithm outside the allow-list", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.JWKS = nil
		cfg.JWTAuth = jwtauth.New("HS256", secret, nil)
		if _, err := NewAuthenticator(cfg); err == nil {
			t.Fatal("HS256 JWTAuth accepted without HS256 in Algorithms")
		}
	})
}

// TestAuthContextDecisionLink: the context Authenticate builds carries the
// decision link Authorize attaches its Decision to, like
// newContextWithToken's.
func TestAuthContextDecisionLink(t *testing.T) {
	a := newAuth(t, baseConfig(t))
	var got *Decision
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, ok := r.Context().Value(linkKey{}).(*decisionLink)
		if !ok {
			t.Fatal("no decision link")
		}
		if _, ok := DecisionFromContext(r.Context()); ok {
			t.Fatal("decision before Authorize")
		}
		if !l.attach(&Decision{Rule: "r1"}) {
			t.Fatal("a fresh link refused its first Decision")
		}
		if l.attach(&Decision{Rule: "r2"}) {
			t.Fatal("a link took a second Decision")
		}
		got, _ = DecisionFromContext(r.Context())
	})
	r := httptest.NewRequest(http.MethodGet, "/Patient/1", nil)
	r.Header.Set("Authorization", "Bearer "+keyRS.token(validClaims(), nil))
	a.Handler(h).ServeHTTP(httptest.NewRecorder(), r)
	if got == nil || got.Rule != "r1" {
		t.Fatalf("decision = %+v", got)
	}
}
