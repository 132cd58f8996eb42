package middleware

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewAuthenticatorValidates(t *testing.T) {
	testKeys(t)
	intro := &IntrospectionConfig{Endpoint: "https://as.example.org/introspect", ClientID: "rs", ClientSecret: "s"}
	cases := []struct {
		name string
		mod  func(*AuthConfig)
		ok   bool
	}{
		{"defaults", func(*AuthConfig) {}, true},
		{"no audience", func(c *AuthConfig) { c.Audience = "" }, false},
		{"relative audience", func(c *AuthConfig) { c.Audience = "/fhir" }, false},
		{"no issuers for JWTs", func(c *AuthConfig) { c.Issuers = nil }, false},
		{"empty issuer", func(c *AuthConfig) { c.Issuers = []string{""} }, false},
		{"no issuers, introspection only", func(c *AuthConfig) { c.Issuers, c.JWKS, c.Introspection = nil, nil, intro }, true},
		{"no key source and no introspection", func(c *AuthConfig) { c.JWKS = nil }, false},
		{"two key sources", func(c *AuthConfig) { c.JWKSURL = "https://as.example.org/jwks" }, false},
		{"JWTOnly without keys", func(c *AuthConfig) { c.JWKS, c.Introspection, c.Mode = nil, intro, JWTOnly }, false},
		{"IntrospectionOnly without introspection", func(c *AuthConfig) { c.Mode = IntrospectionOnly }, false},
		{"AutoDetect without introspection", func(c *AuthConfig) { c.Mode = AutoDetect }, false},
		{"unknown mode", func(c *AuthConfig) { c.Mode = 9 }, false},
		{"unknown algorithm", func(c *AuthConfig) { c.Algorithms = []string{"RS256", "XS1"} }, false},
		{"leeway 5 minutes", func(c *AuthConfig) { c.Leeway = 5 * time.Minute }, true},
		{"leeway over 5 minutes", func(c *AuthConfig) { c.Leeway = 6 * time.Minute }, false},
		{"negative leeway", func(c *AuthConfig) { c.Leeway = -time.Second }, false},
		{"negative MaxLifetime", func(c *AuthConfig) { c.MaxLifetime = -time.Second }, false},
		{"tiny MaxTokenBytes", func(c *AuthConfig) { c.MaxTokenBytes = 10 }, false},
		{"DefaultRSAAlgorithm not RSA", func(c *AuthConfig) { c.DefaultRSAAlgorithm = "ES256" }, false},
		{"DefaultRSAAlgorithm PS256", func(c *AuthConfig) { c.DefaultRSAAlgorithm = "PS256" }, true},
		{"bad JWKS document", func(c *AuthConfig) { c.JWKS = []byte("{") }, false},
		{"empty JWKS", func(c *AuthConfig) { c.JWKS = []byte(`{"keys":[]}`) }, false},
		{"JWKS max refresh below min", func(c *AuthConfig) {
			c.JWKS, c.JWKSURL, c.JWKSMinRefresh, c.JWKSMaxRefresh = nil, "https://as.example.org/jwks", time.Hour, time.Minute
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			tc.mod(&cfg)
			a, err := NewAuthenticator(cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if a != nil {
				a.Close()
			}
		})
	}
}

// TestLifetimeLogged: the log names the limit that refused a token, so an
// operator can raise it; a longer MaxLifetime accepts the token.
func TestLifetimeLogged(t *testing.T) {
	testKeys(t)
	now := time.Now()
	tok := keyRS.token(withClaims("iat", now.Unix(), "exp", now.Add(90*time.Minute).Unix()), nil)
	var buf bytes.Buffer
	cfg := baseConfig(t)
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	a := newAuth(t, cfg)
	expectStatus(t, a, tok, http.StatusUnauthorized)
	if log := buf.String(); !strings.Contains(log, "MaxLifetime = 3600 s") || !strings.Contains(log, "exp - iat = 5400 s") {
		t.Fatalf("log does not say which limit was hit: %s", log)
	}
	if strings.Contains(buf.String(), tok[len(tok)-20:]) {
		t.Fatal("log contains the token")
	}
	cfg.MaxLifetime = 2 * time.Hour
	expectStatus(t, newAuth(t, cfg), tok, http.StatusOK)
}

func TestDecisionHook(t *testing.T) {
	var events []AuthEvent
	cfg := baseConfig(t)
	cfg.OnDecision = func(e AuthEvent) { events = append(events, e) }
	a := newAuth(t, cfg)
	tok := keyRS.token(validClaims(), nil)
	expectStatus(t, a, tok, 200)
	expectStatus(t, a, tok, 200)
	expectStatus(t, a, "", 401)
	if len(events) != 3 {
		t.Fatalf("%d events", len(events))
	}
	if events[0].Cached || !events[1].Cached || events[0].Token == nil || events[0].Source != SourceJWT || events[0].Err != nil {
		t.Errorf("events = %+v", events[:2])
	}
	if events[2].Err == nil || events[2].Token != nil || events[2].Err.Code != CodeNone {
		t.Errorf("refusal event = %+v", events[2])
	}
}

func TestIntrospectionDown(t *testing.T) {
	s := newIntroServer(t)
	cfg := introConfig(t, s, &authClock{})
	s.Close() // connection refused
	a := newAuth(t, cfg)
	expectStatus(t, a, "opaque-token", http.StatusServiceUnavailable)
}
