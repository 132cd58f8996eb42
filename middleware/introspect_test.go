package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// introServer is an RFC 7662 endpoint with faults.
type introServer struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]string // token → JSON response
	status  int
	header  map[string]string
	delay   time.Duration
	raw     string // when set, sent as the body for every token
	auth    func(r *http.Request) bool
	calls   atomic.Int64
	seen    []string // form values of the last call
}

func newIntroServer(t *testing.T) *introServer {
	s := &introServer{answers: map[string]string{}, status: 200}
	s.auth = func(r *http.Request) bool { u, p, ok := r.BasicAuth(); return ok && u == "rs" && p == "s3cret" }
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		s.mu.Lock()
		status, delay, raw, hdr, auth := s.status, s.delay, s.raw, s.header, s.auth
		s.mu.Unlock()
		if delay > 0 {
			// Read the form first: the server notices that the client gave
			// up (and cancels r's context) only once the body is read.
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", 400)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if !auth(r) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		s.seen = []string{r.PostForm.Get("token"), r.PostForm.Get("token_type_hint")}
		body, ok := s.answers[r.PostForm.Get("token")]
		s.mu.Unlock()
		if !ok {
			body = `{"active":false}`
		}
		if raw != "" {
			body = raw
		}
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *introServer) answer(tok string, v any) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	s.answers[tok] = string(b)
	s.mu.Unlock()
}

func (s *introServer) fault(status int, raw string, delay time.Duration, hdr map[string]string) {
	s.mu.Lock()
	s.status, s.raw, s.delay, s.header = status, raw, delay, hdr
	s.mu.Unlock()
}

func activeAnswer(now time.Time, kv ...any) map[string]any {
	m := map[string]any{
		"active": true, "client_id": "app-1", "scope": "launch/patient patient/Observation.rs",
		"sub": "user-1", "patient": "456", "fhirUser": "https://ehr.example.org/fhir/Patient/456",
		"exp": now.Add(30 * time.Minute).Unix(), "iss": testIssuer, "aud": testAudience,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func introConfig(t *testing.T, s *introServer, clock *authClock) AuthConfig {
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.Mode = ModeIntrospection
	cfg.Now = clock.now
	cfg.Introspection = &IntrospectionConfig{
		Endpoint: s.URL + "/introspect", ClientID: "rs", ClientSecret: "s3cret",
		// Generous, so that answers never time out on a busy machine; the
		// slow-server case sets a short one and a server that never answers.
		HTTPClient: s.Client(), Timeout: 30 * time.Second,
	}
	return cfg
}

func TestIntrospection(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name   string
		answer map[string]any
		raw    string
		status int
		delay  time.Duration
		hdr    map[string]string
		cfg    func(*AuthConfig)
		want   int
		cause  error
		check  func(t *testing.T, tok *Token)
	}{
		{name: "active", answer: activeAnswer(now), want: 200, check: func(t *testing.T, tok *Token) {
			eq(t, tok.Patient, "456")
			eq(t, tok.ClientID, "app-1")
			eq(t, tok.FHIRUser, "https://ehr.example.org/fhir/Patient/456")
			if tok.Scopes.Set().Len() != 2 {
				t.Errorf("scopes = %v", tok.Scopes.Set())
			}
		}},
		{name: "patient as reference", answer: activeAnswer(now, "patient", "Patient/456"), want: 200, check: func(t *testing.T, tok *Token) { eq(t, tok.Patient, "456") }},
		{name: "token_type Bearer", answer: activeAnswer(now, "token_type", "Bearer"), want: 200},
		{name: "no iss", answer: activeAnswer(now, "iss", nil), want: 200},
		{name: "aud contains ours", answer: activeAnswer(now, "aud", []string{"x", testAudience}), want: 200},
		{name: "no aud", answer: activeAnswer(now, "aud", nil), want: 401, cause: errAudience},
		{name: "no aud, AllowMissingAudience", answer: activeAnswer(now, "aud", nil), want: 200,
			cfg: func(c *AuthConfig) { c.Introspection.AllowMissingAudience = true }},
		{name: "empty aud array, AllowMissingAudience", answer: activeAnswer(now, "aud", []string{}), want: 401, cause: errAudience,
			cfg: func(c *AuthConfig) { c.Introspection.AllowMissingAudience = true }},
		{name: "wrong aud, AllowMissingAudience", answer: activeAnswer(now, "aud", "https://other.example/fhir"), want: 401, cause: errAudience,
			cfg: func(c *AuthConfig) { c.Introspection.AllowMissingAudience = true }},
		{name: "inactive", answer: map[string]any{"active": false}, want: 401, cause: errInactive},
		{name: "revoked (unknown to the server)", answer: nil, want: 401, cause: errInactive},
		{name: "refresh token", answer: activeAnswer(now, "token_type", "refresh_token"), want: 401, cause: errTokenType},
		{name: "no exp", answer: activeAnswer(now, "exp", nil), want: 401, cause: errClaims},
		{name: "expired", answer: activeAnswer(now, "exp", now.Add(-time.Hour).Unix()), want: 401, cause: ErrTokenExpired},
		{name: "lifetime over the maximum", answer: activeAnswer(now, "iat", now.Unix(), "exp", now.Add(2*time.Hour).Unix()), want: 401, cause: errTokenLifetime},
		{name: "wrong iss", answer: activeAnswer(now, "iss", "https://evil.example"), want: 401, cause: errIssuer},
		{name: "wrong aud", answer: activeAnswer(now, "aud", "https://other.example/fhir"), want: 401, cause: errAudience},
		{name: "bad patient: no patient context", answer: activeAnswer(now, "patient", "../1"), want: 200},
		{name: "active as a string", answer: activeAnswer(now, "active", "true"), want: 503, cause: ErrIntrospectionUnavailable},
		{name: "active as 1", answer: activeAnswer(now, "active", 1), want: 503, cause: ErrIntrospectionUnavailable},
		{name: "active missing", answer: activeAnswer(now, "active", nil), want: 503, cause: ErrIntrospectionUnavailable},
		{name: "5xx", status: 500, raw: "{}", want: 503, cause: ErrIntrospectionUnavailable},
		{name: "429", status: 429, raw: "{}", hdr: map[string]string{"Retry-After": "7"}, want: 503, cause: ErrIntrospectionUnavailable},
		{name: "malformed", raw: `{"active":true,`, want: 503, cause: ErrIntrospectionUnavailable},
		{name: "duplicate active", raw: `{"active":false,"active":true}`, want: 503, cause: ErrIntrospectionUnavailable},
		{name: "not JSON", raw: `<html>`, want: 503, cause: ErrIntrospectionUnavailable},
		{name: "too large", raw: `{"active":true,"x":"` + strings.Repeat("a", 70<<10) + `"}`, want: 503, cause: ErrIntrospectionUnavailable},
		{name: "slow", answer: activeAnswer(now), delay: time.Hour, want: 503, cause: ErrIntrospectionUnavailable,
			cfg: func(c *AuthConfig) { c.Introspection.Timeout = cutTimeout }}, // the server never answers
		{name: "our credentials refused", answer: activeAnswer(now), want: 503, cause: ErrIntrospectionUnavailable, cfg: func(c *AuthConfig) { c.Introspection.ClientSecret = "wrong" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newIntroServer(t)
			tok := "opaque-" + b64enc(randBytes(12))
			if tc.answer != nil {
				s.answer(tok, tc.answer)
			}
			if tc.status != 0 || tc.raw != "" || tc.delay != 0 {
				st := tc.status
				if st == 0 {
					st = 200
				}
				s.fault(st, tc.raw, tc.delay, tc.hdr)
			}
			cfg := introConfig(t, s, &authClock{})
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var ev AuthEvent
			cfg.OnDecision = func(e AuthEvent) { ev = e }
			a := newAuth(t, cfg)
			h := &recordHandler{}
			w := doAuth(a, h, tok)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d (%v)", w.Code, tc.want, ev.Err)
			}
			if !ev.Introspected {
				t.Error("event says the token was not introspected")
			}
			if tc.cause != nil && !errors.Is(ev.Err, tc.cause) {
				t.Errorf("cause = %v, want %v", ev.Err, tc.cause)
			}
			switch tc.want {
			case 200:
				if tc.check != nil {
					tc.check(t, h.last.Load())
				}
			case 503:
				if w.Header().Get("Retry-After") == "" || h.calls.Load() != 0 {
					t.Error("503 without Retry-After, or handler called")
				}
				if tc.hdr != nil && w.Header().Get("Retry-After") != tc.hdr["Retry-After"] {
					t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
				}
			default:
				checkChallenge(t, w, "invalid_token")
			}
			if strings.Contains(w.Body.String(), tok) {
				t.Error("body echoes the token")
			}
		})
	}
}

func TestIntrospectionClientAuth(t *testing.T) {
	cases := []struct {
		name string
		ic   func(*IntrospectionConfig)
		auth func(r *http.Request) bool
	}{
		{"client_secret_basic", func(*IntrospectionConfig) {}, func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			return ok && u == "rs" && p == "s3cret" && r.PostForm.Get("client_secret") == ""
		}},
		{"client_secret_basic escapes", func(c *IntrospectionConfig) { c.ClientID, c.ClientSecret = "r s", "a:b" }, func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			return ok && u == "r+s" && p == "a%3Ab"
		}},
		{"client_secret_post", func(c *IntrospectionConfig) { c.ClientSecretPost = true }, func(r *http.Request) bool {
			_, _, basic := r.BasicAuth()
			return !basic && r.PostForm.Get("client_id") == "rs" && r.PostForm.Get("client_secret") == "s3cret"
		}},
		{"bearer credential", func(c *IntrospectionConfig) {
			c.ClientID, c.ClientSecret = "", ""
			c.Credential = func(context.Context) (string, error) { return "rs-token", nil }
		}, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer rs-token" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newIntroServer(t)
			s.auth = tc.auth
			tok := "opaque-" + b64enc(randBytes(12))
			s.answer(tok, activeAnswer(time.Now()))
			cfg := introConfig(t, s, &authClock{})
			tc.ic(cfg.Introspection)
			a := newAuth(t, cfg)
			if w := doAuth(a, &recordHandler{}, tok); w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			if s.seen[0] != tok || s.seen[1] != "access_token" {
				t.Fatalf("form = %v", s.seen)
			}
		})
	}
	t.Run("missing credentials", func(t *testing.T) {
		for _, ic := range []IntrospectionConfig{
			{Endpoint: "https://as.example.org/i"},
			{Endpoint: "https://as.example.org/i", ClientSecretPost: true},
			{Endpoint: "https://as.example.org/i", ClientID: "a", ClientSecret: "b", Credential: func(context.Context) (string, error) { return "", nil }},
			{Endpoint: "https://as.example.org/i", ClientID: "a", ClientSecret: "b", MaxTTL: time.Hour},
			{Endpoint: "https://as.example.org/i", ClientID: "a", ClientSecret: "b", NegativeTTL: time.Minute},
		} {
			cfg := baseConfig(t)
			cfg.Introspection = &ic
			if a, err := NewAuthenticator(cfg); err == nil {
				a.Close()
				t.Errorf("%+v accepted", ic)
			}
		}
	})
}

func TestIntrospectionCache(t *testing.T) {
	t.Run("positive answers are cached up to MaxTTL, revocation seen after", func(t *testing.T) {
		s := newIntroServer(t)
		clock := &authClock{}
		a := newAuth(t, introConfig(t, s, clock))
		tok := "opaque-" + b64enc(randBytes(12))
		s.answer(tok, activeAnswer(time.Now()))
		for range 5 {
			expectStatus(t, a, tok, 200)
		}
		if c := s.calls.Load(); c != 1 {
			t.Fatalf("%d calls, want 1", c)
		}
		s.answer(tok, map[string]any{"active": false}) // revoked
		clock.advance(30 * time.Second)
		expectStatus(t, a, tok, 200) // still cached
		clock.advance(31 * time.Second)
		expectStatus(t, a, tok, 401)
		if c := s.calls.Load(); c != 2 {
			t.Fatalf("%d calls, want 2", c)
		}
		for _, k := range a.intro.cache.lru.Keys() {
			if e, _ := a.intro.cache.lru.Peek(k); k != a.hasher.key(tok).h || e.raw != tok {
				t.Fatal("the cache entry is not keyed by the token's hash, or does not hold the token")
			}
		}
	})
	t.Run("never cached beyond exp", func(t *testing.T) {
		s := newIntroServer(t)
		now := time.Now()
		clock := &authClock{base: now}
		a := newAuth(t, introConfig(t, s, clock))
		tok := "opaque-" + b64enc(randBytes(12))
		s.answer(tok, activeAnswer(now, "exp", now.Add(20*time.Second).Unix()))
		expectStatus(t, a, tok, 200)
		// Past exp and the leeway, within MaxTTL: the entry is gone.
		clock.advance(51 * time.Second)
		expectStatus(t, a, tok, 401)
		if c := s.calls.Load(); c != 2 {
			t.Fatalf("%d calls, want 2", c)
		}
	})
	t.Run("negative answers are cached at most 10 s", func(t *testing.T) {
		s := newIntroServer(t)
		clock := &authClock{}
		a := newAuth(t, introConfig(t, s, clock))
		tok := "opaque-" + b64enc(randBytes(12))
		expectStatus(t, a, tok, 401)
		expectStatus(t, a, tok, 401)
		if c := s.calls.Load(); c != 1 {
			t.Fatalf("%d calls, want 1", c)
		}
		s.answer(tok, activeAnswer(time.Now()))
		clock.advance(11 * time.Second)
		expectStatus(t, a, tok, 200)
	})
	t.Run("failures are not cached", func(t *testing.T) {
		s := newIntroServer(t)
		a := newAuth(t, introConfig(t, s, &authClock{}))
		tok := "opaque-" + b64enc(randBytes(12))
		s.answer(tok, activeAnswer(time.Now()))
		s.fault(500, "{}", 0, nil)
		expectStatus(t, a, tok, 503)
		s.fault(200, "", 0, nil)
		expectStatus(t, a, tok, 200)
	})
	t.Run("1000 concurrent requests, one call", func(t *testing.T) {
		s := newIntroServer(t)
		s.fault(200, "", 50*time.Millisecond, nil)
		a := newAuth(t, introConfig(t, s, &authClock{}))
		tok := "opaque-" + b64enc(randBytes(12))
		s.answer(tok, activeAnswer(time.Now()))
		var wg sync.WaitGroup
		var ok atomic.Int64
		for range 1000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if doAuth(a, &recordHandler{}, tok).Code == 200 {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1000 || s.calls.Load() != 1 {
			t.Fatalf("%d accepted, %d introspection calls; want 1000 and 1", ok.Load(), s.calls.Load())
		}
	})
}

func TestAutoDetect(t *testing.T) {
	testKeys(t)
	s := newIntroServer(t)
	cfg := introConfig(t, s, &authClock{})
	cfg.Mode = ModeAuto
	cfg.JWKS = jwksOf(keyRS.jwk())
	var ev AuthEvent
	cfg.OnDecision = func(e AuthEvent) { ev = e }
	a := newAuth(t, cfg)
	if a.mode != modeBoth {
		t.Fatalf("mode %d", a.mode)
	}
	expectStatus(t, a, keyRS.token(validClaims(), nil), 200)
	if ev.Introspected || s.calls.Load() != 0 {
		t.Fatalf("JWT introspected (%d calls)", s.calls.Load())
	}
	expectStatus(t, a, keyAtk.token(validClaims(), nil), 401)
	if s.calls.Load() != 0 {
		t.Fatal("a JWT that failed verification was introspected")
	}
	tok := "opaque.token-" + b64enc(randBytes(8))
	s.answer(tok, activeAnswer(time.Now()))
	expectStatus(t, a, tok, 200)
	if !ev.Introspected || s.calls.Load() != 1 {
		t.Fatalf("opaque token not introspected (%d calls)", s.calls.Load())
	}
}
