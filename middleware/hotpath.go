package middleware

import (
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhirjson"
)

// readRefsJSON reads a response as readJSON does, keeping only what the
// compartment and reference checks read (fhirjson.Options.References).
var readRefsJSON = func() fhirjson.Options {
	o := readJSON
	o.References = true
	return o
}()

// referencesSuffice reports whether judging the resource a read returns
// needs nothing of it but its top-level resourceType and id and its
// "reference" members: no resource policy (they are given the whole
// resource) and no granular constraint (they read other elements) applies,
// so the compartment and other-patient checks, which read only those, are
// the whole verification. The accesses are the interaction's own
// (accessesFor answers them for a resource of the interaction's type; a
// resource of another type is refused before any check).
func (x *exchange) referencesSuffice() bool {
	if len(x.a.resPols) > 0 || x.acs == nil {
		return false
	}
	for _, ac := range x.acs {
		if !ac.grant.Unconstrained {
			return false
		}
	}
	return true
}

// lowerASCIIEqual reports whether s in lower case is want, which is lower
// case ASCII without "k" (strings.ToLower maps the Kelvin sign to "k", the
// only non-ASCII letter it maps to ASCII).
func lowerASCIIEqual(s, want string) bool {
	if len(s) != len(want) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// verifiedCall is what serveVerified allocates for a request, in one
// piece: the request the handler gets, the recorder of its answer, and
// room for the request header's values.
type verifiedCall struct {
	req  http.Request
	rec  recorder
	vals [8]string
}

// verifiedRequestHeader returns a copy of h for a request whose response
// will be verified: Accept is application/fhir+json, and Accept-Encoding,
// If-None-Match and If-Modified-Since are removed (a compressed body or a
// 304 could not be verified). It equals h.Clone() followed by Set("Accept",
// …) and Del of the others, in one map, the values in buf as long as they
// fit.
func verifiedRequestHeader(h http.Header, buf []string) http.Header {
	out := make(http.Header, len(h)+1)
	for k, vv := range h {
		switch k {
		case "Accept", "Accept-Encoding", "If-None-Match", "If-Modified-Since":
			continue
		}
		if vv == nil {
			out[k] = nil // as Clone keeps it
			continue
		}
		var c []string
		if len(vv) > 0 && len(vv) <= len(buf) {
			c, buf = buf[:len(vv):len(vv)], buf[len(vv):]
		} else {
			c = make([]string, len(vv))
		}
		copy(c, vv)
		out[k] = c
	}
	if len(buf) > 0 {
		buf[0] = "application/fhir+json"
		out["Accept"] = buf[:1:1]
	} else {
		out["Accept"] = []string{"application/fhir+json"}
	}
	return out
}

// authRequest is the request Authenticate hands on and its context, in one
// allocation.
type authRequest struct {
	req http.Request
	ctx authContext
}

// withAuthContext returns a copy of r whose context carries e, in one
// allocation: r.WithContext's own copy stays on the stack when WithContext
// is inlined here. It is kept out of line because a copy inlined into a
// closure inlined elsewhere (Guard.Handler) does not get that.
//
//go:noinline
func withAuthContext(r *http.Request, e *cacheEntry) *http.Request {
	ar := &authRequest{ctx: authContext{Context: r.Context(), e: e}}
	ar.req = *r.WithContext(&ar.ctx)
	return &ar.req
}

// knownToken returns the cache key of tok and whether tok is the very
// token of an entry in one of a's caches. The entry is recorded in the key:
// the lookup that follows uses it (cacheKey.seen). Every token in a cache
// went through checkToken first, so it would pass it again: the check is
// skipped for it.
func (a *Authenticator) knownToken(tok string) (cacheKey, bool) {
	k := a.hasher.key(tok)
	if e := a.jwtCache.lookup(k); e != nil {
		k.seen, k.in = e, a.jwtCache
	} else if a.intro != nil {
		if e := a.intro.cache.lookup(k); e != nil {
			k.seen, k.in = e, a.intro.cache
		}
	}
	return k, k.seen != nil
}

// lookup returns the entry, live or not, that c (which may be nil) has for
// the token of k, or nil. Like get, it counts as a use of the entry.
func (c *tokenCache) lookup(k cacheKey) *cacheEntry {
	if c == nil {
		return nil
	}
	if e, ok := c.lru.Get(k.h); ok && sameToken(e.raw, k.raw) {
		return e
	}
	return nil
}

// headerGet is h.Get(key) for a key already in canonical form (a constant
// of the package), without canonicalizing it again on every request.
func headerGet(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// plainPath reports whether p has only bytes that url.URL.EscapedPath never
// escapes (letters, digits, "-", ".", "_", "~" and "/"): for such a Path
// and no RawPath, EscapedPath returns p itself.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !plainPathByte[p[i]] {
			return false
		}
	}
	return true
}

var plainPathByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", byte(c)) >= 0
	}
	return t
}()
