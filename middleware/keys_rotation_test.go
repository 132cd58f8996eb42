package middleware

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A key the authorisation server has just published verifies at once,
// with one fetch: the start-up and scheduled fetches do not start the
// refetch cooldown.
func TestKeysNewKidAtOnce(t *testing.T) {
	testKeys(t)
	t.Run("right after the start-up fetch", func(t *testing.T) {
		s := newFakeAS(t, keyRS)
		clock := &authClock{}
		a := newAuth(t, asConfig(t, s, clock))
		started(t, a)
		k := newKey(freshKid())
		s.publish(keyRS, k)
		before := s.fetches.Load()
		expectStatus(t, a, k.token(claimsAt(clock.now()), nil), http.StatusOK)
		if got := s.fetches.Load() - before; got != 1 {
			t.Fatalf("%d fetches, want 1", got)
		}
	})
	t.Run("right after a scheduled fetch", func(t *testing.T) {
		s := newFakeAS(t, keyRS)
		clock := &authClock{}
		a := newAuth(t, asConfig(t, s, clock))
		started(t, a)
		clock.advance(10*time.Minute + time.Second)
		remote(a).refreshIfDue(clock.now().UnixNano())
		remote(a).waitIdle()
		k := newKey(freshKid())
		s.publish(keyRS, k)
		before := s.fetches.Load()
		expectStatus(t, a, k.token(claimsAt(clock.now()), nil), http.StatusOK)
		if got := s.fetches.Load() - before; got != 1 {
			t.Fatalf("%d fetches, want 1", got)
		}
	})
	t.Run("published while the start-up fetch runs", func(t *testing.T) {
		// The start-up fetch read the old JWKS; the token joins it, then
		// fetches once more.
		s := newFakeAS(t, keyRS)
		release := s.hold()
		clock := &authClock{}
		a := newAuth(t, asConfig(t, s, clock))
		s.awaitArrival(t, 1)
		k := newKey(freshKid())
		s.publish(keyRS, k)
		done := make(chan int)
		go func() { done <- doAuth(a, &recordHandler{}, k.token(claimsAt(clock.now()), nil)).Code }()
		release()
		if code := <-done; code != http.StatusOK {
			t.Fatalf("status %d, want 200", code)
		}
		if got := s.fetches.Load(); got != 2 {
			t.Fatalf("%d fetches, want 2 (start-up, then the unknown kid)", got)
		}
	})
	t.Run("published while a scheduled fetch runs", func(t *testing.T) {
		// The token joins the scheduled fetch, which read the old JWKS,
		// then fetches once more.
		s := newFakeAS(t, keyRS)
		clock := &authClock{}
		a := newAuth(t, asConfig(t, s, clock))
		started(t, a)
		release := s.hold()
		clock.advance(10*time.Minute + time.Second)
		remote(a).refreshIfDue(clock.now().UnixNano())
		s.awaitArrival(t, 2) // start-up, scheduled
		k := newKey(freshKid())
		s.publish(keyRS, k)
		done := make(chan int)
		go func() { done <- doAuth(a, &recordHandler{}, k.token(claimsAt(clock.now()), nil)).Code }()
		waitForFlightWaiters(t, 1)
		release()
		if code := <-done; code != http.StatusOK {
			t.Fatalf("status %d, want 200", code)
		}
		if got := s.fetches.Load(); got != 3 {
			t.Fatalf("%d fetches, want 3 (start-up, scheduled, then the unknown kid)", got)
		}
	})
	t.Run("kid reused with new material right after start-up", func(t *testing.T) {
		// The failed-signature path follows the same rule.
		s := newFakeAS(t, keyES)
		clock := &authClock{}
		a := newAuth(t, asConfig(t, s, clock))
		started(t, a)
		reused := newKey(keyES.kid)
		s.publish(reused)
		before := s.fetches.Load()
		expectStatus(t, a, reused.token(claimsAt(clock.now()), nil), http.StatusOK)
		if got := s.fetches.Load() - before; got != 1 {
			t.Fatalf("%d fetches, want 1", got)
		}
		expectStatus(t, a, keyES.token(claimsAt(clock.now()), nil), http.StatusUnauthorized)
	})
}

// Concurrent requests with a new kid share one fetch.
func TestKeysNewKidShared(t *testing.T) {
	testKeys(t)
	s := newFakeAS(t, keyRS)
	clock := &authClock{}
	a := newAuth(t, asConfig(t, s, clock))
	started(t, a)
	k := newKey(freshKid())
	s.publish(keyRS, k)
	release := s.hold()
	before := s.fetches.Load()
	tok := k.token(claimsAt(clock.now()), nil)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 50 {
		// Distinct tokens: the verified-token singleflight does not merge
		// them, the key source must.
		tok := k.token(claimsAt(clock.now()), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if doAuth(a, &recordHandler{}, tok).Code == http.StatusOK {
				ok.Add(1)
			}
		}()
	}
	s.awaitArrival(t, 1)
	release()
	wg.Wait()
	expectStatus(t, a, tok, http.StatusOK)
	if ok.Load() != 50 {
		t.Fatalf("%d of 50 accepted", ok.Load())
	}
	if got := s.fetches.Load() - before; got != 1 {
		t.Fatalf("%d fetches, want 1", got)
	}
}

// Unknown kids and forged signatures under a known kid cause at most one
// fetch per cooldown, whatever their number. The test reports the fetch
// count over several fake cooldown windows.
func TestKeysFloodPerCooldown(t *testing.T) {
	testKeys(t)
	const windows, perWindow = 5, 400
	forger := newKey(keyES.kid) // claims keyES's kid
	for _, tc := range []struct {
		name  string
		fault asFault
		want  int // status of every flood request
		tok   func(clock *authClock, i int) string
	}{
		{"random kids", asUp, http.StatusUnauthorized, func(clock *authClock, i int) string {
			return keyES.token(claimsAt(clock.now()), func(h map[string]any) { h["kid"] = fmt.Sprintf("rand-%d", i) })
		}},
		{"random kids, server down", as500, http.StatusServiceUnavailable, func(clock *authClock, i int) string {
			return keyES.token(claimsAt(clock.now()), func(h map[string]any) { h["kid"] = fmt.Sprintf("rand-%d", i) })
		}},
		{"forged signatures under a known kid", asUp, http.StatusUnauthorized, func(clock *authClock, i int) string {
			return forger.token(claimsAt(clock.now()), nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeAS(t, keyRS, keyES)
			clock := &authClock{}
			a := newAuth(t, asConfig(t, s, clock))
			started(t, a)
			s.setFault(tc.fault)
			toks := make([]string, perWindow)
			before := s.fetches.Load()
			for w := range windows {
				for i := range toks {
					toks[i] = tc.tok(clock, w*perWindow+i)
				}
				var wg sync.WaitGroup
				var bad atomic.Int64
				for _, tok := range toks {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if doAuth(a, &recordHandler{}, tok).Code != tc.want {
							bad.Add(1)
						}
					}()
				}
				wg.Wait()
				if bad.Load() > 0 {
					t.Fatalf("window %d: %d requests not answered %d", w, bad.Load(), tc.want)
				}
				if got := s.fetches.Load() - before; got != int64(w+1) {
					t.Fatalf("after window %d: %d fetches, want %d (one per cooldown)", w, got, w+1)
				}
				clock.advance(30 * time.Second) // the default cooldown
			}
			t.Logf("%s: %d requests over %d cooldown windows: %d JWKS fetches", tc.name, windows*perWindow, windows, s.fetches.Load()-before)
			expectStatus(t, a, keyRS.token(claimsAt(clock.now()), nil), http.StatusOK)
		})
	}
}

// The scheduled refresh follows Cache-Control max-age clamped into
// [JWKSMinRefresh, JWKSMaxRefresh]: a removed key verifies until then (the
// documented bound), and not after.
func TestKeysScheduledRefresh(t *testing.T) {
	testKeys(t)
	for _, tc := range []struct {
		cc       string
		interval time.Duration
	}{
		{"", 10 * time.Minute},
		{"max-age=120", 2 * time.Minute},
		{"public, max-age=300", 5 * time.Minute},
		{"max-age=5", time.Minute},
		{"no-store", time.Minute},
		{"max-age=999999", 10 * time.Minute},
	} {
		t.Run(fmt.Sprintf("Cache-Control %q", tc.cc), func(t *testing.T) {
			s := newFakeAS(t, keyRS, keyES)
			s.setCacheControl(tc.cc)
			clock := &authClock{}
			a := newAuth(t, asConfig(t, s, clock))
			started(t, a)
			removed := keyRS.token(longClaims(clock), nil)
			kept := keyES.token(longClaims(clock), nil)
			expectStatus(t, a, removed, http.StatusOK) // now cached
			expectStatus(t, a, kept, http.StatusOK)
			s.publish(keyES)
			before := s.fetches.Load()

			clock.advance(tc.interval - time.Second)
			expectStatus(t, a, removed, http.StatusOK)
			remote(a).waitIdle()
			if got := s.fetches.Load() - before; got != 0 {
				t.Fatalf("%d fetches before the refresh interval", got)
			}

			clock.advance(2 * time.Second)
			expectStatus(t, a, kept, http.StatusOK) // finds the refresh due
			remote(a).waitIdle()
			if got := s.fetches.Load() - before; got != 1 {
				t.Fatalf("%d fetches after the refresh interval, want 1", got)
			}
			expectStatus(t, a, removed, http.StatusUnauthorized)
			expectStatus(t, a, keyRS.token(longClaims(clock), nil), http.StatusUnauthorized)
			expectStatus(t, a, keyES.token(longClaims(clock), nil), http.StatusOK)
		})
	}
}

// The background schedule runs without requests, on time: with a 1 s
// refresh interval a removed key is gone after the next tick. (The
// deadline only bounds a hang; jwk.Cache without a refresh window would
// wait 15 minutes.)
func TestKeysBackgroundRefresh(t *testing.T) {
	testKeys(t)
	s := newFakeAS(t, keyRS, keyES)
	cfg := asConfig(t, s, &authClock{})
	cfg.JWKSMinRefresh, cfg.JWKSMaxRefresh = time.Second, time.Second
	a := newAuth(t, cfg)
	started(t, a)
	s.publish(keyES)
	deadline := time.Now().Add(time.Minute)
	for remote(a).cur.Load().byKid[keyRS.kid] != nil {
		if time.Now().After(deadline) {
			t.Fatal("the removed key is still in the set")
		}
		time.Sleep(10 * time.Millisecond)
	}
	expectStatus(t, a, keyRS.token(validClaims(), nil), http.StatusUnauthorized)
	expectStatus(t, a, keyES.token(validClaims(), nil), http.StatusOK)
}

// After Close, nothing is fetched; the keys loaded keep verifying.
func TestKeysClose(t *testing.T) {
	testKeys(t)
	s := newFakeAS(t, keyRS)
	clock := &authClock{}
	a := newAuth(t, asConfig(t, s, clock))
	started(t, a)
	a.Close()
	before := s.fetches.Load()
	clock.advance(time.Hour)
	expectStatus(t, a, keyRS.token(claimsAt(clock.now()), nil), http.StatusOK)
	expectStatus(t, a, keyES.token(claimsAt(clock.now()), nil), http.StatusUnauthorized)
	if got := s.fetches.Load() - before; got != 0 {
		t.Fatalf("%d fetches after Close", got)
	}
}

// BenchmarkKeysRotation measures the time from the publication of a new
// key to the acceptance of the first token signed with it (one JWKS fetch
// over loopback TLS plus one verification), and the fetches it takes.
// Rotations are spaced by the cooldown on the fake clock.
func BenchmarkKeysRotation(b *testing.B) {
	testKeys(b)
	s := newFakeAS(b, keyRS)
	clock := &authClock{}
	a := newAuth(b, asConfig(b, s, clock))
	started(b, a)
	var fetches int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		k := newKey(freshKid())
		tok := k.token(claimsAt(clock.now()), nil)
		clock.advance(31 * time.Second)
		before := s.fetches.Load()
		b.StartTimer()
		s.publish(keyRS, k)
		if w := doAuth(a, &recordHandler{}, tok); w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		fetches += s.fetches.Load() - before
	}
	b.ReportMetric(float64(fetches)/float64(b.N), "fetches/op")
}
