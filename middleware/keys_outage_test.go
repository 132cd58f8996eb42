package middleware

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

var outages = []asFault{asRefused, as500, asGarbage, asSlow}

// The authorisation server is down: a token with an unknown kid is a 503
// with Retry-After (the kid may be a key it could not deliver), never a
// 401; the keys already loaded keep verifying; after recovery the unknown
// kid is a 401 only when a successful fetch lacks it.
func TestKeysOutageUnknownKid(t *testing.T) {
	testKeys(t)
	for _, fault := range outages {
		t.Run(fault.String(), func(t *testing.T) {
			s := newFakeAS(t, keyRS)
			clock := &authClock{}
			var last AuthEvent
			cfg := asConfig(t, s, clock)
			cfg.OnDecision = func(e AuthEvent) { last = e }
			a := newAuth(t, cfg)
			started(t, a)
			if fault == asSlow {
				remote(a).setFetchTimeout(cutTimeout) // the server never answers
			}
			s.setFault(fault)
			newK := newKey(freshKid())
			s.publish(keyRS, newK) // published, but the server cannot deliver it

			before := s.fetches.Load()
			w := expectStatus(t, a, newK.token(claimsAt(clock.now()), nil), http.StatusServiceUnavailable)
			if !errors.Is(last.Err, ErrKeysUnavailable) {
				t.Fatalf("cause = %v, want ErrKeysUnavailable", last.Err)
			}
			if secs, _ := strconv.Atoi(w.Header().Get("Retry-After")); secs < 1 || secs > 30 {
				t.Fatalf("Retry-After = %q, want 1 to 30 s", w.Header().Get("Retry-After"))
			}
			// Known keys keep verifying, also tokens never seen before.
			expectStatus(t, a, keyRS.token(claimsAt(clock.now()), nil), http.StatusOK)
			// Until the retry, more unknown kids are 503s without fetches.
			for range 5 {
				expectStatus(t, a, newK.token(claimsAt(clock.now()), func(h map[string]any) { h["kid"] = freshKid() }), http.StatusServiceUnavailable)
			}
			if fault != asRefused {
				if got := s.fetches.Load() - before; got != 1 {
					t.Fatalf("%d fetches during the outage, want 1", got)
				}
			}

			// A scheduled refresh during the outage keeps the set.
			clock.advance(11 * time.Minute)
			remote(a).refreshIfDue(clock.now().UnixNano())
			remote(a).waitIdle()
			expectStatus(t, a, keyRS.token(claimsAt(clock.now()), nil), http.StatusOK)

			// Recovery: the schedule retries after the cooldown.
			remote(a).setFetchTimeout(longTimeout)
			s.setFault(asUp)
			clock.advance(31 * time.Second)
			expectStatus(t, a, newK.token(claimsAt(clock.now()), nil), http.StatusOK)
			// Now a successful fetch lacks the kid: 401.
			clock.advance(31 * time.Second)
			expectStatus(t, a, keyES.token(claimsAt(clock.now()), func(h map[string]any) { h["kid"] = freshKid() }), http.StatusUnauthorized)
			if !errors.Is(last.Err, errUnknownKey) {
				t.Fatalf("cause = %v, want errUnknownKey", last.Err)
			}
		})
	}
}

// The same outages before any key set was loaded: every token is a 503.
func TestKeysOutageAtStart(t *testing.T) {
	testKeys(t)
	for _, fault := range outages {
		t.Run(fault.String(), func(t *testing.T) {
			s := newFakeAS(t, keyRS)
			s.setFault(fault)
			clock := &authClock{}
			cfg := asConfig(t, s, clock)
			if fault == asSlow {
				cfg.FetchTimeout = cutTimeout // the server never answers
			}
			a := newAuth(t, cfg)
			expectStatus(t, a, keyRS.token(claimsAt(clock.now()), nil), http.StatusServiceUnavailable)
			remote(a).setFetchTimeout(longTimeout)
			s.setFault(asUp)
			clock.advance(31 * time.Second)
			expectStatus(t, a, keyRS.token(claimsAt(clock.now()), nil), http.StatusOK)
		})
	}
}

// A successful fetch without the kid is a 401 invalid_token, not a 503.
func TestKeysUnknownKidAfterSuccessfulFetch(t *testing.T) {
	testKeys(t)
	s := newFakeAS(t, keyRS)
	clock := &authClock{}
	a := newAuth(t, asConfig(t, s, clock))
	started(t, a)
	tok := keyES.token(claimsAt(clock.now()), func(h map[string]any) { h["kid"] = "never-published" })
	w := expectStatus(t, a, tok, http.StatusUnauthorized)
	checkChallenge(t, w, "invalid_token")
	// Within the cooldown, without a fetch: still 401 (the latest fetch
	// succeeded).
	before := s.fetches.Load()
	expectStatus(t, a, keyES.token(claimsAt(clock.now()), func(h map[string]any) { h["kid"] = "other" }), http.StatusUnauthorized)
	if got := s.fetches.Load() - before; got != 0 {
		t.Fatalf("%d fetches within the cooldown", got)
	}
}
