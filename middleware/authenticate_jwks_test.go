package middleware

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jwksServer is a test authorisation server's JWKS endpoint with faults.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	never   bool          // never answer: the client gives up
	gate    chan struct{} // non-nil: answers wait until it is closed
	cc      string
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...*testKey) *jwksServer {
	s := &jwksServer{status: 200}
	s.setKeys(keys...)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status, never, gate, cc := s.body, s.status, s.never, s.gate, s.cc
		s.mu.Unlock()
		if never {
			<-r.Context().Done()
			return
		}
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...*testKey) {
	var jwks []map[string]any
	for _, k := range keys {
		jwks = append(jwks, k.jwk())
	}
	s.set(jwksOf(jwks...), 200)
}

// set makes the server answer body with status, at once.
func (s *jwksServer) set(body []byte, status int) {
	s.mu.Lock()
	s.body, s.status, s.never = body, status, false
	s.mu.Unlock()
}

// neverAnswer makes the server hold every request until the client gives
// up.
func (s *jwksServer) neverAnswer() {
	s.mu.Lock()
	s.never = true
	s.mu.Unlock()
}

// hold makes answers wait until the returned function is called.
func (s *jwksServer) hold() (release func()) {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(g)
	}
}

// remoteConfig points a config at s with a fake clock. The fetch timeout
// is generous: a fetch that should succeed must not time out on a busy
// machine. Tests of a server that never answers shorten it for the fetches
// it must cut.
func remoteConfig(t *testing.T, s *jwksServer, clock *authClock) AuthConfig {
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.JWKSURL = s.URL + "/jwks"
	cfg.HTTPClient = s.Client()
	cfg.FetchTimeout = longTimeout
	cfg.JWKSRefetchCooldown = 30 * time.Second
	cfg.Now = clock.now
	return cfg
}

// waitFetches waits until the server has seen n fetches.
func (s *jwksServer) waitFetches(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // bounds a hang only
	for s.fetches.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches, want %d", s.fetches.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func expectStatus(t *testing.T, a *Authenticator, tok string, want int) *httptest.ResponseRecorder {
	t.Helper()
	w := doAuth(a, &recordHandler{}, tok)
	if w.Code != want {
		t.Fatalf("status = %d, want %d (%s)", w.Code, want, w.Body)
	}
	if want == http.StatusServiceUnavailable {
		if w.Header().Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
			t.Error("503 with invalid_token")
		}
	}
	return w
}

func TestJWKSFaults(t *testing.T) {
	testKeys(t)
	cases := []struct {
		name  string
		fault func(s *jwksServer)
		cut   bool // the fetch fails only when FetchTimeout cuts it
	}{
		{"down (500)", func(s *jwksServer) { s.set([]byte("oops"), 500) }, false},
		{"never answers", func(s *jwksServer) { s.neverAnswer() }, true},
		{"junk", func(s *jwksServer) { s.set([]byte("<html>not json"), 200) }, false},
		{"no usable key", func(s *jwksServer) {
			weak := keyRS.jwk()
			weak["use"] = "enc"
			s.set(jwksOf(weak), 200)
		}, false},
		{"too large", func(s *jwksServer) { s.set([]byte(`{"keys":[],"x":"`+strings.Repeat("a", 600<<10)+`"}`), 200) }, false},
		{"404", func(s *jwksServer) { s.set([]byte("{}"), 404) }, false},
	}
	for _, tc := range cases {
		t.Run("at start: "+tc.name, func(t *testing.T) {
			s := newJWKSServer(t, keyRS)
			tc.fault(s)
			clock := &authClock{}
			cfg := remoteConfig(t, s, clock)
			if tc.cut {
				cfg.FetchTimeout = cutTimeout
			}
			a := newAuth(t, cfg)
			tok := keyRS.token(validClaims(), nil)
			expectStatus(t, a, tok, http.StatusServiceUnavailable)
			// Within the cooldown the middleware answers 503 without
			// hammering the server.
			before := s.fetches.Load()
			for range 20 {
				expectStatus(t, a, tok, http.StatusServiceUnavailable)
			}
			if got := s.fetches.Load() - before; got > 0 {
				t.Fatalf("%d fetches during the cooldown", got)
			}
			// Recovery after the cooldown.
			remote(a).setFetchTimeout(longTimeout)
			s.setKeys(keyRS)
			clock.advance(31 * time.Second)
			expectStatus(t, a, tok, http.StatusOK)
		})
		t.Run("later: "+tc.name, func(t *testing.T) {
			s := newJWKSServer(t, keyRS)
			clock := &authClock{}
			a := newAuth(t, remoteConfig(t, s, clock))
			expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusOK)
			if tc.cut {
				remote(a).setFetchTimeout(cutTimeout)
			}
			tc.fault(s)
			clock.advance(31 * time.Second)
			// A refetch fails (the unknown kid triggers it): the kid may
			// be a key the server could not deliver, so 503, not 401; the
			// last good set stays in use.
			expectStatus(t, a, keyAtk.token(validClaims(), func(h map[string]any) { h["kid"] = "k-new" }), http.StatusServiceUnavailable)
			expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusOK)
		})
	}
}

// TestJWKSSlow: a JWKS endpoint that answers late (here: when the test
// releases it, however long that takes). A request that needs the fetch
// waits for it and is then answered; requests whose keys are loaded never
// wait. (A server that never answers is "never answers" in
// TestJWKSFaults.)
func TestJWKSSlow(t *testing.T) {
	testKeys(t)
	// start sends tok in the background; the result comes on the channel.
	start := func(a *Authenticator, tok string) <-chan int {
		code := make(chan int, 1)
		go func() { code <- doAuth(a, &recordHandler{}, tok).Code }()
		return code
	}
	t.Run("at start", func(t *testing.T) {
		s := newJWKSServer(t, keyRS)
		release := s.hold()
		a := newAuth(t, remoteConfig(t, s, &authClock{}))
		code := start(a, keyRS.token(validClaims(), nil))
		waitForFlightWaiters(t, 1)
		release()
		if st := <-code; st != http.StatusOK {
			t.Fatalf("status %d, want 200", st)
		}
		if f := s.fetches.Load(); f != 1 {
			t.Fatalf("%d fetches, want 1", f)
		}
	})
	t.Run("later", func(t *testing.T) {
		s := newJWKSServer(t, keyRS)
		clock := &authClock{}
		a := newAuth(t, remoteConfig(t, s, clock))
		expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusOK)
		newK := newKey("k-new")
		s.setKeys(keyRS, newK)
		release := s.hold()
		clock.advance(31 * time.Second)
		code := start(a, newK.token(validClaims(), nil)) // its kid is unknown: a refetch
		waitForFlightWaiters(t, 1)
		// While the refetch is held, known keys verify without waiting.
		expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusOK)
		release()
		if st := <-code; st != http.StatusOK {
			t.Fatalf("status %d, want 200", st)
		}
	})
}

func TestJWKSRotation(t *testing.T) {
	testKeys(t)
	s := newJWKSServer(t, keyRS)
	s.mu.Lock()
	s.cc = "max-age=60"
	s.mu.Unlock()
	clock := &authClock{}
	a := newAuth(t, remoteConfig(t, s, clock))
	claims := func() map[string]any {
		c := claimsAt(clock.now())
		c["exp"] = clock.now().Add(50 * time.Minute).Unix()
		return c
	}
	old := keyRS.token(claims(), nil)
	expectStatus(t, a, old, http.StatusOK)
	s.waitFetches(t, 1)
	base := s.fetches.Load()

	// (a) A key is added: a token with its kid triggers one refetch.
	s.setKeys(keyRS, keyRS2)
	clock.advance(31 * time.Second)
	expectStatus(t, a, keyRS2.token(claims(), nil), http.StatusOK)
	if got := s.fetches.Load() - base; got != 1 {
		t.Fatalf("(a) %d fetches, want 1", got)
	}
	expectStatus(t, a, old, http.StatusOK)

	// (b) A key is removed: once the scheduled fetch (max-age 60 s)
	// replaced the set, its tokens are refused, also those already in the
	// verified-token cache.
	s.setKeys(keyRS2)
	clock.advance(61 * time.Second)
	a.keys.(*remoteKeys).refreshIfDue(clock.now().UnixNano())
	a.keys.(*remoteKeys).waitIdle()
	expectStatus(t, a, old, http.StatusUnauthorized)
	expectStatus(t, a, keyRS.token(claims(), nil), http.StatusUnauthorized)
	expectStatus(t, a, keyRS2.token(claims(), nil), http.StatusOK)

	// (c) A kid is reused with new material: the signature fails with the
	// old key, one refetch finds the new one; old-material tokens fail.
	reused := &testKey{kid: "k7", alg: "RS256", priv: mustRSA(2048)}
	cached := keyRS2.token(claims(), nil)
	expectStatus(t, a, cached, http.StatusOK)
	s.setKeys(reused)
	clock.advance(31 * time.Second)
	expectStatus(t, a, reused.token(claims(), nil), http.StatusOK)
	expectStatus(t, a, cached, http.StatusUnauthorized)
	expectStatus(t, a, keyRS2.token(claims(), nil), http.StatusUnauthorized)
}

func TestJWKSUnknownKidFlood(t *testing.T) {
	testKeys(t)
	s := newJWKSServer(t, keyRS)
	clock := &authClock{}
	a := newAuth(t, remoteConfig(t, s, clock))
	expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusOK)
	s.waitFetches(t, 1)
	base := s.fetches.Load()
	clock.advance(31 * time.Second)
	// Signed tokens with random kids, built before the flood.
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = keyES.token(validClaims(), func(h map[string]any) { h["kid"] = fmt.Sprintf("rand-%d", i) })
	}
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := doAuth(a, &recordHandler{}, tok); w.Code != http.StatusUnauthorized {
				t.Errorf("status %d", w.Code)
			}
		}()
	}
	wg.Wait()
	if got := s.fetches.Load() - base; got > 1 {
		t.Fatalf("%d fetches for a flood of unknown kids, want at most 1 per cooldown", got)
	}
}

func TestJWKSConcurrentColdStart(t *testing.T) {
	testKeys(t)
	s := newJWKSServer(t, keyRS)
	release := s.hold() // every request arrives while the fetch is held
	a := newAuth(t, remoteConfig(t, s, &authClock{}))
	tok := keyRS.token(validClaims(), nil)
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
	waitForFlightWaiters(t, 1) // the others wait for its verification
	release()
	wg.Wait()
	if ok.Load() != 1000 {
		t.Fatalf("%d of 1000 accepted", ok.Load())
	}
	if f := s.fetches.Load(); f != 1 {
		t.Fatalf("%d JWKS fetches, want 1", f)
	}
	if v := a.verifications.Load(); v != 1 {
		t.Fatalf("%d signature verifications, want 1", v)
	}
}

func TestJWKSRedirect(t *testing.T) {
	testKeys(t)
	other := newJWKSServer(t, keyRS)
	redirect := httptest.NewTLSServer(http.RedirectHandler(other.URL+"/jwks", http.StatusFound))
	defer redirect.Close()
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.JWKSURL = redirect.URL + "/jwks"
	cfg.HTTPClient = redirect.Client()
	a := newAuth(t, cfg)
	expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusServiceUnavailable)
	if other.fetches.Load() != 0 {
		t.Fatal("redirect to another host followed")
	}
	// A redirect on the same host is followed.
	same := newJWKSServer(t, keyRS)
	mux := http.NewServeMux()
	mux.Handle("/old", http.RedirectHandler("/jwks", http.StatusFound))
	mux.Handle("/jwks", same.Config.Handler)
	same.Config.Handler = mux
	cfg.JWKSURL = same.URL + "/old"
	cfg.HTTPClient = same.Client()
	a2 := newAuth(t, cfg)
	expectStatus(t, a2, keyRS.token(validClaims(), nil), http.StatusOK)
}

func TestCacheControlClamp(t *testing.T) {
	cases := []struct {
		cc   string
		want string
	}{
		{"", "max-age=600"},
		{"max-age=5", "max-age=60"},
		{"public, max-age=300", "max-age=300"},
		{"max-age=999999", "max-age=600"},
		{"no-store", "max-age=60"},
		{"max-age=x", "max-age=600"},
	}
	for _, tc := range cases {
		t.Run(tc.cc, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.cc != "" {
					w.Header().Set("Cache-Control", tc.cc)
				}
				w.Header().Set("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")
			}))
			defer srv.Close()
			c := fetchClient(nil, 1<<10, time.Minute, 10*time.Minute)
			res, err := c.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if got := res.Header.Get("Cache-Control"); got != tc.want || res.Header.Get("Expires") != "" {
				t.Fatalf("Cache-Control = %q, Expires = %q; want %q", got, res.Header.Get("Expires"), tc.want)
			}
		})
	}
}

// TestKeyRefusedAtLoad covers threat model A12 with generated keys: a
// static set with such a key is a configuration error; a fetched set
// drops the key and keeps the others.
func TestKeyRefusedAtLoad(t *testing.T) {
	testKeys(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	mod := func(k *testKey, kv ...any) map[string]any {
		m := k.jwk()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 9000)
	huge.Add(huge, big.NewInt(1))
	offCurve := keyES.jwk()
	offCurve["y"] = offCurve["x"]
	privRSA := keyRS.jwk()
	privRSA["d"] = b64enc(keyRS.priv.(*rsa.PrivateKey).D.Bytes())
	privRSA["p"] = b64enc(keyRS.priv.(*rsa.PrivateKey).Primes[0].Bytes())
	privRSA["q"] = b64enc(keyRS.priv.(*rsa.PrivateKey).Primes[1].Bytes())
	cases := []struct {
		name string
		key  map[string]any
	}{
		{"RSA 1024 bits", (&testKey{kid: "w", alg: "RS256", priv: small}).jwk()},
		{"RSA 9000 bits", mod(keyRS, "n", b64enc(huge.Bytes()))},
		{"exponent 1", mod(keyRS, "e", "AQ")},
		{"even exponent", mod(keyRS, "e", "Ag")},
		{"EC point off the curve", offCurve},
		{"use enc", mod(keyRS, "use", "enc")},
		{"key_ops encrypt", mod(keyRS, "key_ops", []string{"encrypt"})},
		{"oct key", map[string]any{"kty": "oct", "kid": "s", "alg": "HS256", "k": b64enc(randBytes(32))}},
		{"private key", privRSA},
		{"EC P-256 with alg ES384", mod(keyES, "alg", "ES384")},
		{"RSA with alg ES256", mod(keyRS, "alg", "ES256")},
		{"Ed25519 with alg ES256", mod(keyEd, "alg", "ES256")},
		{"alg outside the allow-list", mod(keyRS, "alg", "RS512")},
		{"unknown alg", mod(keyRS, "alg", "XX1")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.key["kid"] = "bad"
			cfg := baseConfig(t)
			cfg.Algorithms = []string{"RS256", "ES256", "EdDSA", "PS256"}
			cfg.JWKS = jwksOf(keyES.jwk(), tc.key)
			if a, err := NewAuthenticator(cfg); err == nil {
				a.Close()
				t.Fatal("static set with a refused key accepted")
			}
			// Fetched: the key is dropped, the good one still works.
			s := newJWKSServer(t)
			s.set(jwksOf(keyES.jwk(), tc.key), 200)
			rcfg := remoteConfig(t, s, &authClock{})
			rcfg.Algorithms = cfg.Algorithms
			a := newAuth(t, rcfg)
			expectStatus(t, a, keyES.token(validClaims(), nil), http.StatusOK)
			if _, ok := a.keys.(*remoteKeys).cur.Load().byKid["bad"]; ok {
				t.Fatal("refused key loaded")
			}
		})
	}
	t.Run("duplicate kid", func(t *testing.T) {
		dup := keyRS2.jwk()
		dup["kid"] = "k1"
		cfg := baseConfig(t)
		cfg.JWKS = jwksOf(keyRS.jwk(), dup, keyES.jwk())
		if _, err := NewAuthenticator(cfg); err == nil {
			t.Fatal("duplicate kid accepted")
		}
		s := newJWKSServer(t)
		s.set(jwksOf(keyRS.jwk(), dup, keyES.jwk()), 200)
		a := newAuth(t, remoteConfig(t, s, &authClock{}))
		expectStatus(t, a, keyES.token(validClaims(), nil), http.StatusOK)
		expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusUnauthorized)
	})
	t.Run("RSA key without alg is bound to RS256", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.JWKS = jwksOf(mod(keyRS, "alg", nil))
		a := newAuth(t, cfg)
		expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusOK)
		ps := compactJWS(mustJSON(map[string]any{"alg": "PS256", "kid": "k1"}), mustJSON(validClaims()), func(in string) []byte { return signWith(keyRS.priv, "PS256", in) })
		expectStatus(t, a, ps, http.StatusUnauthorized)
	})
	t.Run("weak jwtauth HMAC secret", func(t *testing.T) {
		testJWTAuthWeak(t)
	})
}
