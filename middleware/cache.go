package middleware

import (
	"crypto/sha256"
	"sync"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/fhirguard/fhirguard/scope"
)

// tokenHash is the cache key of a token: its SHA-256. Raw tokens are never
// stored.
type tokenHash [sha256.Size]byte

func hashToken(tok string) tokenHash {
	// Hash the string's bytes in place: Sum256 neither keeps nor changes
	// them, and a copy would cost an allocation per request.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
}

// cacheEntry is what a cache holds about one token: facts (the Token, or the
// refusal for a negative introspection answer), never an authorisation
// decision.
type cacheEntry struct {
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

// tokenCache is a bounded LRU of token facts keyed by token hash, with a
// per-entry expiry. It is safe for concurrent use.
type tokenCache struct {
	lru *lru.Cache[tokenHash, *cacheEntry]
}

func newTokenCache(size int) (*tokenCache, error) {
	c, err := lru.New[tokenHash, *cacheEntry](size)
	if err != nil {
		return nil, err
	}
	return &tokenCache{lru: c}, nil
}

// get returns the live entry for k at now (Unix nanoseconds).
func (c *tokenCache) get(k tokenHash, now int64) (*cacheEntry, bool) {
	e, ok := c.lru.Get(k)
	if !ok {
		return nil, false
	}
	if now >= e.expires {
		c.lru.Remove(k)
		return nil, false
	}
	return e, true
}

func (c *tokenCache) add(k tokenHash, e *cacheEntry) { c.lru.Add(k, e) }

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
