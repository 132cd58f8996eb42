package smarttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Limits the server applies whatever the configuration says.
const (
	// maxBackendTokenLifetime caps the lifetime of client_credentials
	// tokens (SMART Backend Services: expires_in SHOULD NOT exceed 300).
	maxBackendTokenLifetime = 5 * time.Minute
	// maxAssertionLifetime is how far in the future a client assertion's exp
	// may lie.
	maxAssertionLifetime = 5 * time.Minute
	// codeLifetime is how long an authorization code can be redeemed.
	codeLifetime = time.Minute
	// simulatedLaunchLifetime is how long a launch value made by the EHR
	// launch simulator (the /launch endpoint) can be used. It can be used
	// once.
	simulatedLaunchLifetime = 5 * time.Minute

	defaultAccessLifetime  = time.Hour
	defaultRefreshLifetime = 24 * time.Hour
	maxFormBytes           = 64 << 10
	clockSkew              = 30 * time.Second
)

// Errors of New, the Register methods, the key methods, the minting methods
// and SignClientAssertion wrap one of these; their messages say what is
// wrong. A test fixture's caller has nothing to branch on, so they are not
// exported. The client-side helpers return *ResponseError for refusals.
var (
	// errConfig reports an invalid Config, Client, LaunchContext,
	// TokenOptions or Assertion.
	errConfig = errors.New("smarttest: invalid configuration")
	// errUnknownKey reports a key id the server does not hold.
	errUnknownKey = errors.New("smarttest: unknown key id")
	// errLastKey reports an attempt to remove the only signing key.
	errLastKey = errors.New("smarttest: cannot remove the last signing key")
	// errDuplicateClient reports a client id that is already registered.
	errDuplicateClient = errors.New("smarttest: client already registered")
)

// Config configures a Server. FHIRBase is required; everything else has a
// default.
type Config struct {
	// FHIRBase is the base URL of the FHIR server the tokens are for. It is
	// the audience: authorization requests must send it as aud, and access
	// tokens carry it as aud. Absolute http(s) URL.
	FHIRBase string

	// Issuer is the external URL of the authorization server. Empty: New
	// starts an httptest.Server and uses its URL. Set: nothing is started;
	// mount the Server (an http.Handler) at the issuer's path.
	Issuer string

	// User is the fhirUser of the end user who approves authorization
	// requests, as a relative reference: "Practitioner/1", "Patient/123",
	// "PractitionerRole/..", "RelatedPerson/.." or "Person/..". Default
	// "Practitioner/smarttest".
	User string

	// Patient is the patient picked by a standalone launch asking for
	// launch/patient (with Consent, the consent page offers it as the
	// default of its patient picker), and the patient of a simulated EHR
	// launch that names none. Default: the id of User when User is a
	// Patient.
	Patient string

	// Encounter is the encounter picked by a standalone launch asking for
	// launch/encounter. Default: none.
	Encounter string

	// Consent shows a minimal consent page (approve / deny) instead of
	// approving every request automatically. For demos in a browser. In a
	// standalone launch asking for launch/patient, the page also lets the
	// user pick the patient.
	Consent bool

	// CORSOrigins are browser origins ("https://app.example.org",
	// "http://127.0.0.1:9000") whose requests the token and revocation
	// endpoints answer with CORS headers, in addition to the origins of the
	// registered redirect URIs. "*" allows any origin.
	CORSOrigins []string

	// OpaqueTokens makes the token endpoint issue opaque access tokens,
	// resolvable only through introspection, instead of JWTs.
	OpaqueTokens bool

	// AccessTokenLifetime is the lifetime of app-launch access tokens.
	// Default one hour (SMART: SHOULD be no greater than one hour).
	AccessTokenLifetime time.Duration

	// BackendTokenLifetime is the lifetime of client_credentials access
	// tokens. Default and maximum five minutes.
	BackendTokenLifetime time.Duration

	// RefreshTokenLifetime is the lifetime of refresh tokens. Default 24 h.
	RefreshTokenLifetime time.Duration

	// Now is the clock. Default time.Now. Tests that move time use it to
	// expire tokens.
	Now func() time.Time
}

// Server is an in-process SMART authorization server. It is an
// http.Handler; its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	issuer   string // no trailing slash
	basePath string // issuer's path, no trailing slash
	fhirBase string // no trailing slash
	ts       *httptest.Server

	keys keyring

	mu        sync.Mutex
	clients   map[string]*registeredClient
	launches  map[string]*launchRecord
	pending   map[string]*authRequest // consent page requests
	codes     map[string]*authCode
	refresh   map[string]*refreshToken
	tokens    map[string]*issuedToken // by jti (JWT) or token value (opaque)
	grants    map[string]*grant
	usedJTIs  map[string]time.Time // client assertion jti → expiry, per client
	origins   map[string]bool      // origins of registered redirect URIs (CORS, launch simulator)
	corsExtra map[string]bool      // Config.CORSOrigins
	corsAny   bool                 // Config.CORSOrigins holds "*"
	issuedCnt int
}

// New validates cfg and returns a Server. With an empty cfg.Issuer it starts
// an httptest.Server on a loopback port; call Close when done.
func New(cfg Config) (*Server, error) {
	if err := checkBaseURL("FHIRBase", cfg.FHIRBase); err != nil {
		return nil, err
	}
	if cfg.User == "" {
		cfg.User = "Practitioner/smarttest"
	}
	if err := checkUser(cfg.User); err != nil {
		return nil, err
	}
	if cfg.Patient == "" {
		if id, ok := strings.CutPrefix(cfg.User, "Patient/"); ok {
			cfg.Patient = id
		}
	}
	if cfg.Patient != "" && !validID(cfg.Patient) {
		return nil, fmt.Errorf("%w: Patient %q is not a FHIR id", errConfig, cfg.Patient)
	}
	if cfg.Encounter != "" && !validID(cfg.Encounter) {
		return nil, fmt.Errorf("%w: Encounter %q is not a FHIR id", errConfig, cfg.Encounter)
	}
	var err error
	if cfg.AccessTokenLifetime, err = lifetime("AccessTokenLifetime", cfg.AccessTokenLifetime, defaultAccessLifetime, 24*time.Hour); err != nil {
		return nil, err
	}
	if cfg.BackendTokenLifetime, err = lifetime("BackendTokenLifetime", cfg.BackendTokenLifetime, maxBackendTokenLifetime, maxBackendTokenLifetime); err != nil {
		return nil, err
	}
	if cfg.RefreshTokenLifetime, err = lifetime("RefreshTokenLifetime", cfg.RefreshTokenLifetime, defaultRefreshLifetime, 90*24*time.Hour); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer != "" {
		if err := checkBaseURL("Issuer", cfg.Issuer); err != nil {
			return nil, err
		}
	}
	corsExtra := map[string]bool{}
	corsAny := false
	for _, o := range cfg.CORSOrigins {
		if o == "*" {
			corsAny = true
			continue
		}
		n, ok := parseOrigin(o)
		if !ok {
			return nil, fmt.Errorf("%w: CORS origin %q must be \"*\" or scheme://host[:port] (http or https, no path)", errConfig, o)
		}
		corsExtra[n] = true
	}
	cfg.CORSOrigins = append([]string(nil), cfg.CORSOrigins...)
	s := &Server{
		cfg:      cfg,
		fhirBase: strings.TrimRight(cfg.FHIRBase, "/"),
		clients:  map[string]*registeredClient{},
		launches: map[string]*launchRecord{},
		pending:  map[string]*authRequest{},
		codes:    map[string]*authCode{},
		refresh:  map[string]*refreshToken{},
		tokens:   map[string]*issuedToken{},
		grants:   map[string]*grant{},
		usedJTIs: map[string]time.Time{},
		origins:  map[string]bool{},

		corsExtra: corsExtra,
		corsAny:   corsAny,
	}
	if _, err := s.keys.rotate(); err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		// Listening, not yet serving: every field is set before the first
		// request can arrive (the address is known as soon as it listens).
		s.ts = httptest.NewUnstartedServer(s)
		cfg.Issuer = "http://" + s.ts.Listener.Addr().String()
	}
	s.issuer = strings.TrimRight(cfg.Issuer, "/")
	u, _ := url.Parse(s.issuer)
	s.basePath = strings.TrimRight(u.EscapedPath(), "/")
	s.cfg.Issuer = s.issuer
	if s.ts != nil {
		s.ts.Start()
	}
	return s, nil
}

func lifetime(name string, d, def, maxD time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return def, nil
	case d < 0 || d > maxD:
		return 0, fmt.Errorf("%w: %s %v must lie in (0, %v]", errConfig, name, d, maxD)
	}
	return d, nil
}

func checkBaseURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%w: %s %q must be an absolute http(s) URL without query, fragment or user info", errConfig, name, s)
	}
	return nil
}

var fhirUserTypes = map[string]bool{"Patient": true, "Practitioner": true, "PractitionerRole": true, "RelatedPerson": true, "Person": true}

func checkUser(s string) error {
	typ, id, ok := strings.Cut(s, "/")
	if !ok || !fhirUserTypes[typ] || !validID(id) {
		return fmt.Errorf("%w: User %q must be Patient/<id>, Practitioner/<id>, PractitionerRole/<id>, RelatedPerson/<id> or Person/<id>", errConfig, s)
	}
	return nil
}

// validID reports whether s is a FHIR logical id: [A-Za-z0-9\-\.]{1,64}.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Close shuts down the httptest.Server New started, if any, closing its
// connections and stopping its goroutines. The Server's methods keep
// working (minting, for example); a mounted Server (Config.Issuer set)
// owns nothing to close. Close may be called more than once.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// endpoint returns the URL of an endpoint.
func (s *Server) endpoint(p string) string { return s.issuer + p }

const (
	pathDiscovery  = "/.well-known/openid-configuration"
	pathJWKS       = "/jwks"
	pathAuthorize  = "/authorize"
	pathConsent    = "/authorize/consent"
	pathToken      = "/token"
	pathIntrospect = "/introspect"
	pathRevoke     = "/revoke"
	pathLaunch     = "/launch"
)

// SMARTConfiguration holds the values a FHIR server's
// .well-known/smart-configuration document needs from this authorization
// server, and the server's URLs a test needs: Issuer (iss of every token,
// without a trailing slash) and JWKSURI for a resource server's key
// source, TokenEndpoint (the audience of client assertions) and the other
// endpoints for hand-built requests. Each field is the SMART App Launch 2.2
// member named in its JSON tag; every URL is absolute. The OpenID Connect
// discovery document is at Issuer + "/.well-known/openid-configuration",
// the EHR launch simulator at Issuer + "/launch" (see EHRLaunchURL).
type SMARTConfiguration struct {
	Issuer                                     string   `json:"issuer"`
	JWKSURI                                    string   `json:"jwks_uri"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	Capabilities                               []string `json:"capabilities"`
}

// SMARTConfiguration returns the authorization-server half of the FHIR
// server's .well-known/smart-configuration document. Each call returns a
// fresh value the caller may modify.
func (s *Server) SMARTConfiguration() SMARTConfiguration {
	return SMARTConfiguration{
		Issuer:                            s.issuer,
		JWKSURI:                           s.endpoint(pathJWKS),
		AuthorizationEndpoint:             s.endpoint(pathAuthorize),
		TokenEndpoint:                     s.endpoint(pathToken),
		IntrospectionEndpoint:             s.endpoint(pathIntrospect),
		RevocationEndpoint:                s.endpoint(pathRevoke),
		GrantTypesSupported:               []string{"authorization_code", "client_credentials", "refresh_token"},
		ResponseTypesSupported:            []string{"code"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"RS384", "ES384"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		ScopesSupported: []string{
			"openid", "fhirUser", "launch", "launch/patient", "launch/encounter",
			"offline_access", "online_access",
			"patient/*.cruds", "user/*.cruds", "system/*.cruds",
			"patient/*.read", "user/*.read", "system/*.read",
		},
		Capabilities: []string{
			"launch-ehr", "launch-standalone", "authorize-post",
			"client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
			"sso-openid-connect",
			"context-banner", "context-style",
			"context-ehr-patient", "context-ehr-encounter",
			"context-standalone-patient", "context-standalone-encounter",
			"permission-offline", "permission-online",
			"permission-patient", "permission-user", "permission-v1", "permission-v2",
		},
	}
}

// OpenIDConfiguration returns the OpenID Connect discovery document served
// at Issuer + "/.well-known/openid-configuration".
func (s *Server) OpenIDConfiguration() map[string]any {
	c := s.SMARTConfiguration()
	return map[string]any{
		"issuer":                                           c.Issuer,
		"jwks_uri":                                         c.JWKSURI,
		"authorization_endpoint":                           c.AuthorizationEndpoint,
		"token_endpoint":                                   c.TokenEndpoint,
		"introspection_endpoint":                           c.IntrospectionEndpoint,
		"revocation_endpoint":                              c.RevocationEndpoint,
		"grant_types_supported":                            c.GrantTypesSupported,
		"response_types_supported":                         c.ResponseTypesSupported,
		"response_modes_supported":                         []string{"query"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"token_endpoint_auth_methods_supported":            c.TokenEndpointAuthMethodsSupported,
		"token_endpoint_auth_signing_alg_values_supported": c.TokenEndpointAuthSigningAlgValuesSupported,
		"introspection_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "bearer"},
		"revocation_endpoint_auth_methods_supported":       []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"code_challenge_methods_supported":                 c.CodeChallengeMethodsSupported,
		"scopes_supported":                                 c.ScopesSupported,
		"claims_supported":                                 []string{"iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"},
	}
}

// ServeHTTP routes a request to an endpoint. The request path may carry the
// issuer's path prefix or not.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if s.basePath != "" && strings.HasPrefix(p, s.basePath+"/") {
		p = p[len(s.basePath):]
	}
	if r.Header.Get("Origin") != "" && s.cors(w, r, p) {
		return
	}
	switch p {
	case pathDiscovery:
		if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		writeJSON(w, http.StatusOK, s.OpenIDConfiguration())
	case pathJWKS:
		if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(s.JWKS())
	case pathAuthorize:
		if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
			return
		}
		s.handleAuthorize(w, r)
	case pathConsent:
		if !allowMethods(w, r, http.MethodPost) {
			return
		}
		s.handleConsent(w, r)
	case pathToken:
		if !allowMethods(w, r, http.MethodPost) {
			return
		}
		s.handleToken(w, r)
	case pathIntrospect:
		if !allowMethods(w, r, http.MethodPost) {
			return
		}
		s.handleIntrospect(w, r)
	case pathRevoke:
		if !allowMethods(w, r, http.MethodPost) {
			return
		}
		s.handleRevoke(w, r)
	case pathLaunch:
		if !allowMethods(w, r, http.MethodGet) {
			return
		}
		s.handleLaunch(w, r)
	default:
		http.NotFound(w, r)
	}
}

// cors adds CORS headers (SMART App Launch 2.1+: discovery for any origin,
// the token endpoint for the origins of registered redirect URIs) and
// answers preflight requests; it reports whether the request was answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request, p string) bool {
	origin := r.Header.Get("Origin")
	allow := ""
	switch p {
	case pathDiscovery, pathJWKS:
		allow = "*"
	case pathToken, pathRevoke:
		o, _ := parseOrigin(origin)
		s.mu.Lock()
		ok := o != "" && (s.corsAny || s.origins[o] || s.corsExtra[o])
		s.mu.Unlock()
		if ok {
			allow = origin
			w.Header().Add("Vary", "Origin")
		}
	}
	if allow != "" {
		w.Header().Set("Access-Control-Allow-Origin", allow)
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	if allow != "" {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
		w.Header().Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// oauthError is an RFC 6749 §5.2 error.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func errf(status int, code, format string, args ...any) *oauthError {
	return &oauthError{status: status, code: code, desc: fmt.Sprintf(format, args...)}
}

func writeOAuthError(w http.ResponseWriter, err error) {
	var oe *oauthError
	if !errors.As(err, &oe) {
		oe = errf(http.StatusInternalServerError, "server_error", "internal error")
	}
	if oe.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="smarttest"`)
	}
	writeJSON(w, oe.status, map[string]string{"error": oe.code, "error_description": oe.desc})
}

// readForm parses an application/x-www-form-urlencoded POST body (at most
// 64 KiB) and refuses repeated parameters (RFC 6749 §3.1). Query parameters
// are not read.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded") {
		return nil, errf(http.StatusBadRequest, "invalid_request", "content type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	buf, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errf(http.StatusRequestEntityTooLarge, "invalid_request", "request body too large")
		}
		return nil, errf(http.StatusBadRequest, "invalid_request", "unreadable request body")
	}
	return parseParams(string(buf))
}

// parseParams parses a form-encoded string and refuses repeated parameters
// and empty names.
func parseParams(s string) (url.Values, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalid_request", "malformed form body")
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return nil, errf(http.StatusBadRequest, "invalid_request", "parameter %q repeated", k)
		}
	}
	return v, nil
}
