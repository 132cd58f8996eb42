package middleware

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAS is an authorisation server's JWKS endpoint whose behaviour the
// test switches at run time: keys published, Cache-Control, a gate that
// holds answers until the test opens it, and faults.
type fakeAS struct {
	*httptest.Server
	mu     sync.Mutex
	keys   []*testKey
	cc     string
	fault  asFault
	gate   chan struct{} // non-nil: answers wait until it is closed
	closed string        // a closed local port (connection refused)

	fetches atomic.Int64  // requests that reached the server
	arrived chan struct{} // one value per request that reached the server
}

type asFault uint8

const (
	asUp      asFault = iota
	asRefused         // connection refused
	as500             // HTTP 500
	asGarbage         // 200 with a body that is not a JWKS
	asSlow            // never answers (the fetch times out)
)

func (f asFault) String() string {
	return [...]string{"up", "connection refused", "HTTP 500", "garbage body", "slower than FetchTimeout"}[f]
}

func newFakeAS(t testing.TB, keys ...*testKey) *fakeAS {
	s := &fakeAS{keys: keys, arrived: make(chan struct{}, 1<<16)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.closed = ln.Addr().String()
	ln.Close()
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, cc, fault, gate := s.body(), s.cc, s.fault, s.gate
		s.mu.Unlock()
		s.arrived <- struct{}{}
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		switch fault {
		case asSlow:
			<-r.Context().Done()
			return
		case as500:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case asGarbage:
			body = []byte("<html>maintenance</html>")
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	// Closing the server cuts handshakes of the client's idle pool.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// body is the JWKS of the published keys; s.mu is held.
func (s *fakeAS) body() []byte {
	jwks := make([]map[string]any, 0, len(s.keys))
	for _, k := range s.keys {
		jwks = append(jwks, k.jwk())
	}
	return jwksOf(jwks...)
}

func (s *fakeAS) publish(keys ...*testKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func (s *fakeAS) setFault(f asFault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

func (s *fakeAS) setCacheControl(cc string) {
	s.mu.Lock()
	s.cc = cc
	s.mu.Unlock()
}

// hold makes answers wait until the returned function is called.
func (s *fakeAS) hold() (release func()) {
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

// awaitArrival waits until n more requests reached the server; the
// deadline only bounds a hang.
func (s *fakeAS) awaitArrival(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(time.Minute)
	for range n {
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatal("the JWKS endpoint was not called")
		}
	}
}

// client sends requests to s, or to a closed port while s is "refused".
func (s *fakeAS) client() *http.Client {
	c := *s.Client()
	c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		s.mu.Lock()
		refused := s.fault == asRefused
		s.mu.Unlock()
		if refused {
			r = r.Clone(r.Context())
			r.URL.Host = s.closed
		}
		return s.Client().Transport.RoundTrip(r)
	})
	return &c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// asConfig points a config at s with the fake clock. FetchTimeout is
// generous, so that a fetch that is answered never times out on a busy
// machine; tests of a server that never answers shorten it for the fetches
// it must cut (cutTimeout).
func asConfig(t testing.TB, s *fakeAS, clock *authClock) AuthConfig {
	cfg := baseConfig(t)
	cfg.JWKS = nil
	cfg.JWKSURL = s.URL + "/jwks"
	cfg.HTTPClient = s.client()
	cfg.FetchTimeout = longTimeout
	cfg.Now = clock.now
	return cfg
}

// newKey is a fresh ES256 key (cheap to generate).
func newKey(kid string) *testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKey{kid: kid, alg: "ES256", priv: k}
}

var kidSeq atomic.Int64

func freshKid() string { return fmt.Sprintf("kid-%d", kidSeq.Add(1)) }

// longClaims are valid claims at clock's time that outlive the longest
// clock advance of these tests (50 minutes).
func longClaims(clock *authClock) map[string]any {
	now := clock.now()
	c := claimsAt(now)
	c["exp"] = now.Add(50 * time.Minute).Unix()
	return c
}

// Fetch timeouts of the tests. cutTimeout cuts a fetch from a server that
// never answers (how soon does not matter: the answer never comes);
// longTimeout bounds a fetch that must succeed however busy the machine.
const (
	cutTimeout  = 200 * time.Millisecond
	longTimeout = time.Minute
)

// setFetchTimeout sets FetchTimeout for the fetches that start afterwards.
func (r *remoteKeys) setFetchTimeout(d time.Duration) {
	r.mu.Lock()
	r.timeout = d
	r.mu.Unlock()
}

// remote returns a's JWKS key source.
func remote(a *Authenticator) *remoteKeys { return a.keys.(*remoteKeys) }

// waitIdle waits until no fetch is in flight (fetches are bounded by
// FetchTimeout).
func (r *remoteKeys) waitIdle() {
	r.mu.Lock()
	f := r.inflight
	r.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

// started waits for the start-up fetch and checks it loaded a set.
func started(t testing.TB, a *Authenticator) {
	t.Helper()
	r := remote(a)
	r.waitIdle()
	if r.cur.Load() == nil {
		t.Fatal("the start-up fetch loaded no key set")
	}
}

// waitForFlightWaiters waits until n goroutines wait for a JWKS fetch in
// flight (remoteKeys.wait); the deadline only bounds a hang.
func waitForFlightWaiters(t testing.TB, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(time.Minute)
	for {
		for {
			m := runtime.Stack(buf, true)
			if m < len(buf) {
				buf = buf[:m]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		if strings.Count(string(buf), "middleware.(*remoteKeys).wait(") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d requests wait for the fetch", n)
		}
		buf = buf[:cap(buf)]
		time.Sleep(time.Millisecond)
	}
}
