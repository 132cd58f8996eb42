package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSConfig configures the Guard's CORS for the FHIR API (Config.CORS).
// Browser apps (SMART public clients) call the FHIR API from their own
// origin; the browser first sends a preflight OPTIONS request without the
// token, which the Guard answers itself (204 when the origin, method and
// headers are allowed, 403 otherwise): a preflight never reaches the FHIR
// handler. Responses to allowed origins carry the CORS headers.
type CORSConfig struct {
	// AllowedOrigins lists the origins ("https://app.example.org") allowed to
	// call the API; a lone "*" allows any origin. Empty means CORS is off: no
	// CORS headers, and preflights are refused with 403. New copies it:
	// changing the slice afterwards changes nothing.
	//
	// Origins are compared byte for byte with the request's Origin header,
	// so each must be written as browsers send it: scheme://host[:port],
	// lower case, without the default port, path, trailing slash, query or
	// fragment (see ParseOrigins, which reads such a list from a flag). New
	// refuses a list that is not. The public discovery documents served by
	// a Guard allow any origin whatever this list says.
	AllowedOrigins []string
	// AllowOrigin, when set, decides instead of AllowedOrigins (for example
	// from a client registry).
	AllowOrigin func(origin string) bool
	// AllowOriginForClient, when set, is asked on actual (non-preflight)
	// requests once the token is known, so that each client can be limited
	// to its registered origins: when it says no, the response carries no
	// Access-Control-Allow-Origin.
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

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// corsMiddleware answers preflight requests itself (204 when the origin,
// method and headers are allowed, 403 otherwise) and adds CORS headers to
// the responses of allowed origins. It runs before authentication:
// preflights carry no token.
func corsMiddleware(cfg CORSConfig) func(http.Handler) http.Handler {
	c := newCORS(cfg)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := headerGet(r.Header, "Origin")
			if isPreflight(r) {
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

// corsForClient returns a middleware, placed after authentication, that
// removes the Access-Control-Allow-Origin header corsMiddleware set when
// the token's client may not use the request's origin (per
// cfg.AllowOriginForClient). Without AllowOriginForClient it does nothing.
func corsForClient(cfg CORSConfig) func(http.Handler) http.Handler {
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

// checkCORS validates what New accepts: the origins (validateOrigins) and
// header names that can be sent back as they are.
func checkCORS(cfg CORSConfig) error {
	if err := validateOrigins(cfg.AllowedOrigins); err != nil {
		return fmt.Errorf("middleware: Config.CORS.AllowedOrigins: %w", err)
	}
	for _, f := range [...]struct {
		name  string
		names []string
	}{{"AllowedHeaders", cfg.AllowedHeaders}, {"ExposedHeaders", cfg.ExposedHeaders}} {
		for _, n := range f.names {
			if !isFieldName(n) {
				return fmt.Errorf("middleware: Config.CORS.%s: %q is not an HTTP header name", f.name, n)
			}
		}
	}
	return nil
}

// isFieldName reports whether s is an HTTP field name (RFC 9110 token).
func isFieldName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// errInvalidOrigin is wrapped by the errors of validateOrigin,
// validateOrigins and ParseOrigins.
var errInvalidOrigin = errors.New("invalid CORS origin")

// maxOriginLen bounds an origin: a host name has at most 253 bytes.
const maxOriginLen = len("https://") + 253 + len(":65535")

// validateOrigin checks that s is an origin exactly as a browser sends it
// (see ParseOrigins). The error names s and says what is wrong; it wraps
// errInvalidOrigin.
func validateOrigin(s string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("middleware: %w %q: %s", errInvalidOrigin, s, fmt.Sprintf(format, args...))
	}
	switch {
	case s == "":
		return bad("empty")
	case s == "*":
		return bad("a wildcard is allowed only as the whole list")
	case strings.EqualFold(s, "null"):
		return bad("the opaque origin null is sent by sandboxed frames and file: pages; it cannot be allowed")
	case len(s) > maxOriginLen:
		return bad("longer than %d bytes", maxOriginLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return bad("contains a space, a control or a non-ASCII character (write internationalised host names in their xn-- form)")
		}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return bad("not scheme://host[:port]")
	}
	switch {
	case scheme == "https" || scheme == "http":
	case strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http"):
		return bad("the scheme must be lower case, as browsers send it")
	default:
		return bad("the scheme must be https or http")
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		switch {
		case rest[i:] == "/":
			return bad("has a trailing slash; an origin has no path: write %s", s[:len(s)-1])
		case rest[i] == '/':
			return bad("has a path; an origin is scheme://host[:port]")
		default:
			return bad("has a query or fragment; an origin is scheme://host[:port]")
		}
	}
	if strings.ContainsAny(rest, "@\\") {
		return bad("has user information or a backslash")
	}
	if strings.Contains(rest, "*") {
		return bad("wildcards are not supported in an origin: list each origin, or allow any with a lone *")
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("unterminated IPv6 address")
		}
		host, port = rest[:end+1], rest[end+1:]
		if port != "" && port[0] != ':' {
			return bad("unexpected characters after the IPv6 address")
		}
		port = strings.TrimPrefix(port, ":")
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return bad("%s is not an IPv6 address", host)
		}
		if canon := "[" + addr.String() + "]"; canon != host {
			return bad("write the IPv6 address as browsers do: %s", canon)
		}
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
		}
		if err := checkOriginHost(host); err != "" {
			return bad("%s", err)
		}
	}
	if port != "" || strings.HasSuffix(rest, ":") {
		n, err := strconv.Atoi(port)
		switch {
		case port == "" || err != nil || strings.TrimLeft(port, "0123456789") != "":
			return bad("the port must be a number")
		case port[0] == '0' || n < 1 || n > 65535:
			return bad("the port must be 1 to 65535, without leading zeros")
		case (scheme == "https" && n == 443) || (scheme == "http" && n == 80):
			return bad("browsers leave out the default port: write %s://%s", scheme, host)
		}
	}
	return nil
}

// checkOriginHost checks a DNS name or IPv4 address as browsers serialise
// it; it returns what is wrong, or "".
func checkOriginHost(host string) string {
	if host == "" {
		return "no host"
	}
	if len(host) > 253 {
		return "the host name is longer than 253 bytes"
	}
	if strings.ToLower(host) != host {
		return "the host must be lower case, as browsers send it"
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return "the host has an empty label (a leading, trailing or double dot)"
		}
		if len(label) > 63 {
			return "a host label is longer than 63 bytes"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("the host holds %q", c)
			}
		}
	}
	// An all-numeric name is an IPv4 address to a browser, which rewrites
	// forms like 127.1 or 0x7f.0.0.1; only the dotted-decimal form matches.
	if strings.Trim(host, "0123456789.") == "" {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || a.String() != host {
			return "not a dotted-decimal IPv4 address"
		}
	}
	return ""
}

// validateOrigins checks a CORSConfig.AllowedOrigins list: every entry
// passes validateOrigin, or the list is exactly ["*"] (any origin). The
// error names the first bad entry; it wraps errInvalidOrigin. An empty
// list (CORS off) is valid.
func validateOrigins(origins []string) error {
	if len(origins) == 1 && origins[0] == "*" {
		return nil
	}
	for _, o := range origins {
		if o == "*" {
			return fmt.Errorf("middleware: %w \"*\": any origin is allowed by a lone * only, not next to other origins", errInvalidOrigin)
		}
		if err := validateOrigin(o); err != nil {
			return err
		}
	}
	return nil
}

// ParseOrigins reads a comma-separated list of origins for
// CORSConfig.AllowedOrigins, such as the value of a command-line flag:
// items are trimmed of spaces and empty items dropped. An empty list gives
// nil (CORS off); a lone "*" allows any origin. Every other item must be an
// origin exactly as a browser sends it in the Origin header (RFC 6454
// §6.2, the WHATWG URL serialisation), since the Guard compares them byte
// for byte:
//
//   - scheme "https" or "http", lower case, then "://";
//   - a host: a DNS name or IPv4 address in lower case (internationalised
//     names in their xn-- form), or an IPv6 address in brackets, in its
//     canonical lower-case form;
//   - an optional port, 1 to 65535, without leading zeros, and never the
//     scheme's default (443, 80): browsers leave it out;
//   - nothing else: no path (not even a trailing slash), query, fragment,
//     user information, space or wildcard.
//
// The opaque origin "null" (sandboxed frames, file: pages, some redirects)
// is refused: allowing it would let any such document in. The error names
// the first bad item and says what is wrong. New applies the same rules to
// CORSConfig.AllowedOrigins.
func ParseOrigins(list string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	if err := validateOrigins(out); err != nil {
		return nil, err
	}
	return out, nil
}
