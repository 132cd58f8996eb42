package middleware

import (
	"strings"
	"testing"
	"time"
)

func TestSameToken(t *testing.T) {
	base := strings.Repeat("abcdefgh", 9) + "xyz" // 75 bytes: words and a tail
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{base, base, true},
		{base, strings.Clone(base), true},
		{base, base[:len(base)-1], false},
		{base, base + "=", false},
		{base, "A" + base[1:], false},              // first byte
		{base, base[:40] + "!" + base[41:], false}, // a middle word
		{base, base[:len(base)-1] + "!", false},    // last byte of the tail
		{base[:72], base[:71] + "!", false},        // last byte of the last word
		{"a", "b", false},
	} {

		if got := sameToken(tc.a, tc.b); got != tc.want {
			t.Errorf("sameToken(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	// A change at every byte position is seen.
	for i := range len(base) {
		changed := base[:i] + "!" + base[i+1:]
		if sameToken(base, changed) || sameToken(changed, base) {
			t.Fatalf("a change at byte %d is not seen", i)
		}
	}
}

// collide makes every token land in the same cache slot.
func collide(a *Authenticator) { a.hasher.hash = func(string) uint64 { return 42 } }

// TestCacheCollisionJWT: with a hash under which every token collides, a
// token is never answered with the facts cached for another: a forged
// token in a cached token's slot is refused, another valid token is
// verified on its own and gets its own identity.
func TestCacheCollisionJWT(t *testing.T) {
	a := newAuth(t, baseConfig(t))
	collide(a)
	claimsA, claimsB := validClaims(), validClaims()
	claimsA["sub"], claimsA["patient"] = "user-a", "aaa"
	claimsB["sub"], claimsB["patient"] = "user-b", "bbb"
	tokA, tokB := keyRS.token(claimsA, nil), keyES.token(claimsB, nil)
	if a.hasher.key(tokA).h != a.hasher.key(tokB).h {
		t.Fatal("the injected hash does not collide")
	}
	seen := func(tok string, wantStatus int) *Token {
		t.Helper()
		h := &recordHandler{}
		w := doAuth(a, h, tok)
		if w.Code != wantStatus {
			t.Fatalf("status %d, want %d (%s)", w.Code, wantStatus, w.Body)
		}
		return h.last.Load()
	}
	if got := seen(tokA, 200); got == nil || got.Subject != "user-a" || got.Patient != "aaa" {
		t.Fatalf("A: %+v", got)
	}
	v := a.verifications.Load()
	if got := seen(tokA, 200); got == nil || got.Subject != "user-a" || a.verifications.Load() != v {
		t.Fatal("A is not answered from the cache")
	}

	// Attack: tokens that share A's slot but are not A. Same length with
	// one byte changed (a broken signature), and A's header and claims
	// with another signature.
	forged := []string{
		tokA[:len(tokA)-2] + flip(tokA[len(tokA)-2]) + tokA[len(tokA)-1:],
		tokA[:strings.LastIndexByte(tokA, '.')+1] + b64enc(randBytes(256)),
		tokA + "=",
	}
	for _, f := range forged {
		if got := seen(f, 401); got != nil {
			t.Fatalf("forged token served the identity %+v", got)
		}
	}
	// Not even a b64token: refused as malformed (the syntax check is
	// skipped only for the cached token itself).
	for _, f := range []string{tokA[:len(tokA)-1] + "!", tokA[:10] + "=" + tokA[11:], "=" + tokA[1:]} {
		w := doAuth(a, &recordHandler{}, f)
		if w.Code != 400 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_request") {
			t.Fatalf("malformed token in A's slot: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}

	// Legitimate: another valid token in the same slot is verified on
	// its own, then A again.
	if got := seen(tokB, 200); got == nil || got.Subject != "user-b" || got.Patient != "bbb" {
		t.Fatalf("B served %+v", got)
	}
	if a.verifications.Load() == v {
		t.Fatal("B was not verified")
	}
	if got := seen(tokA, 200); got == nil || got.Subject != "user-a" || got.Patient != "aaa" {
		t.Fatalf("A after B: %+v", got)
	}
}

// flip returns a different base64url character than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestCacheCollisionIntrospection is TestCacheCollisionJWT for opaque
// tokens, and for ModeAuto, where a cached JWT is looked up before the
// token's shape is known.
func TestCacheCollisionIntrospection(t *testing.T) {
	for name, mode := range map[string]TokenMode{"introspection": ModeIntrospection, "autodetect": ModeAuto} {
		t.Run(name, func(t *testing.T) {
			s := newIntroServer(t)
			clock := &authClock{}
			cfg := introConfig(t, s, clock)
			cfg.Mode = mode
			if mode == ModeAuto {
				cfg.JWKS = baseConfig(t).JWKS
			}
			a := newAuth(t, cfg)
			collide(a)
			now := time.Now()
			tokA := "opaque-" + b64enc(randBytes(12))
			tokB := "opaque-" + b64enc(randBytes(12))
			s.answer(tokA, activeAnswer(now, "sub", "user-a", "patient", "aaa"))
			s.answer(tokB, activeAnswer(now, "sub", "user-b", "patient", "bbb"))
			seen := func(tok string, wantStatus int) *Token {
				t.Helper()
				h := &recordHandler{}
				w := doAuth(a, h, tok)
				if w.Code != wantStatus {
					t.Fatalf("status %d, want %d (%s)", w.Code, wantStatus, w.Body)
				}
				return h.last.Load()
			}
			if mode == ModeAuto {
				// A cached JWT in the slot: the opaque tokens below must
				// not be answered with it.
				jwt := keyRS.token(validClaims(), nil)
				if got := seen(jwt, 200); got == nil || got.Subject != "user-1" {
					t.Fatalf("JWT: %+v", got)
				}
			}
			if got := seen(tokA, 200); got == nil || got.Subject != "user-a" || got.Patient != "aaa" {
				t.Fatalf("A: %+v", got)
			}
			calls := s.calls.Load()
			if got := seen(tokA, 200); got == nil || got.Subject != "user-a" || s.calls.Load() != calls {
				t.Fatal("A is not answered from the cache")
			}
			// An unknown token of the same length in A's slot: introspected
			// (inactive), never A.
			forged := tokA[:len(tokA)-1] + flip(tokA[len(tokA)-1])
			if got := seen(forged, 401); got != nil {
				t.Fatalf("forged token served the identity %+v", got)
			}
			if s.calls.Load() == calls {
				t.Fatal("the forged token was not introspected")
			}
			if got := seen(tokB, 200); got == nil || got.Subject != "user-b" || got.Patient != "bbb" {
				t.Fatalf("B served %+v", got)
			}
			if got := seen(tokA, 200); got == nil || got.Subject != "user-a" {
				t.Fatalf("A after B: %+v", got)
			}
		})
	}
}

// TestCacheKeySeeded: two Authenticators hash the same token differently
// (one random seed each), and an entry holds the token it was verified for.
func TestCacheKeySeeded(t *testing.T) {
	a1, a2 := newAuth(t, baseConfig(t)), newAuth(t, baseConfig(t))
	tok := keyRS.token(validClaims(), nil)
	if a1.hasher.key(tok).h == a2.hasher.key(tok).h {
		t.Fatal("two Authenticators share a hash seed")
	}
	if a1.hasher.key(tok) != a1.hasher.key(strings.Clone(tok)) {
		t.Fatal("the key depends on more than the token")
	}
	if w := doAuth(a1, &recordHandler{}, tok); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if e, ok := a1.jwtCache.lru.Peek(a1.hasher.key(tok).h); !ok || e.raw != tok {
		t.Fatal("the entry does not hold the token")
	}
}

// TestCacheGetSeen: an entry looked up earlier (cacheKey.seen) answers for
// its own cache, and still only while alive; a key without one is compared.
func TestCacheGetSeen(t *testing.T) {
	c, err := newTokenCache(4)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	live := now + int64(time.Hour)
	kA, kB := cacheKey{h: 7, raw: "token-a"}, cacheKey{h: 7, raw: "token-b"}
	eA := &cacheEntry{expires: live}
	c.add(kA, eA)
	seenA := kA
	seenA.seen, seenA.in = c.lookup(kA), c
	if seenA.seen != eA || c.lookup(kB) != nil {
		t.Fatal("lookup does not find exactly the token's entry")
	}
	other, err := newTokenCache(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := other.get(seenA, now); ok {
		t.Fatal("an entry seen in one cache answered for another")
	}
	if e, ok := c.get(seenA, now); !ok || e != eA {
		t.Fatal("the seen entry is not returned")
	}
	if _, ok := c.get(kB, now); ok {
		t.Fatal("another token got A's entry")
	}
	eB := &cacheEntry{expires: live}
	c.add(kB, eB)
	if e, ok := c.get(kA, now); ok {
		t.Fatalf("A's key got B's entry %p", e)
	}
	expired := kA
	expired.seen, expired.in = &cacheEntry{raw: "token-a", expires: now}, c
	if _, ok := c.get(expired, now); ok {
		t.Fatal("an expired entry was answered")
	}
	if e, ok := c.get(kB, now); !ok || e != eB {
		t.Fatal("B's entry is not returned")
	}
}
