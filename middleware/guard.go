package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/discovery"
)

// Config wires a whole SMART on FHIR resource server: CORS, the public
// discovery endpoints, Authenticate and Authorize. It is what most servers
// need; the middlewares can also be used one by one.
type Config struct {
	// Authorize configures the enforcement point. Its BaseURL, the FHIR
	// base, is required.
	Authorize AuthorizeConfig
	// Auth configures Authenticate. Auth.Audience defaults to
	// Authorize.BaseURL, the audience SMART tokens carry.
	Auth AuthConfig
	// CORS configures cross-origin access; with no AllowedOrigins (and no
	// AllowOrigin) no CORS headers are sent.
	CORS CORSConfig
	// SMARTConfiguration, when set, is served at
	// <base>/.well-known/smart-configuration, without a token.
	SMARTConfiguration *discovery.Handler
	// ProtectedResource, when set, is served at
	// <base>/.well-known/oauth-protected-resource (RFC 9728), without a token.
	ProtectedResource http.Handler
	// PatchCapabilities merges the SMART security block of
	// SMARTConfiguration into the CapabilityStatement the wrapped handler
	// serves at <base>/metadata, so both always agree.
	PatchCapabilities bool
}

// Guard is the whole stack built from a Config. Close it when the server
// stops.
type Guard struct {
	authn    *Authenticator
	authz    *Authorizer
	cfg      Config
	basePath string
	cors     func(http.Handler) http.Handler
	client   func(http.Handler) http.Handler
}

// New validates cfg and builds the Guard. The Guard keeps copies of the
// slices in cfg: changing them afterwards changes nothing.
func New(cfg Config) (*Guard, error) {
	if cfg.Authorize.BaseURL == "" {
		return nil, errors.New("middleware: Config.Authorize.BaseURL is required")
	}
	if cfg.Auth.Audience == "" {
		cfg.Auth.Audience = cfg.Authorize.BaseURL
	}
	if cfg.PatchCapabilities && cfg.SMARTConfiguration == nil {
		return nil, errors.New("middleware: PatchCapabilities needs SMARTConfiguration")
	}
	// The caller keeps its slices: NewAuthorizer and CORS copy theirs, and
	// the Guard copies the Authenticator's allow-lists, so that changing
	// cfg afterwards cannot widen the stack.
	cfg.Auth.Issuers = slices.Clone(cfg.Auth.Issuers)
	cfg.Auth.Algorithms = slices.Clone(cfg.Auth.Algorithms)
	cfg.Auth.TrustedProxies = slices.Clone(cfg.Auth.TrustedProxies)
	authz, err := NewAuthorizer(cfg.Authorize)
	if err != nil {
		return nil, err
	}
	authn, err := NewAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Authorize.BaseURL) // validated by NewAuthorizer
	g := &Guard{authn: authn, authz: authz, cfg: cfg, basePath: strings.TrimRight(u.EscapedPath(), "/")}
	g.cors = CORS(cfg.CORS)
	g.client = CORSForClient(cfg.CORS)
	return g, nil
}

// Authenticator returns the Guard's Authenticator.
func (g *Guard) Authenticator() *Authenticator { return g.authn }

// Authorizer returns the Guard's Authorizer.
func (g *Guard) Authorizer() *Authorizer { return g.authz }

// Close stops background work (the JWKS refresh).
func (g *Guard) Close() { g.authn.Close() }

// Handler wraps next, the FHIR server, with the whole stack:
//
//	CORS (preflights answered) → public endpoints (well-known documents,
//	/metadata) → Authenticate → Authorize → next
func (g *Guard) Handler(next http.Handler) http.Handler {
	protected := g.authn.Handler(g.client(g.authz.Handler(next)))
	metadata := next
	if g.cfg.PatchCapabilities {
		metadata = g.patchCapabilities(next)
	}
	return g.cors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch rest, ok := strings.CutPrefix(r.URL.EscapedPath(), g.basePath); {
		case !ok:
			protected.ServeHTTP(w, r) // Authorize answers 404 outside the base
		case rest == "/.well-known/smart-configuration" && g.cfg.SMARTConfiguration != nil:
			g.cfg.SMARTConfiguration.ServeHTTP(w, r)
		case rest == "/.well-known/oauth-protected-resource" && g.cfg.ProtectedResource != nil:
			g.cfg.ProtectedResource.ServeHTTP(w, r)
		case rest == "/metadata" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			if n, _ := countTokenParams(r.URL.RawQuery); n > 0 {
				// Public, but an access token in its URL would still reach
				// the server's logs.
				writeError(w, g.authz.realm, invalidRequest("access tokens are not accepted in the URL",
					fmt.Errorf("%w: access_token parameter on /metadata", ErrMalformedRequest)))
				return
			}
			metadata.ServeHTTP(w, r)
		default:
			protected.ServeHTTP(w, r)
		}
	}))
}

// patchCapabilities merges the security block into JSON CapabilityStatements.
func (g *Guard) patchCapabilities(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := newRecorder(DefaultMaxResponseBytes)
		inner := r.Clone(r.Context())
		inner.Header.Del("Accept-Encoding")
		if inner.Method == http.MethodHead {
			inner.Method = http.MethodGet
		}
		next.ServeHTTP(rec, inner)
		body := rec.body.Bytes()
		if rec.code() == http.StatusOK && !rec.overflow && isJSONMediaType(rec.header.Get("Content-Type")) {
			if b, err := rec.decodedBody(); err == nil {
				if patched, err := discovery.PatchCapabilityStatement(b, g.cfg.SMARTConfiguration.Security()); err == nil {
					body = patched
					rec.header.Del("ETag")
				} else {
					g.authz.log.Warn("fhirguard: CapabilityStatement not patched", "error", fmt.Sprint(err))
				}
			}
		}
		writeRecorded(w, r, rec, body)
	})
}
