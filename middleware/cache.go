package middleware

import (
	"hash/maphash"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/fhirguard/fhirguard/scope"
)

// cacheKey finds a token in a tokenCache: h, a seeded non-cryptographic hash
// of the token (hash/maphash, one random seed per Authenticator, so that
// nobody can aim tokens at a slot), picks the entry, and the token itself,
// compared in full on every hit (sameToken), decides. A hash collision can
// therefore never answer a token with another token's facts: it is a miss,
// and the token is verified on its own.
type cacheKey struct {
	h   uint64
	raw string
	// seen, when not nil, is the entry of raw that knownToken already got
	// from the cache in (its use already counted for the LRU): get answers
	// with it without a second lookup.
	seen *cacheEntry
	in   *tokenCache
}

// tokenHasher computes cacheKeys. hash is nil except in tests, which
// inject a weak hash to force collisions.
type tokenHasher struct {
	seed maphash.Seed
	hash func(string) uint64
}

func newTokenHasher() tokenHasher { return tokenHasher{seed: maphash.MakeSeed()} }

// key hashes raw with maphash.Comparable: the runtime's string hash over
// the whole token in one pass (maphash.String feeds it 128 bytes at a
// time, three times slower on a 700-byte JWT).
func (t *tokenHasher) key(raw string) cacheKey {
	if t.hash != nil {
		return cacheKey{h: t.hash(raw), raw: raw}
	}
	return cacheKey{h: maphash.Comparable(t.seed, raw), raw: raw}
}

// sameToken reports whether a and b are the same token. It is an ordinary
// comparison (memequal), whose time depends on where the tokens first
// differ: it only ever runs on a token whose keyed hash found b's entry,
// and with a random seed per Authenticator that nobody can observe, a
// different token reaching an entry is a 64-bit accident, not something a
// client can aim at, so there is nothing for timing to tell. A
// constant-time comparison cost four times as much on every cached request.
func sameToken(a, b string) bool { return a == b }

// cacheEntry is what a cache holds about one token: facts (the Token, or the
// refusal for a negative introspection answer), never an authorisation
// decision.
type cacheEntry struct {
	raw     string // the token: a hit must equal it (cacheKey)
	tok     *Token
	refusal *AuthError // negative answer (introspection: active false)
	expires int64      // Unix nanoseconds; the entry is dead from then on
	keyGen  uint64     // key-set generation the signature was verified with (JWT)
	isJWT   bool

	jwtOnce sync.Once
	jwt     any // the jwx token for jwtauth, built on first use
}

// jwtToken returns the jwx token for jwtauth.FromContext, built once.
func (e *cacheEntry) jwtToken() any {
	e.jwtOnce.Do(func() { e.jwt = newJWTToken(e.tok.Claims) })
	return e.jwt
}

// tokenCache is a bounded LRU of token facts keyed by cacheKey, with a
// per-entry expiry. It holds each token for as long as its entry lives (at
// most the token's own lifetime, or CacheMaxTTL), so that a hit is decided
// by the token itself and never by a hash alone. It is safe for concurrent
// use.
type tokenCache struct {
	lru *lru.Cache[uint64, *cacheEntry]
}

func newTokenCache(size int) (*tokenCache, error) {
	c, err := lru.New[uint64, *cacheEntry](size)
	if err != nil {
		return nil, err
	}
	return &tokenCache{lru: c}, nil
}

// get returns the live entry of the token of k at now (Unix nanoseconds).
// An entry of another token in the same slot is a miss.
func (c *tokenCache) get(k cacheKey, now int64) (*cacheEntry, bool) {
	e := k.seen
	if k.in != c || e == nil {
		var ok bool
		if e, ok = c.lru.Get(k.h); !ok || !sameToken(e.raw, k.raw) {
			return nil, false
		}
	}
	if now >= e.expires {
		if cur, ok := c.lru.Peek(k.h); ok && cur == e {
			c.lru.Remove(k.h) // not another token's entry that took the slot since
		}
		return nil, false
	}
	return e, true
}

// add caches e for the token of k, replacing whatever held its slot. The
// entry keeps its own copy of the token, not the request's memory.
func (c *tokenCache) add(k cacheKey, e *cacheEntry) {
	e.raw = strings.Clone(k.raw)
	c.lru.Add(k.h, e)
}

// scopeCache shares one compiled *scope.Matcher between all tokens with the
// same scope string. It is bounded (LRU).
type scopeCache struct {
	lru *lru.Cache[string, *scope.Matcher]
}

func newScopeCache(size int) (*scopeCache, error) {
	c, err := lru.New[string, *scope.Matcher](size)
	if err != nil {
		return nil, err
	}
	return &scopeCache{lru: c}, nil
}

// maxCachedScopeLen keeps pathological scope strings out of the cache.
const maxCachedScopeLen = 4096

func (c *scopeCache) get(s string) *scope.Matcher {
	if m, ok := c.lru.Get(s); ok {
		return m
	}
	m := scope.Compile(scope.ParseSet(s))
	if len(s) > maxCachedScopeLen {
		return m
	}
	if prev, ok, _ := c.lru.PeekOrAdd(s, m); ok {
		return prev
	}
	return m
}
