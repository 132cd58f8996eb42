package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heldIntro is an introspection endpoint that holds every call until the
// test releases it, and counts the calls in flight.
type heldIntro struct {
	*httptest.Server
	release  chan struct{}
	arrived  chan struct{}
	calls    atomic.Int64
	inFlight atomic.Int64
	once     sync.Once
	mu       sync.Mutex
	maxSeen  int64
}

func newHeldIntro(t *testing.T) *heldIntro {
	s := &heldIntro{release: make(chan struct{}), arrived: make(chan struct{}, 1024)}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		s.calls.Add(1)
		n := s.inFlight.Add(1)
		s.mu.Lock()
		s.maxSeen = max(s.maxSeen, n)
		s.mu.Unlock()
		s.arrived <- struct{}{}
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		s.inFlight.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(activeAnswer(time.Now()))
	}))
	t.Cleanup(s.Close)
	t.Cleanup(s.open) // never leave a handler blocked
	return s
}

func (s *heldIntro) open() { s.once.Do(func() { close(s.release) }) }

// await waits until n calls arrived; the deadline only bounds a hang.
func (s *heldIntro) await(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(time.Minute)
	for range n {
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("%d introspection calls arrived, want %d", s.calls.Load(), n)
		}
	}
}

func (s *heldIntro) peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxSeen
}

func heldConfig(t *testing.T, s *heldIntro, ic func(*IntrospectionConfig)) AuthConfig {
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.Mode = ModeIntrospection
	cfg.Introspection = &IntrospectionConfig{
		Endpoint: s.URL, ClientID: "rs", ClientSecret: "s3cret",
		HTTPClient: s.Client(), Timeout: time.Minute,
	}
	if ic != nil {
		ic(cfg.Introspection)
	}
	return cfg
}

func opaque() string { return "opaque-" + b64enc(randBytes(12)) }

// 16 clients with different tokens: at most MaxConcurrent (default 8)
// calls reach the server at once. While the server holds them, the others
// wait QueueTimeout, then are 503s; with a longer QueueTimeout they get a
// slot once one frees.
func TestIntrospectionConcurrencyCap(t *testing.T) {
	const clients = 16
	run := func(a *Authenticator) <-chan int {
		codes := make(chan int, clients)
		for range clients {
			go func() { codes <- doAuth(a, &recordHandler{}, opaque()).Code }()
		}
		return codes
	}
	for _, tc := range []struct {
		name string
		ic   func(*IntrospectionConfig)
		cap  int
	}{
		{"default", nil, 8},
		{"MaxConcurrent 3", func(c *IntrospectionConfig) { c.MaxConcurrent = 3 }, 3},
	} {
		t.Run(tc.name+": queue timeout", func(t *testing.T) {
			s := newHeldIntro(t)
			a := newAuth(t, heldConfig(t, s, func(c *IntrospectionConfig) {
				if tc.ic != nil {
					tc.ic(c)
				}
				c.QueueTimeout = 50 * time.Millisecond
			}))
			codes := run(a)
			// The server holds every call, so exactly the clients beyond
			// the cap time out in the queue.
			deadline := time.After(time.Minute)
			for range clients - tc.cap {
				select {
				case c := <-codes:
					if c != http.StatusServiceUnavailable {
						t.Fatalf("status %d while the cap is reached, want 503", c)
					}
				case <-deadline:
					t.Fatalf("%d calls reached the server and no request was refused", s.calls.Load())
				}
			}
			s.await(t, tc.cap)
			if n := s.inFlight.Load(); n != int64(tc.cap) {
				t.Fatalf("%d calls in flight, want %d", n, tc.cap)
			}
			s.open()
			for range tc.cap {
				if c := <-codes; c != http.StatusOK {
					t.Fatalf("status %d for a call under the cap", c)
				}
			}
			if c := s.calls.Load(); c != int64(tc.cap) {
				t.Fatalf("%d calls, want %d", c, tc.cap)
			}
		})
		t.Run(tc.name+": waiting for a slot", func(t *testing.T) {
			s := newHeldIntro(t)
			a := newAuth(t, heldConfig(t, s, func(c *IntrospectionConfig) {
				if tc.ic != nil {
					tc.ic(c)
				}
				c.QueueTimeout = time.Hour
			}))
			codes := run(a)
			s.await(t, tc.cap)
			s.open()
			for range clients {
				if c := <-codes; c != http.StatusOK {
					t.Fatalf("status %d", c)
				}
			}
			if p := s.peak(); p > int64(tc.cap) {
				t.Fatalf("%d concurrent introspection calls, cap %d", p, tc.cap)
			}
			if c := s.calls.Load(); c != clients {
				t.Fatalf("%d calls, want %d", c, clients)
			}
		})
	}
}

// Concurrent requests with one token share one call, also under the cap.
func TestIntrospectionSameTokenShared(t *testing.T) {
	s := newHeldIntro(t)
	a := newAuth(t, heldConfig(t, s, func(c *IntrospectionConfig) { c.MaxConcurrent = 1 }))
	tok := opaque()
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if doAuth(a, &recordHandler{}, tok).Code == http.StatusOK {
				ok.Add(1)
			}
		}()
	}
	s.await(t, 1)
	s.open()
	wg.Wait()
	if ok.Load() != 16 || s.calls.Load() != 1 {
		t.Fatalf("%d accepted, %d calls; want 16 and 1", ok.Load(), s.calls.Load())
	}
}

// Beyond the cap, a request waits at most QueueTimeout, then is a 503
// with Retry-After; the call holding the slot is not affected.
func TestIntrospectionQueueTimeout(t *testing.T) {
	s := newHeldIntro(t)
	cfg := heldConfig(t, s, func(c *IntrospectionConfig) {
		c.MaxConcurrent = 1
		c.QueueTimeout = 50 * time.Millisecond // the slot is held until the test releases it
	})
	var ev atomic.Pointer[AuthEvent]
	cfg.OnDecision = func(e AuthEvent) { ev.Store(&e) }
	a := newAuth(t, cfg)
	first := make(chan int)
	go func() { first <- doAuth(a, &recordHandler{}, opaque()).Code }()
	s.await(t, 1)
	h := &recordHandler{}
	w := doAuth(a, h, opaque())
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || h.calls.Load() != 0 {
		t.Fatalf("status %d, Retry-After %q, handler called %v; want 503 with Retry-After",
			w.Code, w.Header().Get("Retry-After"), h.calls.Load() != 0)
	}
	if e := ev.Load(); e == nil || !errors.Is(e.Err, ErrIntrospectionUnavailable) {
		t.Fatalf("cause = %v", e)
	}
	if s.calls.Load() != 1 {
		t.Fatalf("%d calls reached the server, want 1", s.calls.Load())
	}
	s.open()
	if c := <-first; c != http.StatusOK {
		t.Fatalf("first request: status %d", c)
	}
	expectStatus(t, a, opaque(), http.StatusOK) // a free slot again
}

// A request waiting for a slot gives up with its context.
func TestIntrospectionQueueContext(t *testing.T) {
	s := newHeldIntro(t)
	a := newAuth(t, heldConfig(t, s, func(c *IntrospectionConfig) {
		c.MaxConcurrent = 1
		c.QueueTimeout = time.Hour
	}))
	go doAuth(a, &recordHandler{}, opaque())
	s.await(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *AuthError)
	go func() {
		_, _, _, aerr := a.validate(ctx, opaque())
		done <- aerr
	}()
	cancel()
	select {
	case aerr := <-done:
		if aerr == nil || aerr.Status != http.StatusServiceUnavailable || !errors.Is(aerr, context.Canceled) {
			t.Fatalf("error = %v, want 503 caused by the cancellation", aerr)
		}
	case <-time.After(time.Minute): // bounds a hang only
		t.Fatal("the request did not give up with its context")
	}
}

func TestIntrospectionLimitSettings(t *testing.T) {
	for _, ic := range []IntrospectionConfig{
		{MaxConcurrent: -1},
		{QueueTimeout: -time.Second},
	} {
		ic.Endpoint, ic.ClientID, ic.ClientSecret = "https://as.example.org/i", "a", "b"
		cfg := baseConfig(t)
		cfg.Introspection = &ic
		if a, err := NewAuthenticator(cfg); err == nil {
			a.Close()
			t.Errorf("%+v accepted", ic)
		}
	}
}

// The JWT and the introspection paths agree on aud: a token without it is
// refused on both, unless AllowMissingAudience (introspection only).
func TestAudienceRequiredOnBothPaths(t *testing.T) {
	testKeys(t)
	s := newIntroServer(t)
	cfg := introConfig(t, s, &authClock{})
	cfg.Mode = ModeAuto
	cfg.JWKS = jwksOf(keyRS.jwk())
	a := newAuth(t, cfg)
	noAud := validClaims()
	delete(noAud, "aud")
	jwtTok := keyRS.token(noAud, nil)
	opaqueTok := opaque()
	s.answer(opaqueTok, activeAnswer(time.Now(), "aud", nil))
	expectStatus(t, a, jwtTok, http.StatusUnauthorized)
	checkChallenge(t, expectStatus(t, a, opaqueTok, http.StatusUnauthorized), "invalid_token")

	withAud := opaque()
	s.answer(withAud, activeAnswer(time.Now()))
	expectStatus(t, a, withAud, http.StatusOK)
	expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusOK)
}
