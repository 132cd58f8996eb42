package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// blockingAS is a plain-HTTP authorisation server (so that the
// Authenticator uses an HTTP client of its own) whose JWKS and
// introspection endpoints answer normally until block is called; then
// they hold every request until the client gives up.
type blockingAS struct {
	*httptest.Server
	blocked atomic.Bool
	arrived chan string // the path of each request that is held
	keys    []byte
}

func newBlockingAS(t *testing.T) *blockingAS {
	s := &blockingAS{arrived: make(chan string, 16), keys: jwksOf(keyES.jwk())}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client leaving
		if s.blocked.Load() {
			s.arrived <- r.URL.Path
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/jwks":
			_, _ = w.Write(s.keys)
		case "/introspect":
			_, _ = w.Write(mustJSON(activeAnswer(time.Now())))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// awaitHeld waits until a request to path is held; the deadline only
// bounds a hang.
func (s *blockingAS) awaitHeld(t *testing.T, path string) {
	t.Helper()
	select {
	case p := <-s.arrived:
		if p != path {
			t.Fatalf("held request to %s, want %s", p, path)
		}
	case <-time.After(time.Minute):
		t.Fatalf("no request to %s reached the server", path)
	}
}

// verifyNoGoroutines fails when goroutines other than those ignored are
// still running a minute after the call: goroutines that end on their own
// (a closed connection's reader) get time to, a leak fails.
func verifyNoGoroutines(t *testing.T, opts ...goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// TestCloseStopsGoroutines: Close stops every goroutine the Authenticator
// started, also those blocked on an authorisation server that does not
// answer: the JWKS schedule and fetches, introspection calls, and the
// connections of its own HTTP clients.
func TestCloseStopsGoroutines(t *testing.T) {
	testKeys(t)
	for _, tc := range []struct {
		name      string
		jwks      bool
		intro     bool
		heldPath  string
		heldToken func() string
	}{
		{"JWKS URL", true, false, "/jwks", func() string {
			return keyES.token(validClaims(), func(h map[string]any) { h["kid"] = "new-key" }) // a refetch
		}},
		{"introspection", false, true, "/introspect", opaque},
		{"both", true, true, "/introspect", opaque},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newBlockingAS(t)
			ignore := goleak.IgnoreCurrent() // the server's own goroutines, earlier tests'
			cfg := AuthConfig{
				Audience: testAudience, Issuers: []string{testIssuer},
				InsecureAllowHTTPKeyURLs: true, Logger: discard(),
			}
			if tc.jwks {
				cfg.JWKSURL = s.URL + "/jwks"
			}
			if tc.intro {
				cfg.Introspection = &IntrospectionConfig{Endpoint: s.URL + "/introspect", ClientID: "rs", ClientSecret: "s"}
			}
			a, err := NewAuthenticator(cfg)
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					a.Close()
				}
			})
			// Answered requests leave idle connections.
			if tc.jwks {
				expectStatus(t, a, keyES.token(validClaims(), nil), http.StatusOK)
			}
			if tc.intro {
				expectStatus(t, a, opaque(), http.StatusOK)
			}

			// A request waits for an authorisation server that does not
			// answer; Close cuts the call and the request gets a 503.
			s.blocked.Store(true)
			status := make(chan int, 1)
			go func() { status <- doAuth(a, &recordHandler{}, tc.heldToken()).Code }()
			s.awaitHeld(t, tc.heldPath)
			a.Close()
			closed = true
			select {
			case st := <-status:
				if st != http.StatusServiceUnavailable {
					t.Fatalf("request held when Close ran: status %d, want 503", st)
				}
			case <-time.After(time.Minute): // bounds a hang only
				t.Fatal("Close did not end the call the request waits for")
			}
			verifyNoGoroutines(t, ignore)

			// Closed: JWTs still verify with the keys loaded; tokens to
			// introspect are 503s; no goroutine starts.
			if tc.jwks {
				expectStatus(t, a, keyES.token(validClaims(), nil), http.StatusOK)
			}
			if tc.intro {
				expectStatus(t, a, opaque(), http.StatusServiceUnavailable)
			}
			a.Close() // twice is fine
			verifyNoGoroutines(t, ignore)
		})
	}
}
