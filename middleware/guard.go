package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/discovery"
	"github.com/fhirguard/fhirguard/internal/wellknown"
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
	// CORS configures cross-origin access to the FHIR API (token-bearing
	// requests); with no AllowedOrigins (and no AllowOrigin) the API sends
	// no CORS headers. New refuses AllowedOrigins that ParseOrigins would
	// refuse. The public documents (the well-known documents and
	// /metadata) allow any origin whatever this says: SMART requires it.
	CORS CORSConfig
	// SMARTConfiguration, when set, is served at
	// <base>/.well-known/smart-configuration, without a token. Build it
	// with discovery.NewHandler (or take discovery.Remote's).
	//
	// The Guard answers every path at or below <base>/.well-known itself:
	// a document not set here (or in ProtectedResource) is a 404, with or
	// without a token, for any method; the wrapped handler never sees it.
	SMARTConfiguration *discovery.Handler
	// ProtectedResource, when set, is served without a token at the RFC 9728
	// location, /.well-known/oauth-protected-resource followed by the base
	// path, and at <base>/.well-known/oauth-protected-resource. The first is
	// outside the FHIR base: when the router sends only the base to Handler,
	// register it with MountProtectedResource. Every WWW-Authenticate
	// challenge then names the first (resource_metadata, RFC 9728 §5.1),
	// so that a client that meets a 401 finds the authorization server. A
	// *discovery.ProtectedResourceHandler must name the FHIR base URL
	// (Authorize.BaseURL) as its resource, or New fails; so does a nil
	// pointer in the interface (leave the field nil instead).
	ProtectedResource http.Handler
	// PatchCapabilities merges the SMART security block of
	// SMARTConfiguration into the CapabilityStatement the wrapped handler
	// serves at <base>/metadata, so both always agree. Its cors flag says
	// whether CORS is configured for the API.
	PatchCapabilities bool
}

// Guard is the whole stack built from a Config. Close it when the server
// stops.
type Guard struct {
	authn    *Authenticator
	authz    *authorizer
	cfg      Config
	basePath string
	cors     func(http.Handler) http.Handler
	client   func(http.Handler) http.Handler
	corsAPI  bool                    // CORS is configured for the API
	public   map[string]http.Handler // escaped request path → public document (or its 404)
	// wellKnown is <base>/.well-known: the Guard answers every path at or
	// below it, serving the configured documents and 404 for the rest.
	wellKnown string
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
	if err := checkDocuments(cfg); err != nil {
		return nil, err
	}
	if err := checkLogger("Config.Auth.Logger", cfg.Auth.Logger); err != nil {
		return nil, err
	}
	if err := checkCORS(cfg.CORS); err != nil {
		return nil, err
	}
	// The caller keeps its slices: newAuthorizer and newCORS copy theirs, and
	// the Guard copies the Authenticator's allow-lists, so that changing
	// cfg afterwards cannot widen the stack.
	cfg.Auth.Issuers = slices.Clone(cfg.Auth.Issuers)
	cfg.Auth.Algorithms = slices.Clone(cfg.Auth.Algorithms)
	cfg.Auth.TrustedProxies = slices.Clone(cfg.Auth.TrustedProxies)
	authz, err := newAuthorizer(cfg.Authorize)
	if err != nil {
		return nil, err
	}
	prPaths, prErr := wellknown.ProtectedResourcePaths(cfg.Authorize.BaseURL)
	if cfg.ProtectedResource != nil {
		if prh, ok := cfg.ProtectedResource.(*discovery.ProtectedResourceHandler); ok { // built: see checkDocuments
			base := strings.TrimRight(cfg.Authorize.BaseURL, "/")
			if res := prh.Metadata().Resource; res != base && res != cfg.Authorize.BaseURL {
				return nil, fmt.Errorf("middleware: Config.ProtectedResource names the resource %q, not the FHIR base URL %q (RFC 9728 §3.3: clients compare them exactly)", res, base)
			}
		}
		if prErr != nil {
			return nil, fmt.Errorf("middleware: Config.ProtectedResource: %w", prErr)
		}
	}
	authn, err := NewAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	if cfg.ProtectedResource != nil {
		// Challenges point clients at the metadata (RFC 9728 §5.1).
		md, err := wellknown.ProtectedResourceMetadataURL(cfg.Authorize.BaseURL)
		if err != nil {
			authn.Close()
			return nil, fmt.Errorf("middleware: Config.ProtectedResource: %w", err)
		}
		authn.resourceMetadata, authz.resourceMetadata = md, md
	}
	u, _ := url.Parse(cfg.Authorize.BaseURL) // validated by newAuthorizer
	g := &Guard{authn: authn, authz: authz, cfg: cfg, basePath: strings.TrimRight(u.EscapedPath(), "/"),
		public: map[string]http.Handler{}}
	g.wellKnown = g.basePath + "/.well-known"
	g.cors = corsMiddleware(cfg.CORS)
	g.client = corsForClient(cfg.CORS)
	g.corsAPI = len(cfg.CORS.AllowedOrigins) > 0 || cfg.CORS.AllowOrigin != nil
	if cfg.SMARTConfiguration != nil {
		g.public[g.basePath+wellknown.SMARTConfigurationPath] = publicDocument(cfg.SMARTConfiguration)
	}
	// Without ProtectedResource its RFC 9728 locations are answered 404
	// like the other unconfigured well-known documents.
	h := http.Handler(http.HandlerFunc(wellKnownNotFound))
	if cfg.ProtectedResource != nil {
		h = publicDocument(cfg.ProtectedResource)
	}
	for _, p := range prPaths {
		g.public[p] = h
	}
	return g, nil
}

// checkDocuments refuses public documents that would panic on their first
// request: a nil pointer (or func) in ProtectedResource, and discovery
// handlers that were declared rather than built by their constructors.
func checkDocuments(cfg Config) error {
	if h := cfg.SMARTConfiguration; h != nil && !usable(func() { _ = h.Document() }) {
		return errors.New("middleware: Config.SMARTConfiguration is an empty discovery.Handler; build it with discovery.NewHandler")
	}
	switch h := cfg.ProtectedResource.(type) {
	case nil:
	case *discovery.ProtectedResourceHandler:
		if h == nil {
			return errors.New("middleware: Config.ProtectedResource is a nil *discovery.ProtectedResourceHandler; leave the field nil instead")
		}
		if !usable(func() { _ = h.Metadata() }) {
			return errors.New("middleware: Config.ProtectedResource is an empty discovery.ProtectedResourceHandler; build it with discovery.NewProtectedResourceHandler")
		}
	default:
		if isNil(h) {
			return fmt.Errorf("middleware: Config.ProtectedResource is a nil %T; leave the field nil instead", h)
		}
	}
	return nil
}

// isNil reports whether v, a non-nil interface value, holds a nil pointer,
// func, map, channel or slice: a typed nil, whose methods would panic.
func isNil(v any) bool {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Invalid:
		return true
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Slice, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// usable reports whether f returns without panicking: whether a value
// declared instead of built (a zero discovery handler) can be used.
func usable(f func()) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	f()
	return true
}

// checkLogger refuses a declared slog.Logger, which has no handler and
// panics on its first record.
func checkLogger(field string, l *slog.Logger) error {
	if l != nil && l.Handler() == nil {
		return fmt.Errorf("middleware: %s has no handler; use slog.New, or leave it nil for slog.Default()", field)
	}
	return nil
}

// MountProtectedResource registers the RFC 9728 metadata
// (Config.ProtectedResource) on mux, an http.ServeMux or a chi router, at
// its RFC 9728 location, /.well-known/oauth-protected-resource followed by
// the base path ("/.well-known/oauth-protected-resource/fhir" for a base
// at /fhir), and at <base>/.well-known/oauth-protected-resource, served as
// Handler serves it (no token, any origin). The RFC 9728 location is
// outside the FHIR base, so a router that sends only the base to Handler
// needs this. It registers nothing without Config.ProtectedResource, and
// fails, registering nothing, when the base path cannot be a routing
// pattern (it holds escapes or "{", "}", "*", spaces): register such paths
// yourself.
func (g *Guard) MountProtectedResource(mux interface {
	Handle(pattern string, handler http.Handler)
}) error {
	if g.cfg.ProtectedResource == nil {
		return nil
	}
	paths, err := wellknown.ProtectedResourcePaths(g.cfg.Authorize.BaseURL)
	if err != nil {
		return err
	}
	_, err = wellknown.MountProtectedResource(mux, g.cfg.Authorize.BaseURL, g.public[paths[0]])
	return err
}

// Close stops everything the Guard started: the JWKS refresh and any
// fetch in flight (it waits for them), and the idle connections to the
// authorization server (those of an AuthConfig.HTTPClient or
// IntrospectionConfig.HTTPClient of your own are yours to close). Call it
// once the server has stopped; calling it again does nothing.
func (g *Guard) Close() { g.authn.Close() }

// Handler wraps next, the FHIR server, with the whole stack:
//
//	public documents (well-known documents, /metadata): any origin, no token
//	other well-known paths: 404, token or not, any method
//	otherwise: CORS (configured origins; preflights answered) →
//	Authenticate → Authorize → next
//
// The well-known paths are <base>/.well-known and every path below it,
// and the RFC 9728 location of the base's protected-resource metadata:
// next never sees them, whether Config sets their documents or not.
//
// The public documents answer every origin with
// Access-Control-Allow-Origin: * and never allow credentials, preflights
// included, as SMART requires of the discovery endpoints; the API answers
// only the origins of Config.CORS.
func (g *Guard) Handler(next http.Handler) http.Handler {
	api := g.cors(g.authn.Handler(g.client(g.authz.Handler(next))))
	metadata := next
	if g.cfg.PatchCapabilities {
		metadata = g.patchCapabilities(next)
	}
	metadata = publicDocument(metadata)
	metadataPath := g.basePath + "/metadata"
	// The public documents, as a list: a handful of paths, compared faster
	// than a map finds them (most requests are compared by length alone).
	type document struct {
		path string
		h    http.Handler
	}
	var documents []document
	for p, h := range g.public {
		documents = append(documents, document{p, h})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if r.URL.RawPath != "" || !plainPath(path) {
			path = r.URL.EscapedPath() // the same string for a plain path
		}
		for i := range documents {
			if documents[i].path == path {
				documents[i].h.ServeHTTP(w, r)
				return
			}
		}
		if strings.HasPrefix(path, g.wellKnown) && (len(path) == len(g.wellKnown) || path[len(g.wellKnown)] == '/') {
			wellKnownNotFound(w, r)
			return
		}
		if path == metadataPath && (r.Method == http.MethodGet || r.Method == http.MethodHead || isPreflight(r)) {
			if n, _ := countTokenParams(r.URL.RawQuery); n > 0 {
				// Public, but an access token in its URL would still reach
				// the server's logs.
				setPublicCORS(w.Header())
				closeUnreadBody(w, r)
				writeError(w, challengeInfo{g.authz.realm, g.authz.resourceMetadata}, invalidRequest("access tokens are not accepted in the URL",
					fmt.Errorf("%w: access_token parameter on /metadata", errMalformedRequest)))
				return
			}
			metadata.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r) // Authorize answers 404 outside the base
	})
}

// wellKnownNotFound answers a well-known path whose document the Guard
// does not serve: the wrapped handler never sees such a request.
func wellKnownNotFound(w http.ResponseWriter, r *http.Request) {
	closeUnreadBody(w, r)
	writeOutcome(w, http.StatusNotFound, "no such well-known document")
}

// Public documents: methods and preflight answers.
const (
	publicMethods        = "GET, HEAD, OPTIONS"
	publicRequestHeaders = "Accept, If-None-Match, If-Modified-Since, Cache-Control"
	publicPreflightAge   = "86400"
)

// publicDocument serves a public document (a discovery document,
// /metadata) to any origin: a CORS preflight is answered here, and the
// response carries Access-Control-Allow-Origin: * and no
// Access-Control-Allow-Credentials, whatever h sets.
func publicDocument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isPreflight(r) {
			hdr := w.Header()
			setPublicCORS(hdr)
			hdr.Set("Access-Control-Allow-Methods", publicMethods)
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && isHeaderList(req) {
				hdr.Set("Access-Control-Allow-Headers", req)
			} else {
				hdr.Set("Access-Control-Allow-Headers", publicRequestHeaders)
			}
			hdr.Set("Access-Control-Max-Age", publicPreflightAge)
			hdr.Add("Vary", "Access-Control-Request-Headers")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(&publicWriter{ResponseWriter: w}, r)
	})
}

// setPublicCORS makes a response readable from any origin, without
// credentials.
func setPublicCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Del("Access-Control-Allow-Credentials")
}

// isHeaderList reports whether s is a short comma-separated list of HTTP
// field names, safe to echo in Access-Control-Allow-Headers.
func isHeaderList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~, ", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// publicWriter puts the public CORS headers on the response of a public
// document just before its header is written, over any the handler set.
type publicWriter struct {
	http.ResponseWriter
	done bool
}

func (p *publicWriter) WriteHeader(code int) {
	setPublicCORS(p.Header())
	if code >= 200 {
		p.done = true
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *publicWriter) Write(b []byte) (int, error) {
	if !p.done {
		setPublicCORS(p.Header())
		p.done = true
	}
	return p.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (p *publicWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// patchCapabilities merges the security block into JSON CapabilityStatements.
func (g *Guard) patchCapabilities(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := newRecorder(defaultMaxResponseBytes)
		inner := r.Clone(r.Context())
		inner.Header.Del("Accept-Encoding")
		if inner.Method == http.MethodHead {
			inner.Method = http.MethodGet
		}
		next.ServeHTTP(rec, inner)
		body := rec.body.Bytes()
		if rec.code() == http.StatusOK && !rec.overflow && isJSONMediaType(rec.header.Get("Content-Type")) {
			if b, err := rec.decodedBody(); err == nil {
				if patched, err := discovery.PatchCapabilityStatement(b, g.cfg.SMARTConfiguration.Document(), g.corsAPI); err == nil {
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
