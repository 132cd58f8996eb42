package middleware

import (
	"bytes"
	"context"
	"crypto"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNewAuthenticatorValidates: every configuration error names the
// fields to set or fix.
func TestNewAuthenticatorValidates(t *testing.T) {
	testKeys(t)
	intro := &IntrospectionConfig{Endpoint: "https://as.example.org/introspect", ClientID: "rs", ClientSecret: "s"}
	noKeys := func(c *AuthConfig) { c.JWKS = nil }
	const sources = "JWKSURL, JWKS, PublicKeys or JWTAuth"
	cases := []struct {
		name string
		mod  func(*AuthConfig)
		want string // "" accepted; else every |-separated part is in the error
	}{
		{"defaults", func(*AuthConfig) {}, ""},
		{"no audience", func(c *AuthConfig) { c.Audience = "" }, "Audience"},
		{"relative audience", func(c *AuthConfig) { c.Audience = "/fhir" }, "Audience"},
		{"no issuers for JWTs", func(c *AuthConfig) { c.Issuers = nil }, "Issuers|JWKS"},
		{"no issuers, key source and introspection", func(c *AuthConfig) { c.Issuers, c.Introspection = nil, intro }, "Issuers"},
		{"empty issuer", func(c *AuthConfig) { c.Issuers = []string{testIssuer, ""} }, "Issuers[1]"},
		{"no issuers, introspection only", func(c *AuthConfig) { noKeys(c); c.Issuers, c.Introspection = nil, intro }, ""},
		{"issuers, introspection only", func(c *AuthConfig) { noKeys(c); c.Introspection = intro }, ""},
		// Issue 15: Issuers without any key source named no field.
		{"issuers without key source", noKeys, sources + "|Introspection"},
		{"nothing at all", func(c *AuthConfig) { noKeys(c); c.Issuers = nil }, sources + "|Introspection"},
		{"two key sources", func(c *AuthConfig) { c.JWKSURL = "https://as.example.org/jwks" }, "JWKSURL and JWKS"},
		{"three key sources", func(c *AuthConfig) {
			c.JWKSURL, c.PublicKeys = "https://as.example.org/jwks", map[string]crypto.PublicKey{"k": keyES.priv.Public()}
		}, "JWKSURL and JWKS and PublicKeys"},
		{"ModeAuto, both", func(c *AuthConfig) { c.Introspection = intro }, ""},
		{"ModeJWT", func(c *AuthConfig) { c.Mode = ModeJWT }, ""},
		{"ModeJWT without keys", func(c *AuthConfig) { noKeys(c); c.Introspection, c.Mode = intro, ModeJWT }, "ModeJWT|" + sources},
		{"ModeJWT with introspection", func(c *AuthConfig) { c.Introspection, c.Mode = intro, ModeJWT }, "ModeJWT|Introspection"},
		{"ModeIntrospection", func(c *AuthConfig) { noKeys(c); c.Introspection, c.Mode = intro, ModeIntrospection }, ""},
		{"ModeIntrospection without introspection", func(c *AuthConfig) { c.Mode = ModeIntrospection }, "ModeIntrospection|Introspection"},
		{"ModeIntrospection with keys", func(c *AuthConfig) { c.Introspection, c.Mode = intro, ModeIntrospection }, "ModeIntrospection|JWKS"},
		{"unknown mode", func(c *AuthConfig) { c.Mode = 9 }, "Mode 9"},
		{"internal mode", func(c *AuthConfig) { c.Mode = modeBoth }, "Mode 3"},
		{"unknown algorithm", func(c *AuthConfig) { c.Algorithms = []string{"RS256", "XS1"} }, `Algorithms|"XS1"`},
		{"none", func(c *AuthConfig) { c.Algorithms = []string{"none"} }, `Algorithms|"none"`},
		{"HMAC with a key set", func(c *AuthConfig) { c.Algorithms = []string{"HS256"} }, "Algorithms|HS256|JWTAuth"},
		{"leeway 5 minutes", func(c *AuthConfig) { c.Leeway = 5 * time.Minute }, ""},
		{"leeway over 5 minutes", func(c *AuthConfig) { c.Leeway = 6 * time.Minute }, "Leeway"},
		{"negative leeway", func(c *AuthConfig) { c.Leeway = -time.Second }, "Leeway"},
		{"negative MaxLifetime", func(c *AuthConfig) { c.MaxLifetime = -time.Second }, "MaxLifetime"},
		{"tiny MaxTokenBytes", func(c *AuthConfig) { c.MaxTokenBytes = 10 }, "MaxTokenBytes"},
		{"negative MaxTokenBytes", func(c *AuthConfig) { c.MaxTokenBytes = -1 }, "MaxTokenBytes"},
		{"negative CacheSize", func(c *AuthConfig) { c.CacheSize = -1 }, "CacheSize"},
		{"negative CacheMaxTTL", func(c *AuthConfig) { c.CacheMaxTTL = -1 }, "CacheMaxTTL"},
		{"negative ScopeCacheSize", func(c *AuthConfig) { c.ScopeCacheSize = -1 }, "ScopeCacheSize"},
		{"DefaultRSAAlgorithm not RSA", func(c *AuthConfig) { c.DefaultRSAAlgorithm = "ES256" }, "DefaultRSAAlgorithm"},
		{"DefaultRSAAlgorithm PS256", func(c *AuthConfig) { c.DefaultRSAAlgorithm = "PS256" }, ""},
		{"bad JWKS document", func(c *AuthConfig) { c.JWKS = []byte("{") }, "JWKS"},
		{"empty JWKS", func(c *AuthConfig) { c.JWKS = []byte(`{"keys":[]}`) }, "JWKS has no key"},
		{"empty PublicKeys", func(c *AuthConfig) { c.JWKS, c.PublicKeys = nil, map[string]crypto.PublicKey{} }, "PublicKeys has no key"},
		{"bad trusted proxy", func(c *AuthConfig) { c.TrustedProxies = []string{"10.0.0.0/8", "proxy"} }, `TrustedProxies|"proxy"`},
		{"JWKS max refresh below min", func(c *AuthConfig) {
			c.JWKS, c.JWKSURL, c.JWKSMinRefresh, c.JWKSMaxRefresh = nil, "https://as.example.org/jwks", time.Hour, time.Minute
		}, "JWKSMaxRefresh|JWKSMinRefresh"},
		{"negative FetchTimeout", func(c *AuthConfig) { c.JWKS, c.JWKSURL, c.FetchTimeout = nil, "https://as.example.org/jwks", -1 }, "FetchTimeout"},
		{"negative JWKSMaxBytes", func(c *AuthConfig) { c.JWKS, c.JWKSURL, c.JWKSMaxBytes = nil, "https://as.example.org/jwks", -1 }, "JWKSMaxBytes"},
		{"negative JWKSRefetchCooldown", func(c *AuthConfig) { c.JWKS, c.JWKSURL, c.JWKSRefetchCooldown = nil, "https://as.example.org/jwks", -1 }, "JWKSRefetchCooldown"},
		{"introspection without credentials", func(c *AuthConfig) {
			noKeys(c)
			c.Introspection = &IntrospectionConfig{Endpoint: intro.Endpoint}
		}, "Introspection|ClientID|ClientSecret|Credential"},
		{"introspection with both credentials", func(c *AuthConfig) {
			noKeys(c)
			ic := *intro
			ic.Credential = func(context.Context) (string, error) { return "", nil }
			c.Introspection = &ic
		}, "Introspection.Credential|ClientID"},
		{"introspection MaxTTL", func(c *AuthConfig) {
			noKeys(c)
			ic := *intro
			ic.MaxTTL = time.Hour
			c.Introspection = &ic
		}, "Introspection.MaxTTL"},
		{"introspection NegativeTTL", func(c *AuthConfig) {
			noKeys(c)
			ic := *intro
			ic.NegativeTTL = time.Hour
			c.Introspection = &ic
		}, "Introspection.NegativeTTL"},
		{"introspection negative Timeout", func(c *AuthConfig) {
			noKeys(c)
			ic := *intro
			ic.Timeout = -1
			c.Introspection = &ic
		}, "Introspection.Timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			tc.mod(&cfg)
			a, err := NewAuthenticator(cfg)
			if a != nil {
				a.Close()
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, part := range strings.Split(tc.want, "|") {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("err = %q, does not name %q", err, part)
				}
			}
			if strings.Contains(err.Error(), "this Mode") {
				t.Errorf("err = %q names no field", err)
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
	if events[0].Cached || !events[1].Cached || events[0].Token == nil || events[0].Introspected || events[0].Err != nil {
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
