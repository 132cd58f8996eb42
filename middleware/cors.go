package middleware

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSConfig configures CORS for the FHIR endpoints. Browser apps (SMART
// public clients) call the FHIR API from their own origin; the browser first
// sends a preflight OPTIONS request without the token, which CORS answers
// itself: a preflight never reaches the FHIR handler.
type CORSConfig struct {
	// AllowedOrigins lists the origins ("https://app.example.org") allowed to
	// call the API; "*" allows any origin. Empty means CORS is off: no CORS
	// headers, and preflights are refused with 403. CORS copies it:
	// changing the slice afterwards changes nothing.
	AllowedOrigins []string
	// AllowOrigin, when set, decides instead of AllowedOrigins (for example
	// from a client registry).
	AllowOrigin func(origin string) bool
	// AllowOriginForClient, when set, is asked on actual (non-preflight)
	// requests once the token is known, so that each client can be limited
	// to its registered origins. It runs after Authenticate (see
	// CORSForClient).
	AllowOriginForClient func(origin, clientID string) bool
	// AllowedHeaders are the request headers a preflight may ask for.
	// Default: Authorization, Content-Type, Accept, If-Match, If-None-Match,
	// If-None-Exist, If-Modified-Since, Prefer, X-Requested-With.
	AllowedHeaders []string
	// ExposedHeaders are the response headers scripts may read. Default:
	// Location, Content-Location, ETag, Last-Modified, WWW-Authenticate.
	ExposedHeaders []string
	// MaxAge is how long a browser may cache a preflight answer (default 10
	// minutes).
	MaxAge time.Duration
}

var (
	defaultCORSHeaders = []string{"Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match",
		"If-None-Exist", "If-Modified-Since", "Prefer", "X-Requested-With"}
	defaultCORSExposed = []string{"Location", "Content-Location", "ETag", "Last-Modified", "WWW-Authenticate"}
	corsMethodList     = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	corsMethods        = strings.Join(corsMethodList, ", ")
)

type cors struct {
	cfg      CORSConfig
	any      bool
	headers  map[string]bool
	allowHdr string
	expose   string
	maxAge   string
}

func newCORS(cfg CORSConfig) *cors {
	cfg.AllowedOrigins = slices.Clone(cfg.AllowedOrigins) // the caller keeps its slice
	c := &cors{cfg: cfg, any: slices.Contains(cfg.AllowedOrigins, "*"), headers: map[string]bool{}}
	hs := cfg.AllowedHeaders
	if len(hs) == 0 {
		hs = defaultCORSHeaders
	}
	for _, h := range hs {
		c.headers[strings.ToLower(h)] = true
	}
	c.allowHdr = strings.Join(hs, ", ")
	ex := cfg.ExposedHeaders
	if len(ex) == 0 {
		ex = defaultCORSExposed
	}
	c.expose = strings.Join(ex, ", ")
	age := cfg.MaxAge
	if age <= 0 {
		age = 10 * time.Minute
	}
	c.maxAge = strconv.Itoa(int(age / time.Second))
	return c
}

func (c *cors) allowed(origin string) bool {
	if origin == "" {
		return false
	}
	if c.cfg.AllowOrigin != nil {
		return c.cfg.AllowOrigin(origin)
	}
	return c.any || slices.Contains(c.cfg.AllowedOrigins, origin)
}

// IsPreflight reports whether r is a CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// CORS returns a middleware that answers preflight requests itself (204 when
// the origin, method and headers are allowed, 403 otherwise) and adds CORS
// headers to the responses of allowed origins. Place it outside Authenticate:
// preflights carry no token.
func CORS(cfg CORSConfig) func(http.Handler) http.Handler {
	c := newCORS(cfg)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if IsPreflight(r) {
				c.preflight(w, r, origin)
				return
			}
			if origin != "" && c.allowed(origin) {
				c.setOrigin(w.Header(), origin)
				w.Header().Set("Access-Control-Expose-Headers", c.expose)
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (c *cors) setOrigin(h http.Header, origin string) {
	if c.any && c.cfg.AllowOrigin == nil {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
}

func (c *cors) preflight(w http.ResponseWriter, r *http.Request, origin string) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	method := r.Header.Get("Access-Control-Request-Method")
	ok := c.allowed(origin) && slices.Contains(corsMethodList, method)
	if ok {
		for _, v := range r.Header.Values("Access-Control-Request-Headers") {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.ToLower(strings.TrimSpace(name)); name != "" && !c.headers[name] {
					ok = false
				}
			}
		}
	}
	if !ok {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	c.setOrigin(h, origin)
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", c.allowHdr)
	h.Set("Access-Control-Max-Age", c.maxAge)
	w.WriteHeader(http.StatusNoContent)
}

// CORSForClient returns a middleware, placed after Authenticate, that
// removes the Access-Control-Allow-Origin header CORS set when the token's
// client may not use the request's origin (per cfg.AllowOriginForClient).
// Without AllowOriginForClient it does nothing.
func CORSForClient(cfg CORSConfig) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if cfg.AllowOriginForClient == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin != "" {
				t, ok := TokenFromContext(r.Context())
				if !ok || !cfg.AllowOriginForClient(origin, t.ClientID) {
					w.Header().Del("Access-Control-Allow-Origin")
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
